// Fencing and health as tables of cases: the lease deadline, the slot policy, the fence reason,
// and how probe rounds fold into a slot's health. Every expected value is written out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leaseDeadline, leasePolicy, fenceReason } from './fencing.js';
import { nextHealth, FAILS_TO_UNHEALTHY } from './health.js';
import { newDaemonState, type DaemonState, type Lease } from './state.js';
import type { NodeView } from '../core/view.js';

const view = (slots: NodeView['slots']): NodeView => ({
  version: 1,
  node: { id: 'n1' },
  allocations: [],
  slots,
  networks: [],
});
const state = (leases: Lease[], released: [number, number][] = []): DaemonState => {
  const s = newDaemonState('n1', 0);
  s.leases = leases;
  for (const [slot, epoch] of released) s.released.set({ allocation: 1, slot }, epoch);
  return s;
};
const lease = (slot: number, epoch: number, deadline: number | undefined, movingTo?: string): Lease => ({
  allocation: 1,
  slot,
  epoch,
  expiresAt: 0,
  renewedAt: 0,
  ...(deadline !== undefined ? { deadline } : {}),
  ...(movingTo ? { movingTo } : {}),
});

test('the deadline: the send time plus what the server says is left, less the margin', () => {
  const cases: [string, number, number, number | undefined, number, number, number][] = [
    // what, sent, leaseExpiresAt, serverNow, margin, local now (used without serverNow), deadline
    ['server clock 1 h ahead: only the remaining 5 s count', 1000, 3_606_000, 3_601_000, 1000, 0, 5000],
    [
      'a lease not renewed keeps its expiry: it shrinks with the server clock',
      2000,
      3_606_000,
      3_602_000,
      1000,
      0,
      5000,
    ],
    ['server clock 1 h behind', 10_000, 5000, 1000, 1000, 99_999, 13_000],
    ['no margin', 1000, 6000, 1000, 0, 0, 6000],
    ['a lapsed lease: a deadline already past', 7000, 5000, 6000, 1000, 0, 5000],
    ['an older server without its clock: synchronised clocks assumed', 1000, 8000, undefined, 1000, 3000, 5000],
  ];
  for (const [what, sent, exp, serverNow, margin, localNow, want] of cases)
    assert.equal(leaseDeadline(sent, exp, serverNow, margin, localNow), want, what);
});

test('a slot is servable only with a lease of the same epoch before its deadline, not moving, not released', () => {
  const v = view([
    { allocation: 1, slot: 1, epoch: 2 },
    { allocation: 1, slot: 2, epoch: 1 },
  ]);
  const cases: [string, number, DaemonState, number[]][] = [
    ['both leases live', 10_000, state([lease(1, 2, 12_000), lease(2, 1, 12_000)]), [1, 2]],
    ['older lease epoch than the view, and no lease for slot 2', 10_000, state([lease(1, 1, 12_000)]), []],
    ['planned move', 10_000, state([lease(1, 2, 12_000, 'n2')]), []],
    ['released', 10_000, state([lease(1, 2, 12_000)], [[1, 2]]), []],
    ['released slot 1 only', 10_000, state([lease(1, 2, 12_000), lease(2, 1, 12_000)], [[1, 2]]), [2]],
    ['just before the deadline', 11_999, state([lease(1, 2, 12_000)]), [1]],
    ['at the deadline', 12_000, state([lease(1, 2, 12_000)]), []],
    ['a lease without a deadline', 10_000, state([lease(1, 2, undefined)]), []],
  ];
  for (const [what, now, st, want] of cases)
    assert.deepEqual(
      leasePolicy(() => now)
        .servable(v, st)
        .map((s) => s.slot),
      want,
      what,
    );
});

test('a vrrp slot (stage 2) is served while the view lists it: no lease, a lapsed one, released or moving change nothing', () => {
  const v = view([
    { allocation: 1, slot: 1, epoch: 2, candidates: ['n1', 'n2'], priority: 250 },
    { allocation: 1, slot: 2, epoch: 1 },
  ]);
  const cases: [string, number, DaemonState, number[]][] = [
    ['no lease at all (TNoDB never answered, saved view)', 10_000, state([]), [1]],
    ['a lapsed lease (TNoDB outage)', 20_000, state([lease(1, 2, 12_000), lease(2, 1, 12_000)]), [1]],
    ['a lease of another epoch', 10_000, state([lease(1, 7, 12_000)]), [1]],
    ['released and moving', 10_000, state([lease(1, 2, 12_000, 'n2')], [[1, 2]]), [1]],
    ['the lease slot beside it is still fenced by its lease', 10_000, state([lease(2, 1, 12_000)]), [1, 2]],
  ];
  for (const [what, now, st, want] of cases)
    assert.deepEqual(
      leasePolicy(() => now)
        .servable(v, st)
        .map((s) => s.slot),
      want,
      what,
    );
  assert.deepEqual(
    leasePolicy(() => 0).servable(view([]), state([lease(1, 2, 12_000)])),
    [],
    'gone from the view: gone',
  );
});

test('the reason a slot is fenced', () => {
  const cases: [string, Lease | undefined, number, boolean, string][] = [
    ['released', lease(1, 2, 12_000), 10_000, true, 'released (planned move or lost health)'],
    ['no lease', undefined, 10_000, false, 'no lease (the slot moved or the server did not renew it)'],
    ['planned move', lease(1, 2, 12_000, 'n2'), 10_000, false, 'planned move to n2'],
    [
      'deadline passed',
      lease(1, 2, 12_000),
      12_000,
      false,
      'lease not renewed in time (deadline 1970-01-01T00:00:12.000Z)',
    ],
    ['no deadline', lease(1, 2, undefined), 0, false, 'lease not renewed in time (deadline 1970-01-01T00:00:00.000Z)'],
    ['live lease, not servable', lease(1, 2, 12_000), 10_000, false, 'epoch changed'],
  ];
  for (const [what, l, now, released, want] of cases) assert.equal(fenceReason(l, now, released), want, what);
});

test('probe rounds fold into health: two failed rounds in a row make a gateway unhealthy, one success heals', () => {
  assert.equal(FAILS_TO_UNHEALTHY, 2, 'the table below is written for two rounds');
  const F = 'upstream fe80::1 does not answer on pub-1-1';
  const cases: [string, (string | undefined)[], { healthy: boolean; fails: number; reason?: string }][] = [
    ['one good round', [undefined], { healthy: true, fails: 0 }],
    ['one failed round', [F], { healthy: true, fails: 1, reason: `${F} (1 round in a row)` }],
    ['two failed rounds', [F, F], { healthy: false, fails: 2, reason: `${F} (2 rounds in a row)` }],
    ['three failed rounds', [F, F, F], { healthy: false, fails: 3, reason: `${F} (3 rounds in a row)` }],
    ['one success heals', [F, F, undefined], { healthy: true, fails: 0 }],
    ['not in a row', [F, undefined, F], { healthy: true, fails: 1, reason: `${F} (1 round in a row)` }],
  ];
  for (const [what, rounds, want] of cases) {
    let h: ReturnType<typeof nextHealth> | undefined;
    rounds.forEach((failure, i) => (h = nextHealth(h, failure, 100 + i, 7)));
    assert.deepEqual(h, { ...want, checkedAt: 100 + rounds.length - 1, ms: 7 }, what);
  }
});
