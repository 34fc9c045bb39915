// `exitnode sim check`: the reachability matrix of DESIGN.md section 9, each cell a real packet
// between namespaces, run in parallel (bounded: the machine has 2 cores) with short timeouts.
// A failing cell names the hop where the packet stops: the path comes from core `explain` (what
// the plan says the hops are), and each hop's namespace is probed for the destination — the
// packet stops at the last hop that cannot reach it before one that can.

import { explain } from '../core/explain.js';
import { allocation as planAllocation } from '../core/plan.js';
import { run, inNs, pool } from '../kernel/exec.js';
import { LineStream } from './procs.js';
import { INTERNET4, INTERNET6 } from './topology.js';
import type { SimState, SimWorkload } from './state.js';

export interface Cell {
  name: string;
  kind: 'internet→workload' | 'workload→internet' | 'workload↔workload' | 'tenant isolation';
  family: 'IPv6' | 'IPv4';
  from: string;
  to: string;
  expect: 'reach' | 'blocked' | string;
  got: string;
  ok: boolean;
  ms: number;
  /** For a failing cell: where the packet stops, with the plan's route at that hop. */
  stop?: string;
}

export interface CheckReport {
  ok: boolean;
  cells: Cell[];
  ms: number;
}

interface Hop {
  label: string;
  ns: string;
  route?: string;
}

async function ping(ns: string, dst: string, deadlineS: number): Promise<boolean> {
  // -c 1 with a deadline: re-sends every 200 ms until one reply, so a neighbour still being
  // resolved costs one retry rather than a failed cell.
  const r = await run(
    inNs(ns, [
      'ping',
      dst.includes(':') ? '-6' : '-4',
      '-n',
      '-q',
      '-c',
      '1',
      '-i',
      '0.2',
      '-w',
      String(deadlineS),
      dst,
    ]),
  );
  return r.code === 0;
}

/** Where a packet from the source towards DST stops: the hop before the first one that reaches DST. */
async function locate(hops: Hop[], dst: string, source: string): Promise<string> {
  const reach = await Promise.all(hops.map((h) => ping(h.ns, dst, 1)));
  const first = reach.indexOf(true);
  if (first === 0)
    return `stops between ${source} and ${hops[0]!.label} (${hops[0]!.ns} reaches ${dst}, ${source} does not)`;
  const at = first === -1 ? hops[hops.length - 1]! : hops[first - 1]!;
  return `stops at ${at.label} (${at.ns}${at.route ? `: ${at.route}` : ''})${first === -1 ? ` — not even ${at.ns} reaches ${dst}` : ` — ${hops[first]!.ns} reaches ${dst}`}`;
}

/**
 * Runs every cell. ANSWERING (slot → node) names the node whose gateway holds each slot's
 * addresses now (in stage 2 the VRRP master, which need not be the slot's first candidate): the
 * hops of a failing cell are then those of that node's gateway and ExitPoint.
 */
export async function check(
  s: SimState,
  o: { concurrency?: number; answering?: ReadonlyMap<number, string> } = {},
): Promise<CheckReport> {
  const t0 = performance.now();
  const a = planAllocation(s.prefix, s.allocation);
  const inet = `${s.nsPrefix}inet`;
  const upNs = `${s.nsPrefix}up`;
  const tenantOf = (w: SimWorkload): SimState['tenants'][number] => s.tenants.find((x) => x.name === w.tenant)!;
  const nodeNs = (node: string): string => `${s.nsPrefix}${node}-`;
  const nrNs = (w: { nr: string; node: string }): string => `${nodeNs(w.node)}net-${w.nr}-${s.allocation}`;
  const slotNode = (slot: number): string =>
    o.answering?.get(slot) ?? s.slots.find((x) => x.slot === slot)?.node ?? '?';
  const exitNode = (w: SimWorkload): string =>
    o.answering?.get(tenantOf(w).slot) ??
    s.workloads.find((x) => x.tenant === w.tenant && x.nr === tenantOf(w).exit)?.node ??
    '?';
  const gwNs = (w: SimWorkload): string =>
    `${nodeNs(slotNode(tenantOf(w).slot))}gw-${tenantOf(w).slot}-${s.allocation}`;
  const epNs = (w: SimWorkload): string => nrNs({ nr: tenantOf(w).exit, node: exitNode(w) });

  /** Hops from the internet to workload W, with explain's route text at each. */
  const inbound = (w: SimWorkload): Hop[] => {
    const path = explain(a, w.addr6, { exit: parseInt(tenantOf(w).exit, 16) }).path;
    const route = (prefix: string): string | undefined => path.find((p) => p.at.startsWith(prefix))?.route;
    const hops: Hop[] = [
      { label: 'the upstream router', ns: upNs, route: route('upstream') },
      { label: `gateway gw-${tenantOf(w).slot}-${s.allocation}`, ns: gwNs(w), route: route('gateway') },
      { label: `ExitPoint ${tenantOf(w).exit}`, ns: epNs(w), route: route('ExitPoint') },
      { label: `NR ${w.nr}`, ns: nrNs(w), route: route('NR') },
    ];
    return hops.filter((h, i) => hops.findIndex((x) => x.ns === h.ns) === i);
  };
  const outbound = (w: SimWorkload): Hop[] => {
    const hops: Hop[] = [
      { label: `NR ${w.nr}`, ns: nrNs(w), route: '0.0.0.0/0 dev wg (to the ExitPoint)' },
      { label: `ExitPoint ${tenantOf(w).exit}`, ns: epNs(w), route: '0.0.0.0/0 via 10.1.0.1 onlink (the gateway)' },
      {
        label: `gateway gw-${tenantOf(w).slot}-${s.allocation}`,
        ns: gwNs(w),
        route: `default via the upstream, SNAT to ${s.slots.find((x) => x.slot === tenantOf(w).slot)?.ipv4}`,
      },
      { label: 'the upstream router', ns: upNs },
    ];
    return hops.filter((h, i) => hops.findIndex((x) => x.ns === h.ns) === i);
  };
  const between = (w1: SimWorkload, w2: SimWorkload, dst: string): Hop[] => {
    const path = explain(a, w2.addr6, { exit: parseInt(tenantOf(w2).exit, 16) }).path;
    const hops: Hop[] = [
      { label: `NR ${w1.nr}`, ns: nrNs(w1), route: `${dst} dev wg-${w1.nr}-${s.allocation}` },
      {
        label: `ExitPoint ${tenantOf(w1).exit}`,
        ns: epNs(w1),
        route: path.find((p) => p.at.startsWith('ExitPoint'))?.route,
      },
      { label: `NR ${w2.nr}`, ns: nrNs(w2), route: path.find((p) => p.at.startsWith('NR'))?.route },
    ];
    // Traffic between two non-exit NRs goes directly over WireGuard (every NR peers with every other).
    const direct = hops.filter((h) => h.ns !== epNs(w1) || w1.nr === tenantOf(w1).exit || w2.nr === tenantOf(w2).exit);
    return direct.filter((h, i) => direct.findIndex((x) => x.ns === h.ns) === i);
  };

  type Job = () => Promise<Cell>;
  const jobs: Job[] = [];
  const timed = async (
    c: Omit<Cell, 'ms' | 'got' | 'ok'>,
    fn: () => Promise<{ ok: boolean; got: string; hops?: Hop[]; dst?: string }>,
  ): Promise<Cell> => {
    const t = performance.now();
    const r = await fn();
    const cell: Cell = { ...c, got: r.got, ok: r.ok, ms: Math.round(performance.now() - t) };
    if (!r.ok && r.hops && r.dst) cell.stop = await locate(r.hops, r.dst, c.from);
    return cell;
  };

  for (const w of s.workloads) {
    jobs.push(() =>
      timed(
        {
          name: `internet → ${w.name} (IPv6 ${w.addr6})`,
          kind: 'internet→workload',
          family: 'IPv6',
          from: 'internet',
          to: w.name,
          expect: 'reach',
        },
        async () => {
          const ok = await ping(inet, w.addr6, 3);
          return { ok, got: ok ? 'reach' : 'no reply', hops: inbound(w), dst: w.addr6 };
        },
      ),
    );
  }
  // workload → internet over IPv4: one UDP listener on the internet host sees every cell's source.
  const outCells = s.workloads.map((w) => ({
    w,
    expect: s.slots.find((x) => x.slot === tenantOf(w).slot)?.ipv4 ?? '?',
  }));
  const port = 40000 + (process.pid % 20000);
  const listenerPy = [
    'import socket,sys,json,time',
    's=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)',
    `s.bind(("${INTERNET4}",${port}))`,
    'print("ready",flush=True)',
    `want=set(${JSON.stringify(s.workloads.map((w) => w.name))})`,
    'seen={}',
    'end=time.time()+4',
    'while want-set(seen) and time.time()<end:',
    '  s.settimeout(max(0.01,end-time.time()))',
    '  try:',
    '    d,a=s.recvfrom(200)',
    '  except socket.timeout:',
    '    break',
    '  seen.setdefault(d.decode(),a[0])',
    'print(json.dumps(seen),flush=True)',
  ].join('\n');
  let outResult: Promise<Record<string, string>> | undefined;
  const startListener = async (): Promise<void> => {
    const lines: string[] = [];
    let ready: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const listener = new LineStream(inet, ['python3', '-c', listenerPy], (l) => {
      lines.push(l);
      if (l.includes('ready')) ready();
    });
    outResult = listener.exited.then(() => {
      ready();
      try {
        return JSON.parse(lines.filter((l) => l.trim()).pop() ?? '{}') as Record<string, string>;
      } catch {
        return {};
      }
    });
    await isReady;
  };
  await startListener();
  const senderPy = (name: string): string =>
    `import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor i in range(12):\n  s.sendto(b"${name}",("${INTERNET4}",${port}))\n  time.sleep(0.25)\n`;
  const senders = outCells.map(({ w }) => run(inNs(w.ns, ['timeout', '4', 'python3', '-c', senderPy(w.name)])));

  for (const w1 of s.workloads) {
    for (const w2 of s.workloads) {
      if (w1 === w2) continue;
      if (w1.tenant === w2.tenant) {
        for (const [family, dst] of [
          ['IPv6', w2.addr6],
          ['IPv4', w2.addr4],
        ] as const) {
          jobs.push(() =>
            timed(
              {
                name: `${w1.name} → ${w2.name} (${family} ${dst})`,
                kind: 'workload↔workload',
                family,
                from: w1.name,
                to: w2.name,
                expect: 'reach',
              },
              async () => {
                const ok = await ping(w1.ns, dst, 3);
                return { ok, got: ok ? 'reach' : 'no reply', hops: between(w1, w2, dst), dst };
              },
            ),
          );
        }
      } else if (w1.name < w2.name) {
        jobs.push(() =>
          timed(
            {
              name: `${w1.name} ↛ ${w2.name} (IPv4 ${w2.addr4}, other tenant)`,
              kind: 'tenant isolation',
              family: 'IPv4',
              from: w1.name,
              to: w2.name,
              expect: 'blocked',
            },
            async () => {
              const reached = await ping(w1.ns, w2.addr4, 1);
              return { ok: !reached, got: reached ? 'REACHED' : 'blocked' };
            },
          ),
        );
      }
    }
  }
  const cells = await pool(jobs, o.concurrency ?? 12, (j) => j());
  await Promise.all(senders);
  const seen = await outResult!;
  for (const { w, expect } of outCells) {
    const got = seen[w.name];
    const cell: Cell = {
      name: `${w.name} → internet (IPv4 ${INTERNET4}, source seen as ${expect})`,
      kind: 'workload→internet',
      family: 'IPv4',
      from: w.name,
      to: 'internet',
      expect,
      got: got ?? 'nothing arrived',
      ok: got === expect,
      ms: 0,
    };
    if (!got) cell.stop = await locate(outbound(w), INTERNET4, w.name);
    else if (got !== expect)
      cell.stop = `arrived from ${got}: SNAT at gateway gw-${tenantOf(w).slot}-${s.allocation} should rewrite to ${expect}`;
    cells.push(cell);
  }
  void INTERNET6;
  return { ok: cells.every((c) => c.ok), cells, ms: Math.round(performance.now() - t0) };
}

/** The report; `compact` prints only the failing cells and the summary line. */
export function checkText(r: CheckReport, o: { compact?: boolean } = {}): string {
  const lines = r.cells
    .filter((c) => !o.compact || !c.ok)
    .map((c) => `${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}${c.ok ? '' : `: got ${c.got}${c.stop ? `; ${c.stop}` : ''}`}`);
  const failed = r.cells.filter((c) => !c.ok).length;
  const kinds = [...new Set(r.cells.map((c) => c.kind))].map(
    (k) => `${k} ${r.cells.filter((c) => c.kind === k && c.ok).length}/${r.cells.filter((c) => c.kind === k).length}`,
  );
  lines.push(
    `${failed ? `FAILED: ${failed} of ${r.cells.length} cells` : `all ${r.cells.length} cells as expected`} (${kinds.join(', ')}) in ${(r.ms / 1000).toFixed(1)} s`,
  );
  return lines.join('\n');
}
