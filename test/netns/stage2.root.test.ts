// Failover, stage 2 (DESIGN.md 8.2, issue 10 "Must show"), end to end on the simulated farm:
// `sim up --failover vrrp` with 3 public nodes (n1, n2 exit-capable, two candidates per slot), one
// node behind a NAT of its own (n4) and 2 tenants; a real server and real agents with keepalived.
// Four ping streams every 10 ms cross the slot under test: workload → internet over IPv4 and
// internet → workload over IPv6, for a workload on a public node (n3) and one on the NAT'ed node
// (n4). A sampler every 50 ms records who holds each slot's addresses throughout.
//   1. sim fail of slot 1's master: longest gap ≤ 1.5 s in every stream; sim check passes; the
//      upstream router is byte-identical
//   2. sim recover: the old master comes back as backup (no preemption), its ExitPoints silent
//   3. sim partition of a master from TNoDB, then heal: no gap over 0.5 s
//   4. sim stop server for 60 s (slot 1 with its standby, slot 2 with a single candidate): no gap
//      over 0.5 s
//   5. slot move (planned): longest gap ≤ 0.5 s
//   6. sim cut-vrrp between the candidates: two masters, resolved within 5 s while TNoDB is up
//   7. the sampler: never two holders of a slot outside the injected cut
//   8. sim down: no keepalived, no wireguard-go, no namespace, no key file (by PID and by a scan)
//   9. the baseline: stage 1 (`--failover lease`) measured in the same run, same farm, same streams
// Until the store, kernel and agent parts of stage 2 are in, `sim up --failover vrrp` says the
// server has no failover mode, and the test skips with that reason.
// Namespaces "xs2-", allocations 902 (vrrp) and 903 (lease), state /run/exitnode-sim-xs2-test.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { requireRoot } from '../support/root.js';
import { run, inNs } from '../../src/kernel/exec.js';
import { loadState, readToken, type SimState } from '../../src/sim/state.js';
import { adminClient, startServer, stopServer, wgCommand } from '../../src/sim/daemons.js';
import { checkLive, cutVrrp, fail, heal, healVrrp, partition, recover, vrrpDropped } from '../../src/sim/failover.js';
import {
  HolderSampler,
  SlotStreams,
  answeringFor,
  gapsText,
  violationsOutside,
  waitAnswering,
  type Gap,
} from '../../src/sim/outage.js';
import { alive, argvOf, namespacesWith, processesIn } from '../../src/sim/procs.js';

const STATE = '/run/exitnode-sim-xs2-test';
const PFX = 'xs2-';
const A = 902;
const A1 = 903;
const cli = (args: string[]): ReturnType<typeof run> => run([process.execPath, 'bin/exitnode.js', ...args]);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const down = (): ReturnType<typeof run> => cli(['sim', 'down', '--state', STATE, '--ns-prefix', PFX]);

after(async () => {
  if (!process.env.XS2_KEEP) await down();
});

const upArgs = (failover: 'vrrp' | 'lease', allocation: number): string[] => [
  'sim',
  'up',
  '--state',
  STATE,
  '--ns-prefix',
  PFX,
  '--allocation',
  String(allocation),
  '--nodes',
  '3',
  '--exit-nodes',
  '2',
  '--tenants',
  '2',
  '--nat-node',
  '--failover',
  failover,
];

/** The upstream router as its operator would compare it: addresses, routes, firewall, forwarding. */
async function upstreamConfig(): Promise<string> {
  const parts = await Promise.all(
    [
      ['ip', '-d', 'addr', 'show'],
      ['ip', '-6', 'route', 'show', 'table', 'all'],
      ['ip', '-4', 'route', 'show', 'table', 'all'],
      ['nft', 'list', 'ruleset'],
    ].map(async (argv) => `$ ${argv.join(' ')}\n${(await run(inNs(`${PFX}up`, argv))).stdout}`),
  );
  return parts.join('\n');
}

/** Four streams across SLOT: out over IPv4 and in over IPv6, for the public (n3) and the NAT'ed (n4) workload. */
class Streams extends SlotStreams {
  constructor(s: SimState, slot: number) {
    super(s, slot, { nodes: ['n3', 'n4'] });
  }
  async answering(): Promise<void> {
    assert.deepEqual(await this.silent(), [], 'every stream answers before the event');
  }
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const gapText = gapsText;
function assertGaps(gs: { name: string; g: Gap }[], maxMs: number, what: string): void {
  for (const x of gs) {
    assert.ok(x.g.baseline, `${what}: ${x.name} answered before the event`);
    assert.ok(x.g.closed, `${what}: ${x.name} answers again`);
    assert.ok(x.g.ms <= maxMs, `${what}: ${x.name} gap ${secs(x.g.ms)} > ${secs(maxMs)}`);
  }
}

async function checkLiveOk(s: SimState, what: string): Promise<void> {
  // As `sim check` does: a failed node's workloads and those on a standby's copy of an ExitPoint
  // NR are left out; the ExitPoint NR's workload counts where its gateway is master.
  let r = (await checkLive(s)).report;
  for (let i = 0; i < 5 && !r.ok; i++) {
    await sleep(1000);
    r = (await checkLive(s)).report;
  }
  assert.ok(
    r.ok,
    `${what}: sim check failed: ${r.cells
      .filter((c) => !c.ok)
      .map((c) => `${c.name}: ${c.stop ?? c.got}`)
      .join('; ')}`,
  );
}

/** Candidates per slot as `sim status --json` reports them. */
async function candidates(): Promise<Record<number, string[]>> {
  const r = await cli(['sim', 'status', '--state', STATE, '--json']);
  const j = JSON.parse(r.stdout) as { slots: { slot: number; candidates: string[] | null }[] };
  return Object.fromEntries(j.slots.map((x) => [x.slot, x.candidates ?? []]));
}

/** Every keepalived and wireguard-go of the sim now: by the namespaces and by the state's pid files. */
function simProcesses(s: SimState): { pid: number; what: string }[] {
  const out = new Map<number, string>();
  for (const p of processesIn(namespacesWith(PFX)))
    if (/keepalived|wireguard-go/.test(p.comm)) out.set(p.pid, `${p.comm} in ${p.ns}`);
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    const argv = argvOf(Number(d)).join(' ');
    if ((argv.includes('keepalived') && argv.includes(s.stateDir)) || new RegExp(`wireguard-go.*-${A}\\b`).test(argv))
      out.set(Number(d), argv);
  }
  return [...out].map(([pid, what]) => ({ pid, what }));
}

/** What is left of the sim after down: namespaces, processes, key files, sockets (a scan of the host). */
function leftovers(s: SimState): string[] {
  const out: string[] = [];
  for (const n of namespacesWith(PFX)) out.push(`namespace ${n}`);
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    const argv = argvOf(Number(d)).join(' ');
    if (/keepalived/.test(argv) && argv.includes(s.stateDir)) out.push(`keepalived ${d}: ${argv}`);
    if (new RegExp(`wireguard-go.*-${A}\\b`).test(argv)) out.push(`wireguard-go ${d}: ${argv}`);
    if (argv.includes(STATE)) out.push(`process ${d}: ${argv}`);
  }
  if (existsSync(STATE)) out.push(`state ${STATE}`);
  for (const n of s.nodes) if (existsSync(join(n.stateDir, 'keys'))) out.push(`key files of ${n.id}`);
  if (existsSync('/var/run/wireguard'))
    for (const f of readdirSync('/var/run/wireguard')) if (f.endsWith(`-${A}.sock`)) out.push(`socket ${f}`);
  return out;
}

async function ifUp(ns: string, dev: string): Promise<boolean> {
  const r = await run(inNs(ns, ['ip', '-json', 'link', 'show', 'dev', dev]));
  const j = r.code === 0 ? (JSON.parse(r.stdout) as { flags: string[] }[]) : [];
  return !!j[0]?.flags.includes('UP');
}

test(
  'stage 2 on the simulated farm: VRRP candidates, shared keys, floating endpoints',
  { timeout: 900_000 },
  async (t) => {
    if (!requireRoot(t, ['nft', 'wg', 'wireguard-go', 'keepalived', 'python3', 'nsenter', 'ping', 'unshare'])) return;
    // The parts of stage 2 landed together at the end of a session and have not yet run end to
    // end on the simulated farm: the test runs on request until it has passed here.
    if (process.env.EXITNODE_STAGE2 !== '1') {
      t.skip('stage 2 end to end has not passed on this farm yet; run with EXITNODE_STAGE2=1');
      return;
    }
    await down();
    const up = await cli(upArgs('vrrp', A));
    if (up.code !== 0 && /has no failover mode yet|without it \(failover/.test(up.stdout + up.stderr)) {
      const reason = (up.stdout + up.stderr).split('\n').find((l) => /failover/.test(l) && /vrrp/.test(l))!;
      t.skip(`stage 2 is not in this build yet: ${reason.trim()}`);
      return;
    }
    assert.equal(up.code, 0, up.stdout + up.stderr);
    const s = loadState(STATE);
    const figures: string[] = [];
    const say = (l: string): void => {
      figures.push(l);
      process.stderr.write(`# ${l}\n`);
    };
    const upstreamBefore = await upstreamConfig();
    const cand = await candidates();
    say(
      `candidates: ${Object.entries(cand)
        .map(([k, v]) => `slot ${k}: ${v.join(',')}`)
        .join('; ')}`,
    );
    for (const sl of s.slots) assert.equal(cand[sl.slot]?.length, 2, `slot ${sl.slot} has two candidates`);
    for (const sl of s.slots)
      assert.equal((await answeringFor(s, sl.slot)).length, 1, `one master for slot ${sl.slot}`);
    const sampler = new HolderSampler(s, 50);
    const cutWindows: [number, number][] = [];
    t.after(() => sampler.stop());

    await t.test(
      'sim fail of the master of slot 1: longest gap ≤ 1.5 s both ways, public and NAT workloads',
      async () => {
        const [master] = await answeringFor(s, 1);
        const st = new Streams(s, 1);
        await st.answering();
        const t0 = Date.now();
        await fail(s, master!);
        const now = await waitAnswering(s, 1, master);
        await sleep(3000);
        const gs = st.gaps(t0);
        st.stop();
        say(gapText(`sim fail ${master} (slot 1 → ${now.node} answering after ${secs(now.at - t0)})`, gs));
        assertGaps(gs, 1500, 'sim fail');
        await checkLiveOk(s, 'after sim fail');
        assert.equal(await upstreamConfig(), upstreamBefore, 'the upstream router is byte-identical');
      },
    );

    await t.test('sim recover: the old master comes back as backup, its ExitPoints silent', async () => {
      const failed = s.nodes.find((n) => n.failed)!;
      const [master] = await answeringFor(s, 1);
      await recover(s, failed.id);
      await sleep(5000);
      assert.deepEqual(await answeringFor(s, 1), [master], 'no preemption: the new master keeps slot 1');
      for (const tn of s.tenants.filter((x) => x.slot === 1)) {
        const ns = `${failed.ns}-net-${tn.exit}-${A}`;
        assert.equal(await ifUp(ns, `wg-${tn.exit}-${A}`), false, `${failed.id}'s ExitPoint ${tn.exit} is down`);
      }
      const dump = await run(wgCommand(failed, ['wg', 'show', 'all', 'transfer']));
      say(`after recover, ${failed.id}'s WireGuard transfer counters: ${dump.stdout.trim().replace(/\n/g, ' | ')}`);
      await checkLiveOk(s, 'after recover');
    });

    await t.test('sim partition of a master from TNoDB, then heal: no gap over 0.5 s', async () => {
      const [master] = await answeringFor(s, 1);
      const st = new Streams(s, 1);
      await st.answering();
      const t0 = Date.now();
      await partition(s, master!);
      await sleep(15_000);
      await heal(s, master!);
      await sleep(3000);
      const gs = st.gaps(t0);
      st.stop();
      say(gapText(`sim partition ${master} for 15 s`, gs));
      assertGaps(gs, 500, 'partition');
      assert.deepEqual(await answeringFor(s, 1), [master], 'the partitioned master still answers');
    });

    await t.test(
      'sim stop server for 60 s: no gap over 0.5 s on a slot with a standby and one with a single candidate',
      async () => {
        // Slot 2 gets a single candidate (its current master) for this step.
        const [m2] = await answeringFor(s, 2);
        const farmToken = readToken(s.server.farmTokenFile);
        const a = await cli([
          'slot',
          'assign',
          String(A),
          '2',
          '--nodes',
          m2!,
          '--server',
          s.server.url,
          '--token',
          farmToken,
        ]);
        assert.equal(a.code, 0, `slot assign --nodes: ${a.stdout}${a.stderr}`);
        await sleep(3000);
        assert.deepEqual((await candidates())[2], [m2]);
        const st1 = new Streams(s, 1);
        const st2 = new Streams(s, 2);
        await Promise.all([st1.answering(), st2.answering()]);
        const t0 = Date.now();
        await stopServer(s);
        await sleep(60_000);
        await startServer(s);
        await sleep(5000);
        const g1 = st1.gaps(t0);
        const g2 = st2.gaps(t0);
        st1.stop();
        st2.stop();
        say(gapText('server stopped 60 s, slot 1 (standby)', g1));
        say(gapText('server stopped 60 s, slot 2 (single candidate)', g2));
        assertGaps(g1, 500, 'server stop, slot 1');
        assertGaps(g2, 500, 'server stop, slot 2');
        const b = await cli([
          'slot',
          'assign',
          String(A),
          '2',
          '--nodes',
          s.nodes
            .filter((n) => n.exitCapable)
            .map((n) => n.id)
            .sort((x) => (x === m2 ? -1 : 1))
            .join(','),
          '--server',
          s.server.url,
          '--token',
          farmToken,
        ]);
        assert.equal(b.code, 0, b.stdout + b.stderr);
      },
    );

    await t.test('slot move (planned): longest gap ≤ 0.5 s', async () => {
      const [from] = await answeringFor(s, 2);
      const to = s.nodes.find((n) => n.exitCapable && n.id !== from)!.id;
      await sleep(3000); // the standby rebuilt by the previous step
      const st = new Streams(s, 2);
      await st.answering();
      const t0 = Date.now();
      await adminClient(s).as(readToken(s.server.farmTokenFile)).moveSlot(A, 2, to);
      const now = await waitAnswering(s, 2, from);
      await sleep(3000);
      const gs = st.gaps(t0);
      st.stop();
      say(gapText(`slot move ${A}/2 ${from} → ${to} (answering after ${secs(now.at - t0)})`, gs));
      assert.equal(now.node, to);
      assertGaps(gs, 500, 'slot move');
    });

    await t.test(
      'sim cut-vrrp between the candidates: two masters, resolved within 5 s while TNoDB is up',
      async () => {
        const [c1, c2] = (await candidates())[1]!;
        const t0 = Date.now();
        await cutVrrp(s, c1!, c2!);
        await sleep(12_000);
        const dropped = await vrrpDropped(s);
        await healVrrp(s);
        const t1 = Date.now();
        await sleep(3000);
        cutWindows.push([t0, t1 + 2000]);
        const during = sampler.violations.filter((v) => v.slot === 1 && v.at >= t0 && v.at <= t1);
        const last = during.length ? during[during.length - 1]!.at - t0 : 0;
        say(
          `VRRP cut between ${c1} and ${c2} for ${secs(t1 - t0)} (${dropped} adverts dropped): ${during.length ? `two masters from ${secs(during[0]!.at - t0)} to ${secs(last)} after the cut` : 'never two masters'}`,
        );
        assert.ok(dropped > 0, 'the cut dropped adverts');
        assert.ok(during.length > 0, 'the cut made two masters (else it cut nothing)');
        assert.ok(last <= 5000, `two masters resolved within 5 s (last seen ${secs(last)} after the cut)`);
        assert.equal((await answeringFor(s, 1)).length, 1);
      },
    );

    await sampler.stop();
    const outside = violationsOutside(sampler.violations, cutWindows);
    say(
      `sampler: ${sampler.samples.length} samples, largest interval ${sampler.maxIntervalMs()} ms, two holders of a slot outside the injected cut: ${outside.length} times`,
    );
    assert.deepEqual(outside, [], 'never two holders of a slot outside the injected cut');

    await t.test('sim down: no keepalived, no wireguard-go, no namespace, no key file', async () => {
      const before = simProcesses(s);
      assert.ok(
        before.some((p) => /keepalived/.test(p.what)),
        'keepalived ran',
      );
      const d = await down();
      assert.equal(d.code, 0, d.stderr);
      assert.deepEqual(
        before.filter((p) => alive(p.pid)),
        [],
        'every process seen before down is gone',
      );
      assert.deepEqual(leftovers(s), [], 'nothing of the sim is left (scan)');
    });

    await baseline(t, say);
    for (const f of figures) t.diagnostic(f);
  },
);

/** Stage 1 in the same run: the same farm in lease mode, sim fail of slot 1's holder, the same streams. */
async function baseline(t: TestContext, say: (l: string) => void): Promise<void> {
  await t.test('baseline: stage 1 (lease), sim fail of slot 1 holder, the same streams', async () => {
    await down();
    const up = await cli(upArgs('lease', A1));
    assert.equal(up.code, 0, up.stdout + up.stderr);
    const s = loadState(STATE);
    const holder = (await adminClient(s).getAllocation(A1)).slots[0]!.node!;
    const st = new Streams(s, 1);
    await st.answering();
    const t0 = Date.now();
    await fail(s, holder);
    const now = await waitAnswering(s, 1, holder, 60_000);
    // Stage 1: the remote NRs learn the new ExitPoint key from their next view.
    await st.recovered(t0, 30_000);
    const gs = st.gaps(t0);
    st.stop();
    say(gapText(`stage 1 baseline: sim fail ${holder} (slot 1 rebuilt on ${now.node} after ${secs(now.at - t0)})`, gs));
    await down();
    void readFileSync;
  });
}
