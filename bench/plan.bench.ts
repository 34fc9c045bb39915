// npm run bench:plan — the plan of every NR id of one /48 (61,184 NRs, slots 1-15) plus its slot.
// Goal (issue "Foundation"): under 1 s on this machine. Baseline, same run: the same plans from
// the independent ipaddr.js-based implementation used by the tests. Median of 7 rounds each,
// after one warm-up round, so a noisy neighbour on the shared machine moves one round, not the figure.
import { performance } from 'node:perf_hooks';
import { refNr, refSlot } from '../test/reference/plan-ref.js';
import { allocation, planNr, planSlot, slotIdRange } from '../src/core/plan.js';

const ROUNDS = 7;
const a = allocation('2001:db8:5e::/48', 1);
const P = a.prefix.toString();

function ours(): number {
  let n = 0;
  for (let E = 1; E <= 15; E++) {
    planSlot(a, E);
    const { first, last } = slotIdRange(E);
    for (let S = first; S <= last; S++) {
      if (planNr(a, S).WGPort === S) n++;
    }
  }
  return n;
}

function reference(): number {
  let n = 0;
  for (let E = 1; E <= 15; E++) {
    refSlot(P, 1, E);
    const { first, last } = slotIdRange(E);
    for (let S = first; S <= last; S++) {
      if (refNr(P, 1, S.toString(16)).WGPort === S) n++;
    }
  }
  return n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

function measure(fn: () => number): { ms: number; count: number; all: number[] } {
  fn();
  const all: number[] = [];
  let count = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    count = fn();
    all.push(performance.now() - t0);
  }
  return { ms: median(all), count, all };
}

const o = measure(ours);
const r = measure(reference);
if (o.count !== 61184 || r.count !== 61184) throw new Error(`expected 61184 plans, got ${o.count} / ${r.count}`);
const row = (name: string, m: { ms: number; count: number; all: number[] }): string =>
  `${name.padEnd(36)} ${m.ms.toFixed(1).padStart(8)} ms  ${((m.ms * 1000) / m.count).toFixed(2).padStart(6)} µs/plan   rounds: ${m.all.map((x) => x.toFixed(0)).join(' ')}`;
console.log(
  `plan of every NR id of one /48: ${o.count} NRs + 15 slots, median of ${ROUNDS} rounds (node ${process.version})`,
);
console.log(row('exitnode core (src/core/plan.ts)', o));
console.log(row('baseline: ipaddr.js reference', r));
console.log(`ratio: ${(o.ms / r.ms).toFixed(2)}x the baseline; goal < 1000 ms: ${o.ms < 1000 ? 'met' : 'NOT met'}`);
