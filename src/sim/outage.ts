// Measuring a failover on the simulated farm (the root test and `npm run bench:failover` share it):
//
//   pings     a workload pings across the slot every 10 ms (ping -D: each reply's time); the
//             outage is the longest gap between two replies, less one interval
//   sampler   every 50 ms, which nodes' gateways answer for each slot (uplink UP with an
//             address, src/sim/failover.ts sampleHolders); two at once for one slot is a violation
//   slot      the server's holder of the slot, polled every 50 ms: when the move happened
//
// The outage splits into detection (event → the server moved the slot), rebuild (→ the new
// node's gateway answers: uplink up with its addresses) and peer updates (→ the first reply:
// the ExitPoint's new key reached the other nodes, neighbour caches, routes).

import { spawn, type ChildProcess } from 'node:child_process';
import { inNs } from '../kernel/exec.js';
import { adminClient } from './daemons.js';
import { sampleHolders, type Holder } from './failover.js';
import type { SimState } from './state.js';

export class PingStream {
  readonly replies: number[] = [];
  private child: ChildProcess;
  private buf = '';

  constructor(
    readonly ns: string,
    readonly dst: string,
    readonly intervalMs = 10,
  ) {
    const argv = inNs(ns, [
      'ping',
      '-D',
      '-n',
      dst.includes(':') ? '-6' : '-4',
      '-i',
      String(intervalMs / 1000),
      '-W',
      '1',
      dst,
    ]);
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      const lines = this.buf.split('\n');
      this.buf = lines.pop()!;
      for (const l of lines) {
        const m = /^\[(\d+\.\d+)\] \d+ bytes from/.exec(l);
        if (m) this.replies.push(Number(m[1]) * 1000);
      }
    });
  }

  /** The longest gap between replies in [from, to] (ms since the epoch), less one interval, with its end. */
  gap(from: number, to = Date.now()): { ms: number; start: number; end: number } {
    const r = this.replies.filter((t) => t >= from - 1000 && t <= to);
    let best = { ms: 0, start: from, end: from };
    for (let i = 1; i < r.length; i++) {
      const g = r[i]! - r[i - 1]!;
      if (g - this.intervalMs > best.ms) best = { ms: g - this.intervalMs, start: r[i - 1]!, end: r[i]! };
    }
    return best;
  }

  stop(): void {
    this.child.kill('SIGINT');
  }
}

export interface Violation {
  at: number;
  slot: number;
  nodes: string[];
}

export class HolderSampler {
  readonly violations: Violation[] = [];
  readonly samples: { at: number; holders: Holder[] }[] = [];
  private running = true;
  private done: Promise<void>;

  constructor(
    private s: SimState,
    readonly everyMs = 50,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const t0 = Date.now();
      const holders = await sampleHolders(this.s);
      this.samples.push({ at: t0, holders });
      const by = new Map<number, string[]>();
      for (const h of holders) by.set(h.slot, [...(by.get(h.slot) ?? []), h.node]);
      for (const [slot, nodes] of by) if (nodes.length > 1) this.violations.push({ at: t0, slot, nodes });
      await new Promise((r) => setTimeout(r, Math.max(0, this.everyMs - (Date.now() - t0))));
    }
  }

  /** First sample at or after FROM in which NODE answers for SLOT. */
  firstHeld(slot: number, node: string, from: number): number | undefined {
    return this.samples.find((x) => x.at >= from && x.holders.some((h) => h.slot === slot && h.node === node))?.at;
  }

  /** Largest interval between two samples (the sampler's real resolution on a busy machine). */
  maxIntervalMs(): number {
    let m = 0;
    for (let i = 1; i < this.samples.length; i++) m = Math.max(m, this.samples[i]!.at - this.samples[i - 1]!.at);
    return m;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/** Waits until the server gives SLOT to a node other than FROM; returns the time it saw it and the node. */
export async function waitMoved(
  s: SimState,
  slot: number,
  from: string,
  ms = 60_000,
): Promise<{ at: number; node: string; epoch: number }> {
  const admin = adminClient(s);
  const end = Date.now() + ms;
  for (;;) {
    const r = (await admin.getAllocation(s.allocation).catch(() => undefined))?.slots[slot - 1];
    if (r?.node && r.node !== from) return { at: Date.now(), node: r.node, epoch: r.epoch };
    if (Date.now() > end) throw new Error(`slot ${slot} still on ${from} after ${ms} ms`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

export interface OutageReport {
  detectionMs: number;
  rebuildMs: number;
  peersMs: number;
  totalMs: number;
  to: string;
  epoch: number;
}

/** Splits an outage that started at T0 (see the header). PINGS must cross the slot. */
export async function outageOf(
  t0: number,
  moved: { at: number; node: string; epoch: number },
  slot: number,
  sampler: HolderSampler,
  pings: PingStream,
  ms = 60_000,
): Promise<OutageReport> {
  const end = Date.now() + ms;
  while (Date.now() < end && !pings.replies.some((t) => t > moved.at)) await new Promise((r) => setTimeout(r, 50));
  // A few more replies so that the gap's end is certain.
  await new Promise((r) => setTimeout(r, 300));
  const g = pings.gap(t0);
  const built = sampler.firstHeld(slot, moved.node, t0) ?? moved.at;
  const detectionMs = moved.at - t0;
  const rebuildMs = Math.max(0, built - moved.at);
  return {
    detectionMs,
    rebuildMs,
    peersMs: Math.max(0, g.end - built),
    totalMs: g.ms,
    to: moved.node,
    epoch: moved.epoch,
  };
}

export function outageText(what: string, r: OutageReport): string {
  const s = (x: number): string => `${(x / 1000).toFixed(2)} s`;
  return `${what}: outage ${s(r.totalMs)} = detection ${s(r.detectionMs)} + rebuild ${s(r.rebuildMs)} + peer updates ${s(r.peersMs)} (→ ${r.to}, epoch ${r.epoch})`;
}
