import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leaseDeadline, leasePolicy, fenceReason } from './fencing.js';
import { nextHealth, FAILS_TO_UNHEALTHY } from './health.js';
import type { DaemonState } from './daemon.js';
import type { NodeView } from '../core/view.js';

const view = (slots: NodeView['slots']): NodeView => ({
  version: 1,
  node: { id: 'n1' },
  allocations: [],
  slots,
  networks: [],
});
const state = (leases: DaemonState['leases'], released: Record<string, number> = {}): DaemonState => ({
  node: 'n1',
  startedAt: 0,
  serverReachable: true,
  leases,
  published: {},
  released,
  health: {},
  fenced: {},
  served: [],
});

test("the deadline is measured from the send time with the server's remaining lease, less the margin", () => {
  // Server clock 1 h ahead of ours: only the remaining 5 s count.
  assert.equal(leaseDeadline(1000, 3_600_000 + 6000, 3_600_000 + 1000, 1000), 1000 + 5000 - 1000);
  // A lease the server did not renew keeps its old expiry: the deadline shrinks with the server clock.
  assert.equal(leaseDeadline(2000, 3_600_000 + 6000, 3_600_000 + 2000, 1000), 2000 + 4000 - 1000);
});

test('a slot is servable only with a lease of the same epoch before its deadline, not moving, not released', () => {
  let now = 10_000;
  const p = leasePolicy(() => now);
  const v = view([
    { allocation: 1, slot: 1, epoch: 2 },
    { allocation: 1, slot: 2, epoch: 1 },
  ]);
  const l = (slot: number, epoch: number, deadline: number, movingTo?: string): DaemonState['leases'][number] => ({
    allocation: 1,
    slot,
    epoch,
    expiresAt: 0,
    renewedAt: 0,
    deadline,
    ...(movingTo ? { movingTo } : {}),
  });
  assert.deepEqual(
    p.servable(v, state([l(1, 2, 12_000), l(2, 1, 12_000)])).map((s) => s.slot),
    [1, 2],
  );
  assert.deepEqual(
    p.servable(v, state([l(1, 1, 12_000)])).map((s) => s.slot),
    [],
    'older lease epoch than the view, and no lease for slot 2',
  );
  assert.deepEqual(
    p.servable(v, state([l(1, 2, 12_000, 'n2')])).map((s) => s.slot),
    [],
    'planned move',
  );
  assert.deepEqual(
    p.servable(v, state([l(1, 2, 12_000)], { '1/1': 2 })).map((s) => s.slot),
    [],
    'released',
  );
  now = 12_000;
  assert.deepEqual(
    p.servable(v, state([l(1, 2, 12_000)])).map((s) => s.slot),
    [],
    'at the deadline',
  );
  assert.match(fenceReason(l(1, 2, 12_000), now, false), /not renewed in time/);
  assert.match(fenceReason(undefined, now, false), /no lease/);
});

test('one failed probe round does not make a gateway unhealthy; FAILS_TO_UNHEALTHY rounds do; one success heals', () => {
  let h = nextHealth(undefined, 'upstream fe80::1 does not answer on pub-1-1', 1, 1);
  assert.equal(h.healthy, FAILS_TO_UNHEALTHY > 1);
  for (let i = 1; i < FAILS_TO_UNHEALTHY; i++) h = nextHealth(h, 'upstream fe80::1 does not answer on pub-1-1', 2, 1);
  assert.equal(h.healthy, false);
  assert.match(h.reason!, /does not answer on pub-1-1 \(2 rounds in a row\)/);
  assert.equal(nextHealth(h, undefined, 3, 1).healthy, true);
});
