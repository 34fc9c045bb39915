// Stage 2 (DESIGN.md 8.2) on the real kernel adapter: two candidate gateways of slot 1 of
// allocation 97, built by LinuxKernel from hand-made desired states (keepalivedSpec for their
// keepalived), on one PrefixZero segment (a bridge) with the upstream router. One becomes master
// and holds GWPubLL, GWPubIP6, GWPubIP4 and the IPv4 default route; the master's uplink is cut
// while the upstream pings both addresses every 10 ms → the other takes over (gap printed); the
// old master comes back as backup (nopreempt); a drain hands over (gap printed); a restarted
// keepalived stays backup; the empty desired state leaves no keepalived (checked by pid) and no
// namespace. Then the ExitPoints' fast path on two wireguard-go interfaces: wgKick makes one
// handshake at once (time printed), wgEndpoints shows the endpoint the other learned.
// Namespaces "xv-*", removed afterwards also on failure.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireRoot, rootUnavailable } from '../support/root.js';
import { inNs, run } from '../../src/kernel/exec.js';
import { linuxKernel as k } from '../../src/kernel/linux.js';
import { observeVrrp, stopKeepalived } from '../../src/kernel/vrrp.js';
import { diff } from '../../src/reconcile/diff.js';
import { keepalivedSpec } from '../../src/compile/keepalived.js';
import type { DesiredState, NsSpec } from '../../src/compile/desired.js';
import { allocation, planSlot } from '../../src/core/plan.js';
import { generatePrivateKey } from '../../src/kernel/apply.js';

const P = 'xv-';
const SEG = `${P}seg`;
const UPR = `${P}up`;
const A = 97;
const alloc = allocation('2001:db8:7a::/48', A);
const slot = planSlot(alloc, 1);
const UP = slot.GWPubName;
const IP4 = '198.51.100.21';
const IP6 = slot.GWPubIP6.split('/')[0]!;
const LL = slot.GWPubLL.split('/')[0]!;

interface Node {
  name: 'a' | 'b';
  prefix: string;
  gw: string;
  stateDir: string;
}
const nodes: Node[] = (['a', 'b'] as const).map((name) => ({
  name,
  prefix: `${P}${name}-`,
  gw: `${P}${name}-gw-1-${A}`,
  stateDir: '',
}));
const other = (n: Node): Node => nodes.find((x) => x !== n)!;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function sh(ns: string, ...argv: string[]): Promise<string> {
  const r = await run(inNs(ns, argv));
  if (r.code !== 0) throw new Error(`${ns}: ${argv.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

function newNs(name: string, roles: NsSpec['roles']): NsSpec {
  return { name, roles, links: [], addrs: [], routes: [], sysctls: {}, nft: [] };
}

/** Candidate N's desired state: its gateway with the uplink on the segment, and its keepalived. */
function desiredOf(n: Node, priority: number, vrrp = true): DesiredState {
  const peer = `p${n.name}`;
  const seg = newNs(SEG, ['segment']);
  seg.links.push({ name: peer, kind: 'veth', master: 'br0' });
  const gw = newNs(n.gw, ['gateway']);
  gw.links.push({
    name: UP,
    kind: 'veth',
    create: { how: 'veth', peer, peerNs: SEG },
    kernelLinkLocal: true,
  });
  gw.routes.push({ dst: '::/0', via: 'fe80::1', dev: UP });
  Object.assign(gw.sysctls, {
    'net.ipv4.conf.all.forwarding': '1',
    'net.ipv6.conf.all.forwarding': '1',
    [`net.ipv6.conf.${UP}.ndisc_notify`]: '1',
    [`net.ipv4.conf.${UP}.arp_notify`]: '1',
  });
  gw.foreign = { addrs: [slot.GWPubLL, slot.GWPubIP6, `${IP4}/24`], routes: ['0.0.0.0/0'] };
  return {
    node: n.name,
    namespacePrefix: n.prefix,
    namespaces: [gw, seg],
    wireguard: [],
    vrrp: vrrp
      ? [
          keepalivedSpec({
            allocation: alloc,
            slot: 1,
            ns: n.gw,
            priority,
            upstreamLL: 'fe80::1',
            ipv4: { address: IP4, prefixLength: 24, gateway: '198.51.100.1' },
            stateDir: n.stateDir,
          }),
        ]
      : [],
  };
}

const empty = (n: Node): DesiredState => ({ ...desiredOf(n, 1, false), namespaces: [newNs(SEG, ['segment'])] });

async function pass(n: Node, d: DesiredState): Promise<void> {
  const opts = { namespacePrefix: n.prefix, stateDir: n.stateDir, kernelWireguard: false };
  const plan = diff(d, await k.observe(d, opts), { kernelWireguard: false, privateKeys: new Map() });
  assert.deepEqual(await k.apply(plan, { stateDir: n.stateDir }), [], `${n.name}: the pass applies`);
}

const stateOf = (n: Node): string | undefined => k.vrrpStates(n.stateDir).get(n.gw)?.state;

/** Whether N's gateway holds every address of the slot and the IPv4 default route. */
async function holds(n: Node): Promise<boolean> {
  const addrs = await sh(n.gw, 'ip', '-o', 'addr', 'show', 'dev', UP);
  const route = await sh(n.gw, 'ip', '-4', 'route', 'show', 'default');
  return (
    addrs.includes(` ${LL}/64 `) &&
    addrs.includes(` ${IP6}/64 `) &&
    addrs.includes(` ${IP4}/24 `) &&
    route.includes('via 198.51.100.1')
  );
}

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

/** The master and the backup, once there is exactly one of each. */
async function roles(): Promise<{ master: Node; backup: Node }> {
  let m: Node | undefined;
  await until('one master, one backup', () => {
    const s = nodes.map(stateOf);
    m =
      s[0] === 'MASTER' && s[1] === 'BACKUP' ? nodes[0] : s[1] === 'MASTER' && s[0] === 'BACKUP' ? nodes[1] : undefined;
    return m !== undefined;
  });
  return { master: m!, backup: other(m!) };
}

/** The longest silence between replies (seconds), the tail up to END counted (ping -D lines). */
function longestGap(out: string, start: number, end: number): number {
  const ts = [...out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map((m) => Number(m[1]));
  let gap = 0;
  let prev = start;
  for (const t of ts) {
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  return Math.max(gap, end - prev);
}

/** Pings GWPubIP6 and GWPubIP4 from the upstream every 10 ms for SECONDS while ACT runs; the longest gaps. */
async function pinged(seconds: number, act: () => Promise<void>): Promise<{ v6: number; v4: number }> {
  const start = Date.now() / 1000;
  const ping = (fam: string, addr: string) =>
    run(inNs(UPR, ['ping', fam, '-D', '-n', '-i', '0.01', '-W', '1', '-w', String(seconds), addr]));
  const p6 = ping('-6', IP6);
  const p4 = ping('-4', IP4);
  await sleep(1000);
  await act();
  const [r6, r4] = await Promise.all([p6, p4]);
  const end = start + seconds;
  return { v6: longestGap(r6.stdout, start + 0.5, end - 0.2), v4: longestGap(r4.stdout, start + 0.5, end - 0.2) };
}

async function removeAll(): Promise<void> {
  for (const n of nodes) {
    if (!n.stateDir) continue;
    for (const v of observeVrrp(n.stateDir).values()) await stopKeepalived(n.stateDir, v.ns, v.pid);
    rmSync(n.stateDir, { recursive: true, force: true });
  }
  const left = readdirSync('/run/netns').filter((x) => x.startsWith(P));
  if (left.length) await run(['ip', '-force', '-batch', '-'], left.map((x) => `netns del ${x}`).join('\n') + '\n');
}

const skip = rootUnavailable();

before(async () => {
  if (skip) return;
  await removeAll();
  for (const n of nodes) n.stateDir = mkdtempSync(join(tmpdir(), `exitnode-xv-${n.name}-`));
  // The segment (a bridge) and the upstream router on it: P::1, fe80::1, the IPv4 gateway.
  await run(['ip', 'netns', 'add', SEG]);
  await run(['ip', 'netns', 'add', UPR]);
  await sh(SEG, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
  await sh(SEG, 'ip', 'link', 'set', 'br0', 'up');
  await sh(SEG, 'ip', 'link', 'add', 'upl', 'type', 'veth', 'peer', 'name', 'upr', 'netns', UPR);
  await sh(SEG, 'ip', 'link', 'set', 'upl', 'master', 'br0', 'up');
  await sh(UPR, 'ip', 'link', 'set', 'upr', 'up');
  await sh(UPR, 'ip', 'addr', 'add', '2001:db8:7a::1/64', 'dev', 'upr', 'nodad');
  await sh(UPR, 'ip', 'addr', 'add', 'fe80::1/64', 'dev', 'upr', 'nodad');
  await sh(UPR, 'ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'upr');
});

after(async () => {
  if (!skip && !process.env.XV_KEEP) await removeAll();
});

test('two candidates: one master holds the slot; uplink cut, drain and restart hand over as VRRP says', async (t) => {
  if (!requireRoot(t, ['keepalived', 'nsenter', 'ping'])) return;
  const [a, b] = nodes as [Node, Node];
  await Promise.all([pass(a, desiredOf(a, 250)), pass(b, desiredOf(b, 200))]);
  let { master, backup } = await roles();
  await until('the master holds GWPubLL, GWPubIP6, GWPubIP4 and the IPv4 default route', () => holds(master));
  assert.equal(await holds(backup), false, 'the backup holds none of it');
  await until(
    'the upstream reaches GWPubIP6',
    async () => (await run(inNs(UPR, ['ping', '-6', '-c1', '-W1', IP6]))).code === 0,
  );
  for (const n of nodes) {
    const opts = { namespacePrefix: n.prefix, stateDir: n.stateDir, kernelWireguard: false };
    const d = desiredOf(n, n === a ? 250 : 200);
    assert.deepEqual(
      diff(d, await k.observe(d, opts), { kernelWireguard: false, privateKeys: new Map() }).steps,
      [],
      `${n.name}: a second pass has nothing to do (keepalived's addresses left alone)`,
    );
  }

  // 1. The master's uplink goes down: the backup takes over.
  const cut = master;
  let t0 = 0;
  let took = 0;
  const gapCut = await pinged(5, async () => {
    t0 = Date.now();
    await sh(cut.gw, 'ip', 'link', 'set', UP, 'down');
    await until('the backup holds the slot', async () => stateOf(backup) === 'MASTER' && (await holds(backup)));
    took = Date.now() - t0;
  });
  t.diagnostic(
    `uplink cut on ${cut.name}: ${backup.name} master after ${took} ms; longest gap at the upstream v6 ${gapCut.v6.toFixed(2)} s, v4 ${gapCut.v4.toFixed(2)} s`,
  );
  assert.equal(stateOf(cut), 'FAULT');
  assert.ok(gapCut.v6 < 3 && gapCut.v4 < 3, 'the slot answers again within seconds');
  ({ master, backup } = { master: backup, backup: cut });

  // 2. The old master's uplink back: it stays backup (nopreempt).
  await sh(cut.gw, 'ip', 'link', 'set', UP, 'up');
  await until('the old master is back as backup', () => stateOf(cut) === 'BACKUP');
  await sleep(3000);
  assert.equal(stateOf(cut), 'BACKUP', 'no preemption');
  assert.equal(stateOf(master), 'MASTER');

  // 3. Planned handover: the master drains (priority-0 advert).
  let drained = 0;
  const gapDrain = await pinged(4, async () => {
    t0 = Date.now();
    const d = k.vrrpDrain(master.stateDir, master.gw);
    await until('the backup holds the slot', async () => stateOf(backup) === 'MASTER' && (await holds(backup)));
    drained = Date.now() - t0;
    await d;
  });
  t.diagnostic(
    `drain of ${master.name}: ${backup.name} master after ${drained} ms; longest gap v6 ${gapDrain.v6.toFixed(2)} s, v4 ${gapDrain.v4.toFixed(2)} s`,
  );
  assert.equal(stateOf(master), 'BACKUP', 'the drained one is back as backup');
  ({ master, backup } = { master: backup, backup: master });
  assert.ok(gapDrain.v6 < 1.5 && gapDrain.v4 < 1.5);

  // 4. The backup's keepalived restarted (stopped, started again by a pass): still backup.
  const old = observeVrrp(backup.stateDir).get(backup.gw)!.pid!;
  await pass(backup, desiredOf(backup, backup === a ? 250 : 200, false));
  await pass(backup, desiredOf(backup, backup === a ? 250 : 200));
  assert.notEqual(observeVrrp(backup.stateDir).get(backup.gw)?.pid, old, 'a new process');
  await until('it reports BACKUP', () => stateOf(backup) === 'BACKUP');
  await sleep(3000);
  assert.equal(stateOf(backup), 'BACKUP', 'restarted, it stays backup');
  assert.equal(stateOf(master), 'MASTER');
  assert.ok(await holds(master));

  // 5. Both taken down: no keepalived (by pid), no namespace.
  const pids = nodes.flatMap((n) => [...observeVrrp(n.stateDir).values()].map((v) => v.pid!));
  assert.equal(pids.length, 2);
  await Promise.all(nodes.map((n) => pass(n, empty(n))));
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `keepalived ${pid} is gone`);
  assert.deepEqual(
    readdirSync('/run/netns').filter((x) => x.startsWith(`${P}a-`) || x.startsWith(`${P}b-`)),
    [],
  );
  for (const n of nodes) assert.equal(observeVrrp(n.stateDir).size, 0);
});

test('wgKick: a handshake at once without a keepalive; wgEndpoints: the endpoint the peer learned from it', async (t) => {
  if (!requireRoot(t, ['wireguard-go', 'wg', 'nsenter'])) return;
  if (k.kernelWireguard()) return t.skip('the kernel has WireGuard: the UAPI path is not the one used here');
  const dir = mkdtempSync(join(tmpdir(), 'exitnode-xv-wg-'));
  const procs: ChildProcess[] = [];
  const sides = [
    { ns: `${P}w1`, wg: 'xvw1', ip: '10.99.0.1', port: 51001, key: generatePrivateKey() },
    { ns: `${P}w2`, wg: 'xvw2', ip: '10.99.0.2', port: 51002, key: generatePrivateKey() },
  ] as const;
  const [one, two] = sides;
  try {
    for (const x of sides) await run(['ip', 'netns', 'add', x.ns]);
    await sh(one.ns, 'ip', 'link', 'add', 'u', 'type', 'veth', 'peer', 'name', 'u', 'netns', two.ns);
    for (const x of sides) {
      await sh(x.ns, 'ip', 'addr', 'add', `${x.ip}/24`, 'dev', 'u');
      await sh(x.ns, 'ip', 'link', 'set', 'u', 'up');
      const p = spawn('nsenter', [`--net=/run/netns/${x.ns}`, 'wireguard-go', '-f', x.wg], {
        stdio: 'ignore',
        env: { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' },
      });
      procs.push(p);
      await until(`${x.wg} up`, () => existsSync(`/var/run/wireguard/${x.wg}.sock`), 5000);
      writeFileSync(join(dir, x.wg), `${x.key.privateKey}\n`, { mode: 0o600 });
    }
    // one knows two's endpoint; two knows none (as a remote NR behind NAT is to the ExitPoint).
    await sh(
      one.ns,
      'wg',
      'set',
      one.wg,
      'private-key',
      join(dir, one.wg),
      'listen-port',
      String(one.port),
      'peer',
      two.key.publicKey,
      'endpoint',
      `${two.ip}:${two.port}`,
      'allowed-ips',
      '10.98.0.2/32',
    );
    await sh(
      two.ns,
      'wg',
      'set',
      two.wg,
      'private-key',
      join(dir, two.wg),
      'listen-port',
      String(two.port),
      'peer',
      one.key.publicKey,
      'allowed-ips',
      '10.98.0.1/32',
    );
    for (const x of sides) await sh(x.ns, 'ip', 'link', 'set', x.wg, 'up');
    const handshake = async (): Promise<number> =>
      Number((await sh(one.ns, 'wg', 'show', one.wg, 'latest-handshakes')).trim().split(/\s+/)[1] ?? 0);
    await sleep(300);
    assert.equal(await handshake(), 0, 'nothing to send: no handshake');
    assert.deepEqual([...((await k.wgEndpoints([two.wg])).get(two.wg) ?? [])], [], 'no endpoint known yet');
    const t0 = Date.now();
    await k.wgKick([one.wg, 'xvnosuch']);
    await until('a handshake', async () => (await handshake()) > 0, 5000);
    const ms = Date.now() - t0;
    t.diagnostic(`wgKick: handshake completed ${ms} ms after the kick`);
    assert.deepEqual([...(await k.wgEndpoints([two.wg])).get(two.wg)!], [[one.key.publicKey, `${one.ip}:${one.port}`]]);
    assert.match(await sh(one.ns, 'wg', 'show', one.wg, 'persistent-keepalive'), /\toff$/m, 'the keepalive as it was');
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    for (const x of sides) await run(['ip', 'netns', 'del', x.ns]);
    rmSync(dir, { recursive: true, force: true });
  }
});
