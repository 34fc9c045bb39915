// npm run bench:failover — failover figures on the simulated farm (root; namespaces "xfb-",
// allocation 851), each round on a fresh farm of 3 nodes (2 exit-capable), with 10 ms pings from a
// workload on the non-exit node to the internet host (IPv4 out through the slot's gateway):
//   default   sim fail of the slot-1 holder with the default timers (lease TTL 5 s, server margin
//             1 s, heartbeat 1 s, agent margin 1 s) — the baseline of this run
//   fast      the same with TTL 2 s, server margin 0.5 s, heartbeat 0.5 s, agent margin 0.5 s
//   move      exitnode slot move (planned), default timers
//   N TNs     one slot (the other exit-capable node a standby) carrying --tns networks (default
//             100: tenant 1 of the sim plus ExitPoint-only networks), sim fail of the holder: the
//             same split, and the time until the new holder applied all of them. With userspace
//             WireGuard each ExitPoint is a wireguard-go process holding an inotify instance, and
//             fs.inotify.max_user_instances (128 by default) caps them host-wide: 200 TNs need the
//             kernel module or a higher limit.
// Options: --rounds N (default 1), --tns N, --skip default,fast,move,tns. Medians when rounds > 1.
// A round measures only when the workload's pings answer before the event; a farm on which they do
// not is discarded and built again (at most twice), and each discarded farm is printed. A round whose
// pings never answer again after the event prints its lower bound and the bench exits with status 1.
import { parseArgs } from 'node:util';
import { up, down, waitConverged } from '../src/sim/farm.js';
import { adminClient, agentHealth } from '../src/sim/daemons.js';
import { fail } from '../src/sim/failover.js';
import { HolderSampler, PingStream, outageOf, outageText, waitMoved, type OutageReport } from '../src/sim/outage.js';
import { readToken, type SimState } from '../src/sim/state.js';
import { INTERNET4 } from '../src/sim/topology.js';
import { run } from '../src/kernel/exec.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '1' },
    tns: { type: 'string', default: '100' },
    skip: { type: 'string', default: '' },
  },
});
const rounds = Number(values.rounds);
const skip = new Set(values.skip!.split(',').filter(Boolean));
const STATE = '/run/exitnode-sim-xfb-bench';
const FAST = {
  EXITNODE_SIM_LEASE_TTL_MS: '2000',
  EXITNODE_SIM_SERVER_MARGIN_MS: '500',
  EXITNODE_SIM_HEARTBEAT: '0.5',
  EXITNODE_SIM_FENCE_MARGIN: '0.5',
};

function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const old = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return fn().finally(() => {
    for (const [k, v] of Object.entries(old)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

async function farm(o: { slots?: number; tenants?: number } = {}): Promise<SimState> {
  await down({ stateDir: STATE, nsPrefix: 'xfb-' });
  return up({
    stateDir: STATE,
    nsPrefix: 'xfb-',
    allocation: 851,
    nodes: 3,
    exitNodes: 2,
    tenants: o.tenants ?? 2,
    ...(o.slots ? { slots: o.slots } : {}),
  });
}

class NoBaseline extends Error {}

/** Pings from the slot-1 tenant's workload on n3 to the internet host, answering (else NoBaseline). */
async function pingsAcross(s: SimState): Promise<PingStream> {
  const tn = s.tenants.find((x) => x.slot === 1)!;
  const w = s.workloads.find((x) => x.tenant === tn.name && x.node === 'n3')!;
  const pings = new PingStream(w.ns, INTERNET4);
  await new Promise((r) => setTimeout(r, 1000));
  if (!(await pings.answering(5000))) {
    pings.stop();
    throw new NoBaseline(pings.trouble(pings.gap(Date.now())));
  }
  return pings;
}

/** ROUND on a fresh farm from BUILD; a farm whose pings do not answer before the event is built again. */
async function onFreshFarm<T>(build: () => Promise<SimState>, round: (s: SimState) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await round(await build());
    } catch (e) {
      if (!(e instanceof NoBaseline) || attempt === 3) throw e;
      const line = `farm discarded, its data path did not work before the event: ${e.message}`;
      out.push(line);
      console.log(line);
    }
  }
}

async function failRound(
  s: SimState,
  extra?: (moved: { at: number; node: string }) => Promise<string>,
): Promise<{ r: OutageReport; note: string }> {
  const pings = await pingsAcross(s);
  const sampler = new HolderSampler(s);
  const from = (await adminClient(s).getAllocation(s.allocation)).slots[0]!.node!;
  const t0 = Date.now();
  await fail(s, from);
  const moved = await waitMoved(s, 1, from, 120_000);
  const note = extra ? await extra(moved) : '';
  const r = await outageOf(t0, moved, 1, sampler, pings, 180_000);
  pings.stop();
  await sampler.stop();
  if (sampler.violations.length) throw new Error(`two gateways for one slot: ${JSON.stringify(sampler.violations[0])}`);
  return { r, note };
}

async function moveRound(s: SimState): Promise<OutageReport> {
  const pings = await pingsAcross(s);
  const sampler = new HolderSampler(s);
  const from = (await adminClient(s).getAllocation(s.allocation)).slots[0]!.node!;
  const to = s.nodes.find((n) => n.exitCapable && n.id !== from)!.id;
  const farmClient = adminClient(s).as(readToken(s.server.farmTokenFile));
  const t0 = Date.now();
  await farmClient.moveSlot(s.allocation, 1, to);
  const moved = await waitMoved(s, 1, from);
  const r = await outageOf(t0, moved, 1, sampler, pings);
  pings.stop();
  await sampler.stop();
  if (sampler.violations.length) throw new Error(`two gateways for one slot: ${JSON.stringify(sampler.violations[0])}`);
  return r;
}

const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
function summary(name: string, rs: OutageReport[]): string {
  // A round whose pings never answered again has no outage figure, only a lower bound: no median.
  const open = rs.filter((r) => !r.recovered);
  if (open.length) {
    process.exitCode = 1;
    return open.map((r) => outageText(`${name} (${open.length} of ${rs.length} rounds)`, r)).join('\n');
  }
  const m = (k: 'detectionMs' | 'rebuildMs' | 'peersMs' | 'totalMs'): number => med(rs.map((r) => r[k]));
  return outageText(`${name} (median of ${rs.length})`, {
    ...rs[0]!,
    detectionMs: m('detectionMs'),
    rebuildMs: m('rebuildMs'),
    peersMs: m('peersMs'),
    totalMs: m('totalMs'),
  });
}

const out: string[] = [];
try {
  for (const [name, env] of [
    ['default timers', {}],
    ['fast timers (TTL 2 s, margins 0.5 s, heartbeat 0.5 s)', FAST],
  ] as const) {
    if (skip.has(name.startsWith('default') ? 'default' : 'fast')) continue;
    const rs: OutageReport[] = [];
    for (let i = 0; i < rounds; i++) rs.push(await withEnv(env, async () => (await onFreshFarm(farm, failRound)).r));
    out.push(summary(`sim fail, ${name}`, rs));
    console.log(out.at(-1));
  }
  if (!skip.has('move')) {
    const rs: OutageReport[] = [];
    for (let i = 0; i < rounds; i++) rs.push(await onFreshFarm(farm, moveRound));
    out.push(summary('slot move (planned), default timers', rs));
    console.log(out.at(-1));
  }
  if (!skip.has('tns')) {
    const n = Number(values.tns);
    const s = await farm({ slots: 1, tenants: 1 });
    const t0 = Date.now();
    const tc = adminClient(s).as(readToken(s.tenants[0]!.tokenFile));
    for (let i = s.tenants.length; i < n; i++) await tc.createNetwork(`bulk-${i}`, s.allocation);
    await waitConverged(s, 600_000);
    console.log(`${n} TNs on slot 1 built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const { r, note } = await failRound(s, async (moved) => {
      const node = s.nodes.find((x) => x.id === moved.node)!;
      const admin = adminClient(s);
      for (;;) {
        const [v, h] = await Promise.all([admin.view(node.id), agentHealth(node.stateDir)]);
        if (h && h.appliedVersion === v.version && h.status === 'ok')
          return `; the new holder applied all ${n} ExitPoints ${((Date.now() - moved.at) / 1000).toFixed(1)} s after the move`;
        await new Promise((res) => setTimeout(res, 100));
      }
    });
    if (!r.recovered) process.exitCode = 1;
    out.push(outageText(`sim fail with ${n} TNs on the slot`, r) + note);
    console.log(out.at(-1));
  }
} finally {
  await down({ stateDir: STATE, nsPrefix: 'xfb-' });
  await run(['true']);
}
console.log('\n' + out.join('\n'));
