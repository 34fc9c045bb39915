// Measuring a failover on the simulated farm (the root test and `npm run bench:failover` share it):
//
//   pings     a workload pings across the slot every 10 ms (ping -D: each reply's time); the
//             outage is the longest gap between two consecutive answered pings from the last reply
//             before the event on, less one interval (longestGap). A stream that stops answering
//             leaves an open gap up to the end of the window, so it reads as a long outage that
//             never closed, never as a small one; a stream that did not answer before the event
//             measured nothing and says so.
//   sampler   every 50 ms, which nodes' gateways answer for each slot (uplink UP with an
//             address, src/sim/failover.ts sampleHolders); two at once for one slot is a violation
//   slot      the server's holder of the slot, polled every 50 ms: when the move happened
//
// The outage splits into detection (event → the server moved the slot), rebuild (→ the new
// node's gateway answers: uplink up with its addresses) and peer updates (→ the first reply:
// the ExitPoint's new key reached the other nodes, neighbour caches, routes).

import { adminClient } from './daemons.js';
import { sampleHolders, type Holder } from './failover.js';
import { LineStream, type StreamExit } from './procs.js';
import type { SimState } from './state.js';
import { INTERNET4 } from './topology.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The longest stretch without a reply in a window, from longestGap. */
export interface Gap {
  /** Its length less one ping interval (ms): 0 for a stream that never missed; a lower bound when open. */
  ms: number;
  /** The reply before it: the last at or before the window's start, or the start itself when there was none. */
  start: number;
  /** The reply that ended it, or the window's end when none came (open). */
  end: number;
  /** False: no reply came after it up to the window's end — the stream stopped answering. */
  closed: boolean;
  /** False: no reply in the lead-in before the window's start — nothing to measure the gap from. */
  baseline: boolean;
}

/**
 * The outage that REPLIES (each answered ping's time, ms since the epoch, in any order) show in
 * [FROM, TO]: the longest gap between consecutive answered pings, starting from the last reply at
 * or before FROM (if it is at most LEADINMS old) and ending with the stretch from the last reply to
 * TO, which counts like any other gap and, when it is the longest, leaves the outage open. Gaps
 * before FROM are not the event's and do not count.
 */
export function longestGap(
  replies: readonly number[],
  from: number,
  to: number,
  intervalMs: number,
  leadInMs = 1000,
): Gap {
  const sorted = replies.filter((t) => t <= to).sort((a, b) => a - b);
  let last: number | undefined;
  for (const t of sorted) if (t <= from) last = t;
  const baseline = last !== undefined && last >= from - leadInMs;
  const points = [baseline ? last! : from, ...sorted.filter((t) => t > from)];
  let best = { len: -1, start: points[0]!, end: points[0]!, closed: true };
  for (let i = 1; i < points.length; i++) {
    const len = points[i]! - points[i - 1]!;
    if (len > best.len) best = { len, start: points[i - 1]!, end: points[i]!, closed: true };
  }
  const tail = to - points[points.length - 1]!;
  if (tail > best.len) best = { len: tail, start: points[points.length - 1]!, end: to, closed: false };
  return { ms: Math.max(0, best.len - intervalMs), start: best.start, end: best.end, closed: best.closed, baseline };
}

export class PingStream {
  readonly replies: number[] = [];
  private readonly stream: LineStream;

  constructor(
    readonly ns: string,
    readonly dst: string,
    readonly intervalMs = 10,
  ) {
    const argv = ['ping', '-D', '-n', dst.includes(':') ? '-6' : '-4', '-i', String(intervalMs / 1000), '-W', '1', dst];
    this.stream = new LineStream(ns, argv, (l) => {
      const m = /^\[(\d+\.\d+)\] \d+ bytes from/.exec(l);
      if (m) this.replies.push(Number(m[1]) * 1000);
    });
  }

  /** How ping ended when it exited on its own (not by stop). */
  get died(): StreamExit | undefined {
    return this.stream.died ? this.stream.exit : undefined;
  }

  /** Waits up to MS for a reply newer than the call; false when none came (or ping exited). */
  async answering(ms = 5000): Promise<boolean> {
    const since = Date.now();
    const end = since + ms;
    while (Date.now() < end && !this.stream.exit) {
      if (this.replies.some((t) => t >= since)) return true;
      await sleep(20);
    }
    return this.replies.some((t) => t >= since);
  }

  /** The outage in [from, to] (ms since the epoch): see longestGap. */
  gap(from: number, to = Date.now()): Gap {
    return longestGap(this.replies, from, to, this.intervalMs);
  }

  /** Why the stream measures nothing or less than a full outage, in words ('' when it is fine). */
  trouble(g: Gap): string {
    const d = this.died;
    const exit = d
      ? `; ping exited${d.code !== null ? ` with status ${d.code}` : ` on ${d.signal}`}${d.stderr ? `: ${d.stderr}` : ''}`
      : '';
    if (!g.baseline) return `${this.ns} → ${this.dst} did not answer in the second before the event${exit}`;
    if (!g.closed)
      return `${this.ns} → ${this.dst}: no reply since ${new Date(g.start).toISOString()}, the pings never answered again${exit}`;
    return '';
  }

  stop(): void {
    void this.stream.stop('SIGINT');
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
  /** The longest gap between answered pings (a lower bound when !recovered). */
  totalMs: number;
  /** The pings answered again after the outage: totalMs is measured, not a lower bound. */
  recovered: boolean;
  /** The pings answered before the event: there was a stream to measure the outage in. */
  answeredBefore: boolean;
  /** What went wrong with the ping stream, in words ('' when nothing did). */
  trouble: string;
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
  while (Date.now() < end && !pings.replies.some((t) => t > moved.at) && !pings.died) await sleep(50);
  // A few more replies so that the gap's end is certain.
  await sleep(300);
  const g = pings.gap(t0);
  const built = sampler.firstHeld(slot, moved.node, t0) ?? moved.at;
  const detectionMs = moved.at - t0;
  const rebuildMs = Math.max(0, built - moved.at);
  return {
    detectionMs,
    rebuildMs,
    peersMs: g.closed ? Math.max(0, g.end - built) : 0,
    totalMs: g.ms,
    recovered: g.closed,
    answeredBefore: g.baseline,
    trouble: pings.trouble(g),
    to: moved.node,
    epoch: moved.epoch,
  };
}

export function outageText(what: string, r: OutageReport): string {
  const s = (x: number): string => `${(x / 1000).toFixed(2)} s`;
  const split = `detection ${s(r.detectionMs)} + rebuild ${s(r.rebuildMs)}`;
  if (!r.answeredBefore) return `${what}: NOTHING MEASURED (${r.trouble}); ${split} (→ ${r.to}, epoch ${r.epoch})`;
  if (!r.recovered)
    return `${what}: outage NOT OVER, at least ${s(r.totalMs)} (${r.trouble}); ${split} (→ ${r.to}, epoch ${r.epoch})`;
  return `${what}: outage ${s(r.totalMs)} = ${split} + peer updates ${s(r.peersMs)} (→ ${r.to}, epoch ${r.epoch})`;
}

/** The nodes whose gateway holds SLOT's addresses now (stage 2: the VRRP master; stage 1: the holder). */
export async function answeringFor(s: SimState, slot: number): Promise<string[]> {
  return (await sampleHolders(s)).filter((h) => h.slot === slot).map((h) => h.node);
}

/**
 * Waits until exactly one node other than FROM holds SLOT's addresses (a VRRP takeover, or a
 * stage-1 move once rebuilt); returns when it saw it and the node.
 */
export async function waitAnswering(
  s: SimState,
  slot: number,
  from: string | undefined,
  ms = 30_000,
): Promise<{ at: number; node: string }> {
  const end = Date.now() + ms;
  for (;;) {
    const now = await answeringFor(s, slot);
    if (now.length === 1 && now[0] !== from) return { at: Date.now(), node: now[0]! };
    if (Date.now() > end)
      throw new Error(`slot ${slot}: ${now.length ? now.join(' and ') : 'nobody'} answering after ${ms} ms`);
    await sleep(50);
  }
}

/** Sampler violations (two nodes holding one slot's addresses) outside the windows given ([from, to] ms). */
export function violationsOutside(v: readonly Violation[], windows: readonly [number, number][]): Violation[] {
  return v.filter((x) => !windows.some(([a, b]) => x.at >= a && x.at <= b));
}

/**
 * The stage-2 ping streams across one slot (issue 10): workload → internet over IPv4 and internet →
 * workload over IPv6, for each workload of the slot's tenant on NODES (default: every node that is
 * not exit-capable: a public one and the NAT'ed one).
 */
export class SlotStreams {
  readonly list: { name: string; p: PingStream }[] = [];

  constructor(s: SimState, slot: number, o: { nodes?: string[]; intervalMs?: number } = {}) {
    const tn = s.tenants.find((x) => x.slot === slot);
    if (!tn) throw new Error(`no tenant on slot ${slot}`);
    const nodes = o.nodes ?? s.nodes.filter((n) => !n.exitCapable).map((n) => n.id);
    for (const node of nodes) {
      const w = s.workloads.find((x) => x.tenant === tn.name && x.node === node);
      if (!w) throw new Error(`no workload of ${tn.name} on ${node}`);
      this.list.push(
        { name: `${w.name} → internet (IPv4)`, p: new PingStream(w.ns, INTERNET4, o.intervalMs) },
        { name: `internet → ${w.name} (IPv6)`, p: new PingStream(`${s.nsPrefix}inet`, w.addr6, o.intervalMs) },
      );
    }
  }

  /** The names of the streams that did not answer within MS. */
  async silent(ms = 10_000): Promise<string[]> {
    const r = await Promise.all(this.list.map((x) => x.p.answering(ms)));
    return this.list.filter((_, i) => !r[i]).map((x) => x.name);
  }

  gaps(from: number, to = Date.now()): { name: string; g: Gap }[] {
    return this.list.map((x) => ({ name: x.name, g: x.p.gap(from, to) }));
  }

  /** Waits up to MS until every stream answered after its gap since FROM (the outage is over). */
  async recovered(from: number, ms = 30_000): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (this.gaps(from).every((x) => x.g.closed && Date.now() - x.g.end > 500)) return true;
      await sleep(200);
    }
    return false;
  }

  stop(): void {
    for (const x of this.list) x.p.stop();
  }
}

/** "WHAT: stream gap; …; longest N s" (an open gap reads "NOT OVER, ≥"). */
export function gapsText(what: string, gs: { name: string; g: Gap }[]): string {
  const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  return `${what}: ${gs.map((x) => `${x.name} ${x.g.closed ? '' : 'NOT OVER, ≥ '}${s(x.g.ms)}`).join('; ')}; longest ${s(Math.max(...gs.map((x) => x.g.ms)))}`;
}
