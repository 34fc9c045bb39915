// API write → applied on every agent, measured on a running simulated farm (the end-to-end test
// and `npm run bench:sim` share it). Each change adds (or removes) one NR of a tenant through the
// API; "applied" is when every agent's /healthz reports a view version at least the one the server
// holds for its node right after the write. The baseline, measured beside each change, is a bare
// long-poll on the same server: how long the server itself takes to wake a waiting client.

import { TnodbClient } from '../client/index.js';
import { run } from '../kernel/exec.js';
import { adminClient, agentHealth } from './daemons.js';
import { attachWorkloads, waitConverged, workloadOf } from './farm.js';
import { readToken, saveState, type SimState } from './state.js';

export interface ChangeTiming {
  op: 'add' | 'remove';
  nr: string;
  /** API write → every agent applied the write's view version. */
  appliedMs: number;
  /** API write → a long-poll of the changed node's view returned (the server's own wake-up). */
  longPollMs: number;
  /** API write → everything converged, incl. the new NR's key published and every peer updated (adds). */
  convergedMs?: number;
}

async function appliedEverywhere(s: SimState, targets: Map<string, number>): Promise<void> {
  for (;;) {
    const hs = await Promise.all(s.nodes.map((n) => agentHealth(n.stateDir)));
    if (s.nodes.every((n, i) => Number(hs[i]?.appliedVersion ?? -1) >= targets.get(n.id)!)) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Makes COUNT changes of the NR of TENANT on NODE — remove, add, remove, … (a network holds one
 * NR per node) — and returns one timing per change. Ends with the NR present (an even COUNT), as
 * a new NR with a fresh id; the workload is rebuilt on it and the state saved.
 */
export async function measureChanges(
  s: SimState,
  o: { tenant: string; node: string; count: number },
): Promise<ChangeTiming[]> {
  const admin = adminClient(s);
  const tn = s.tenants.find((x) => x.name === o.tenant)!;
  const tc = admin.as(readToken(tn.tokenFile));
  const out: ChangeTiming[] = [];
  const wi = s.workloads.findIndex((w) => w.tenant === o.tenant && w.node === o.node);
  let nr: string | undefined = s.workloads[wi]!.nr;
  await run(['ip', 'netns', 'del', s.workloads[wi]!.ns]);
  for (let i = 0; i < o.count; i++) {
    const op = nr ? 'remove' : 'add';
    const base = await admin.view(o.node);
    const poll = new TnodbClient({ server: s.server.url, token: readToken(s.server.adminTokenFile) });
    const t0 = performance.now();
    const lp = poll.view(o.node, { after: base.version, waitS: 20 }).then(() => performance.now() - t0);
    if (op === 'add') nr = (await tc.addResource(tn.network, o.node, `measure-${Date.now()}-${i}`)).id;
    else await tc.removeResource(tn.network, nr!);
    const targets = new Map<string, number>();
    for (const n of s.nodes) targets.set(n.id, (await admin.view(n.id)).version);
    await appliedEverywhere(s, targets);
    const appliedMs = performance.now() - t0;
    const longPollMs = await lp;
    let convergedMs: number | undefined;
    if (op === 'add') {
      await waitConverged(s, 30_000);
      convergedMs = performance.now() - t0;
    }
    out.push({ op, nr: nr!, appliedMs, longPollMs, ...(convergedMs !== undefined ? { convergedMs } : {}) });
    if (op === 'remove') nr = undefined;
  }
  if (nr) {
    s.workloads[wi] = workloadOf(s, tn.network, nr, o.node, o.tenant);
    saveState(s);
    await attachWorkloads(s, [s.workloads[wi]!]);
  }
  return out;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function summarize(ts: ChangeTiming[]): string {
  const f = (xs: number[]): string => `p50 ${Math.round(percentile(xs, 50))} ms, max ${Math.round(Math.max(...xs))} ms`;
  const conv = ts.flatMap((t) => (t.convergedMs !== undefined ? [t.convergedMs] : []));
  return [
    `API write → every agent applied (${ts.length} changes: ${ts.filter((t) => t.op === 'add').length} adds, ${ts.filter((t) => t.op === 'remove').length} removes): ${f(ts.map((t) => t.appliedMs))}`,
    `baseline, API write → the server wakes a bare long-poll (same changes): ${f(ts.map((t) => t.longPollMs))}`,
    ...(conv.length
      ? [
          `API write → fully converged incl. the new NR's key published and every peer updated (${conv.length} adds): ${f(conv)}`,
        ]
      : []),
  ].join('\n');
}
