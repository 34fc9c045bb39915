// The outage a ping stream shows (longestGap), on hand-made reply times: the longest gap between
// consecutive answered pings from the last reply before the event on, and a stream that stops
// answering read as an open (long) gap, never a small one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { longestGap, type Gap } from './outage.js';

const T0 = 1_800_000_000_000;
const IV = 10;
/** Replies every STEP ms from T0+A to T0+B inclusive. */
const every = (a: number, b: number, step = IV): number[] => {
  const out: number[] = [];
  for (let t = a; t <= b; t += step) out.push(T0 + t);
  return out;
};

const cases: { name: string; replies: number[]; to: number; want: Gap }[] = [
  {
    name: 'steady replies, no outage',
    replies: every(-1000, 3000),
    to: 3005,
    want: { ms: 0, start: T0, end: T0 + 10, closed: true, baseline: true },
  },
  {
    name: 'one outage of 2.8 s after the event',
    replies: [...every(-1000, 100), ...every(2900, 3500)],
    to: 3505,
    want: { ms: 2790, start: T0 + 100, end: T0 + 2900, closed: true, baseline: true },
  },
  {
    // What printed "outage 0.01 s" for a failover whose detection took seconds: the pings stopped
    // answering at the event and never came back, and the gaps before the event were all it saw.
    name: 'the stream stops answering at the event and never answers again',
    replies: [...every(-1000, -30), T0 - 10],
    to: 180_000,
    want: { ms: 180_000, start: T0 - 10, end: T0 + 180_000, closed: false, baseline: true },
  },
  {
    name: 'a stream that never answered at all',
    replies: [],
    to: 180_000,
    want: { ms: 179_990, start: T0, end: T0 + 180_000, closed: false, baseline: false },
  },
  {
    name: 'no reply before the event: the gap is counted from the event, and flagged',
    replies: every(3000, 3500),
    to: 3505,
    want: { ms: 2990, start: T0, end: T0 + 3000, closed: true, baseline: false },
  },
  {
    name: 'the last reply before the event is older than the lead-in: no baseline',
    replies: [T0 - 1500, ...every(200, 500)],
    to: 505,
    want: { ms: 190, start: T0, end: T0 + 200, closed: true, baseline: false },
  },
  {
    name: 'a gap before the event is not the outage',
    replies: [...every(-1000, -800), ...every(-300, 2000)],
    to: 2005,
    want: { ms: 0, start: T0, end: T0 + 10, closed: true, baseline: true },
  },
  {
    name: 'of two gaps the longer counts',
    replies: [...every(-500, 0), ...every(400, 600), ...every(1700, 2000)],
    to: 2005,
    want: { ms: 1090, start: T0 + 600, end: T0 + 1700, closed: true, baseline: true },
  },
  {
    name: 'replies in any order (ping prints late or duplicate replies)',
    replies: [...every(2900, 3500), ...every(-1000, 100)].reverse(),
    to: 3505,
    want: { ms: 2790, start: T0 + 100, end: T0 + 2900, closed: true, baseline: true },
  },
  {
    name: 'replies after the window do not close a gap inside it',
    replies: [...every(-1000, 100), ...every(5000, 5500)],
    to: 4000,
    want: { ms: 3890, start: T0 + 100, end: T0 + 4000, closed: false, baseline: true },
  },
  {
    name: 'answered again, then the stream died shortly: the outage is closed',
    replies: [...every(-1000, 0), ...every(2000, 2300)],
    to: 2600,
    want: { ms: 1990, start: T0, end: T0 + 2000, closed: true, baseline: true },
  },
  {
    name: 'answered again briefly, then silent for longer than the outage: open',
    replies: [...every(-1000, 0), ...every(2000, 2300)],
    to: 9000,
    want: { ms: 6690, start: T0 + 2300, end: T0 + 9000, closed: false, baseline: true },
  },
];

for (const c of cases)
  test(`longestGap: ${c.name}`, () => {
    assert.deepEqual(longestGap(c.replies, T0, T0 + c.to, IV), c.want);
  });

test('longestGap: a stream that went silent never reads as a smaller outage than its silence', () => {
  for (const silentMs of [50, 500, 5000, 60_000]) {
    const g = longestGap(every(-1000, 0), T0, T0 + silentMs, IV);
    assert.equal(g.closed, false);
    assert.ok(g.ms >= silentMs - IV, `${silentMs} ms of silence read as ${g.ms} ms`);
  }
});
