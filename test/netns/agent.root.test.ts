// The node agent in real namespaces: two nodes, an upstream router configured by the project's
// own Linux renderer, an internet host (src/sim/topology.ts). Proves traffic (IPv6 in, IPv4 out
// through SNAT, WireGuard across nodes), tenant isolation and source validation at the gateway,
// removal of an NR, a TN and everything (by listing the host), idempotency, a SIGKILLed apply,
// and drift repair that leaves a foreign route alone. Namespaces "xa-", allocation 401.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireRoot } from '../support/root.js';
import { Topology, INTERNET4 } from '../../src/sim/topology.js';
import { applyView, check, down } from '../../src/agent/index.js';
import { compile } from '../../src/compile/index.js';
import type { DesiredState } from '../../src/compile/desired.js';
import { parseNodeView, type NodeView } from '../../src/core/view.js';
import { parseNft } from '../../src/kernel/observe.js';
import { run, inNs } from '../../src/kernel/exec.js';
import { objectText } from '../../src/reconcile/objects.js';
import { inventory, viewFor, type Inventory, type Tn } from './agent-support.js';

const A = 401;
const P = '2001:db8:5e::/48';
const t = new Topology({ prefix: 'xa-', allocation: P, slots: [1], nodes: 2 });
const [n1, n2] = t.nodes as [(typeof t.nodes)[0], (typeof t.nodes)[0]];
const GW = `${n1.config.namespacePrefix}gw-1-${A}`;
const keys: Record<string, string> = {};
let tns: Tn[] = [
  {
    id: 't1',
    exit: '1abc',
    nrs: [
      { id: '1abc', node: 'n1' },
      { id: '1abd', node: 'n2' },
    ],
  },
  {
    id: 't2',
    exit: '1abe',
    nrs: [
      { id: '1abe', node: 'n1' },
      { id: '1abf', node: 'n2' },
    ],
  },
];
let version = 1;
const views = (): Record<string, NodeView> => {
  version++;
  const o = { allocation: A, prefix: P, slots: { n1: [1] }, tns, keys };
  return { n1: parseNodeView(viewFor(t, 'n1', version, o)), n2: parseNodeView(viewFor(t, 'n2', version, o)) };
};

const previous: Record<string, DesiredState> = {};

/** Applies the next views on both nodes: a full pass, or an incremental one against the last pass. */
async function applyBoth(incremental = false): Promise<Record<string, NodeView>> {
  const v = views();
  for (const n of t.nodes) {
    const prev = previous[n.id];
    const r = await applyView(v[n.id]!, n.config, incremental && prev ? { previous: prev } : {});
    assert.deepEqual(r.failures, [], `apply on ${n.id}`);
    assert.equal(r.observed, !(incremental && prev));
    previous[n.id] = r.desired;
    Object.assign(keys, r.publicKeys);
  }
  return v;
}

async function retry(what: string, fn: () => Promise<boolean>, ms = 12000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) assert.fail(`${what}: still failing after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const ping = async (ns: string, dst: string): Promise<boolean> =>
  (await run(inNs(ns, ['ping', dst.includes(':') ? '-6' : '-4', '-c', '1', '-W', '1', dst]))).code === 0;

/** Starts a UDP listener on the internet host; resolves with the source address seen (or ""). */
function listen(port: number, ms: number): Promise<string> {
  const js = `const s=require("dgram").createSocket("udp4");s.on("message",(m,r)=>{console.log(r.address);process.exit(0)});s.bind(${port},"${INTERNET4}");setTimeout(()=>{console.log("");process.exit(0)},${ms})`;
  return run(inNs(t.inet, [process.execPath, '-e', js])).then((r) => r.stdout.trim());
}
async function sendUdp(ns: string, port: number, from?: string): Promise<void> {
  const js = `const s=require("dgram").createSocket("udp4");s.bind({port:0${from ? `,address:"${from}"` : ''}},()=>s.send("x",${port},"${INTERNET4}",()=>s.close()))`;
  await run(inNs(ns, [process.execPath, '-e', js]));
}

/** Packets dropped by each rule of the gateway's filter table, by rule position. */
async function dropCounters(): Promise<number[]> {
  const r = await run(inNs(GW, ['nft', '-j', 'list', 'chain', 'inet', 'exitnode-filter', 'forward']));
  const rules = (
    JSON.parse(r.stdout) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] }
  ).nftables.filter((x) => x.rule);
  return rules.map((x) => x.rule!.expr.find((e) => e.counter)?.counter?.packets ?? 0);
}

/** What the views need, in the inventory's terms (from compile: the desired state of each node). */
function expected(v: Record<string, NodeView>): Inventory {
  const inv: Inventory = { namespaces: [], links: [], routes: [], nft: [], wgProcesses: [], keyFiles: [] };
  for (const n of t.nodes) {
    const d = compile(v[n.id]!, n.config);
    for (const ns of d.namespaces) {
      if (ns.roles.includes('segment')) continue;
      if (ns.roles.includes('gateway') || ns.roles.includes('nr')) inv.namespaces.push(ns.name);
      for (const l of ns.links) inv.links.push(`${ns.name} ${l.name}`);
      for (const r of ns.routes) inv.routes.push(`${ns.name} ${r.dst} ${r.dev}`);
      for (const tb of ns.nft) {
        inv.nft.push(`${ns.name} table ${tb.family} ${tb.name}`);
        for (const [set, els] of Object.entries(tb.sets))
          for (const e of els) inv.nft.push(`${ns.name} ${set} ${e.ifname} ${e.prefix}`);
      }
    }
    for (const w of d.wireguard) {
      inv.wgProcesses.push(w.name);
      inv.keyFiles.push(`${n.id} ${w.keyFile}`);
    }
  }
  for (const k of Object.keys(inv) as (keyof Inventory)[]) inv[k].sort();
  return inv;
}

const scratch: string[] = [];
const scratchDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'xa-cli-'));
  scratch.push(d);
  return d;
};

after(async () => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
  if (!process.env.XA_KEEP) await t.down();
});

test('node agent in real namespaces: two nodes, upstream, internet', { timeout: 240_000 }, async (tt) => {
  if (!requireRoot(tt, ['nft', 'wg', 'wireguard-go', 'nsenter', 'ping'])) return;
  await t.up();

  await tt.test(
    'SIGKILL in the middle of an apply, then apply again: converges, and a second apply is empty',
    async () => {
      const r1 = await applyView(views().n1!, n1.config);
      assert.deepEqual(r1.failures, []);
      Object.assign(keys, r1.publicKeys);
      const v = views();
      const dir = scratchDir();
      writeFileSync(join(dir, 'view.json'), JSON.stringify(v.n2));
      writeFileSync(join(dir, 'config.json'), JSON.stringify(n2.config));
      const child = spawn(
        process.execPath,
        ['bin/exitnode.js', 'agent', 'apply', '--view', join(dir, 'view.json'), '--config', join(dir, 'config.json')],
        { stdio: 'ignore' },
      );
      const marker = `/run/netns/${n2.config.namespacePrefix}net-1abd-${A}`;
      let exitCode: number | null | undefined;
      const exited = new Promise<void>((res) =>
        child.on('exit', (c, sig) => {
          exitCode = sig === 'SIGKILL' ? -9 : c;
          res();
        }),
      );
      // A tight poll: the whole apply takes about 100 ms once the CLI has started.
      const end = Date.now() + 20000;
      while (!existsSync(marker) && exitCode === undefined && Date.now() < end)
        await new Promise((r) => setTimeout(r, 1));
      child.kill('SIGKILL');
      await exited;
      assert.equal(exitCode, -9, 'the agent was killed before it finished');
      // SIGKILL ends the agent, not the ip batch it had started: that orphan may still be adding
      // namespaces while the next pass runs, and the next pass then reports the object it lost
      // the race for. The pass after it must converge.
      let again = await applyView(v.n2!, n2.config);
      assert.ok(again.size > 0, 'the interrupted apply left work to do');
      for (let i = 0; i < 2 && again.failures.length; i++) again = await applyView(v.n2!, n2.config);
      assert.deepEqual(again.failures, []);
      Object.assign(keys, again.publicKeys);
      const third = await applyView(v.n2!, n2.config);
      assert.equal(third.size, 0, 'converged');
    },
  );

  await tt.test('apply twice: the second plan is empty on both nodes', async () => {
    const v = await applyBoth();
    await applyBoth(true); // the daemon's incremental path: same view, nothing to do
    for (const n of t.nodes) {
      const r = await applyView(v[n.id]!, n.config);
      assert.equal(
        r.size,
        0,
        `second apply on ${n.id}: ${JSON.stringify(r.plan.steps.flatMap((s) => s.objects.map(objectText)))}`,
      );
    }
    assert.equal(Object.keys(keys).length, 4, 'one public key per NR');
  });

  const w1 = await t.workload('w1', n1, `br-1abc-${A}`, '2001:db8:5e:1abc::100', '10.26.188.100');
  const w2 = await t.workload('w2', n2, `br-1abd-${A}`, '2001:db8:5e:1abd::100', '10.26.189.100');
  const w3 = await t.workload('w3', n2, `br-1abf-${A}`, '2001:db8:5e:1abf::100', '10.26.191.100');

  await tt.test(
    'IPv6 from the internet host to a workload on node 2 (upstream → gateway → ExitPoint → WireGuard)',
    async () => {
      await retry('ping -6 internet → w2', () => ping(t.inet, '2001:db8:5e:1abd::100'));
      await retry('ping -6 internet → w3 (second TN)', () => ping(t.inet, '2001:db8:5e:1abf::100'));
    },
  );

  await tt.test('IPv4 from the workload to the internet host arrives from GWPubIP4', async () => {
    const got = listen(9999, 4000);
    await new Promise((r) => setTimeout(r, 400));
    await sendUdp(w2, 9999);
    assert.equal(await got, '198.51.100.11');
  });

  await tt.test('workload ↔ workload across the nodes, IPv6 and IPv4', async () => {
    await retry('w1 → w2 IPv6', () => ping(w1, '2001:db8:5e:1abd::100'));
    await retry('w2 → w1 IPv4', () => ping(w2, '10.26.188.100'));
    await retry('w2 → w1 IPv6', () => ping(w2, '2001:db8:5e:1abc::100'));
  });

  await tt.test('second TN: no IPv4 between tenants; a spoofed source is dropped at the gateway', async () => {
    await retry('w3 reaches the internet over IPv4', async () => {
      const got = listen(9997, 1500);
      await new Promise((r) => setTimeout(r, 300));
      await sendUdp(w3, 9997);
      return (await got) === '198.51.100.11';
    });
    const before = await dropCounters();
    assert.equal(await ping(w2, '10.26.191.100'), false, 'w2 (t1) must not reach w3 (t2) over IPv4');
    const mid = await dropCounters();
    assert.ok(mid[2]! > before[2]!, `the gateway's tenant-isolation rule dropped it (${before[2]} → ${mid[2]})`);
    // w1 (behind t1's ExitPoint) claims an address of t2's /24: the gateway's source validation drops it.
    await run(inNs(w1, ['ip', 'addr', 'add', '10.26.191.77/32', 'dev', 'eth0']));
    const got = listen(9998, 2000);
    await new Promise((r) => setTimeout(r, 300));
    await sendUdp(w1, 9998, '10.26.191.77');
    assert.equal(await got, '', 'nothing arrives from a spoofed source');
    const end = await dropCounters();
    assert.ok(end[1]! > mid[1]!, `the gateway's IPv4 source validation dropped it (${mid[1]} → ${end[1]})`);
    // The same over IPv6: an address of t2's /64 from behind t1's ExitPoint.
    await run(inNs(w1, ['ip', 'addr', 'add', '2001:db8:5e:1abf::77/128', 'dev', 'eth0', 'nodad']));
    assert.equal(
      (await run(inNs(w1, ['ping', '-6', '-c', '1', '-W', '1', '-I', '2001:db8:5e:1abf::77', '2001:db8:ffff::2'])))
        .code === 0,
      false,
      'a spoofed IPv6 source gets no answer',
    );
    const end6 = await dropCounters();
    assert.ok(end6[0]! > end[0]!, `the gateway's IPv6 source validation dropped it (${end[0]} → ${end6[0]})`);
    assert.equal(
      (await run(inNs(w1, ['ping', '-6', '-c', '1', '-W', '2', '-I', '2001:db8:5e:1abc::100', '2001:db8:ffff::2'])))
        .code,
      0,
      'w1 with its own address still reaches the internet',
    );
    await run(inNs(w1, ['ip', 'addr', 'del', '2001:db8:5e:1abf::77/128', 'dev', 'eth0']));
    await run(inNs(w1, ['ip', 'addr', 'del', '10.26.191.77/32', 'dev', 'eth0']));
  });

  await tt.test(
    'drift: one of our routes deleted and a foreign route added by hand — check reports ours, apply repairs, the foreign route stays',
    async () => {
      await run(inNs(GW, ['ip', 'route', 'del', '10.26.189.0/24']));
      await run(inNs(GW, ['ip', 'route', 'add', '192.0.2.200/32', 'dev', `pub-1-${A}`]));
      const v = views();
      const c = await check(v.n1!, n1.config);
      assert.deepEqual(c.drift, [`route 10.26.189.0/24 in ${GW}`]);
      const dir = scratchDir();
      writeFileSync(join(dir, 'view.json'), JSON.stringify(v.n1));
      writeFileSync(join(dir, 'config.json'), JSON.stringify(n1.config));
      const cli = await run([
        process.execPath,
        'bin/exitnode.js',
        'agent',
        'check',
        '--view',
        join(dir, 'view.json'),
        '--config',
        join(dir, 'config.json'),
      ]);
      assert.equal(cli.code, 1);
      assert.match(cli.stdout, /route 10\.26\.189\.0\/24 in xa-n1-gw-1-401/);
      const r = await applyView(v.n1!, n1.config);
      assert.deepEqual(r.failures, []);
      assert.equal(r.size, 1);
      const routes = (await run(inNs(GW, ['ip', 'route', 'show']))).stdout;
      assert.match(routes, /10\.26\.189\.0\/24 via 10\.255\.26\.188 dev to-1abc-401 proto 77 onlink/);
      assert.match(routes, /192\.0\.2\.200 dev pub-1-401/, 'the foreign route is untouched');
      assert.deepEqual((await check(v.n1!, n1.config)).drift, []);
    },
  );

  await tt.test('remove an NR: the host holds exactly what the remaining view needs', async () => {
    tns = [tns[0]!, { id: 't2', exit: '1abe', nrs: [{ id: '1abe', node: 'n1' }] }];
    // An incremental pass (the daemon's path for a new view), then a full one must find nothing to do.
    const v = await applyBoth(true);
    for (const n of t.nodes)
      assert.equal((await applyView(v[n.id]!, n.config)).size, 0, `full pass after the incremental one on ${n.id}`);
    const inv = await inventory(t, `-${A}`);
    assert.deepEqual(inv, expected(v));
    assert.ok(!inv.namespaces.includes(`xa-n2-net-1abf-${A}`));
    assert.ok(!inv.wgProcesses.includes(`wg-1abf-${A}`));
    assert.ok(!inv.keyFiles.includes(`n2 wg-1abf-${A}.key`));
    assert.ok(!inv.nft.some((x) => x.includes('10.26.191.0/24')), 'no source-validation element for the removed NR');
    assert.ok(!inv.routes.some((x) => x.includes('2001:db8:5e:1abf::/64')), 'no gateway route for the removed NR');
    await retry('t1 still works: internet → w2', () => ping(t.inet, '2001:db8:5e:1abd::100'));
    void w3;
  });

  await tt.test('remove a whole TN, then everything: exactly what remains is needed, then nothing', async () => {
    tns = [tns[0]!];
    const v = await applyBoth();
    const inv = await inventory(t, `-${A}`);
    assert.deepEqual(inv, expected(v));
    assert.ok(!inv.links.some((x) => x.includes('1abe')), 'no link of the removed TN');
    await retry('t1 still works: internet → w2', () => ping(t.inet, '2001:db8:5e:1abd::100'));
    for (const n of t.nodes) {
      const r = await down(n.config);
      assert.deepEqual(r.failures, []);
      const twice = await down(n.config);
      assert.equal(
        twice.size,
        0,
        `down twice: nothing left to do, but: ${twice.plan.steps.flatMap((s) => s.objects.map(objectText)).join('; ')}`,
      );
    }
    const empty = await inventory(t, `-${A}`);
    assert.deepEqual(empty, { namespaces: [], links: [], routes: [], nft: [], wgProcesses: [], keyFiles: [] });
    // Nothing else was touched: the topology's own links are still there.
    const links = (await run(inNs(n2.ns, ['ip', '-o', 'link', 'show']))).stdout;
    assert.match(links, /wl-w2/);
    assert.match(links, /ul0/);
    void parseNft;
  });
});
