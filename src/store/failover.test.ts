// The store's failover rules on PGlite with a hand-moved clock: start-up grace, health reports,
// planned moves with release, and a released slot moving at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore } from './index.js';

test('leases: start-up grace, unhealthy not renewed, planned move released at once to its target', async () => {
  let now = 1_700_000_000_000;
  const s = await openStore({ clock: () => now, leaseTtlMs: 5000, fenceMarginMs: 1000 });
  try {
    await s.createFarm('xf-farm');
    await s.createAllocation({ farm: 'xf-farm', prefix: '2001:db8:3a00::/48', number: 881 });
    for (const id of ['xf-g1', 'xf-g2', 'xf-g3']) await s.createNode({ farm: 'xf-farm', id, exitCapable: true });
    await s.assignSlot(881, 1, 'xf-g1');
    // The server "restarted" with every lease lapsed: g2 heartbeats first, but nothing moves
    // for one TTL plus the margin after start.
    now += 5500;
    await s.heartbeat('xf-g2');
    assert.deepEqual(await s.sweep(), [], 'start-up grace');
    assert.equal((await s.listSlots(881))[0]!.node, 'xf-g1');
    await s.heartbeat('xf-g1');
    now += 1000;
    assert.deepEqual(await s.sweep(), [], 'g1 renewed in time');

    // An unhealthy gateway is not renewed; its health shows in the slot list.
    const [l] = await s.heartbeat('xf-g1', {
      slots: [{ allocation: 881, slot: 1, healthy: false, reason: 'upstream fe80::1 does not answer on pub-1-881' }],
    });
    assert.equal(l!.leaseExpiresAt, now - 1000 + 5000, 'not renewed');
    const sl = (await s.listSlots(881))[0]!;
    assert.match(sl.health!, /does not answer/);
    await s.heartbeat('xf-g1', { slots: [{ allocation: 881, slot: 1, healthy: true }] });
    assert.equal((await s.listSlots(881))[0]!.health, 'ok');

    // Planned move to g3: the holder sees it in its heartbeat answer, releases, g3 holds epoch + 1.
    await s.heartbeat('xf-g3');
    assert.equal((await s.moveSlot(881, 1, 'xf-g3')).movingTo, 'xf-g3');
    const [m] = await s.heartbeat('xf-g1');
    assert.equal(m!.movingTo, 'xf-g3');
    assert.deepEqual(await s.heartbeat('xf-g1', { release: [{ allocation: 881, slot: 1, epoch: m!.epoch }] }), []);
    const after = (await s.listSlots(881))[0]!;
    assert.equal(after.node, 'xf-g3');
    assert.equal(after.epoch, m!.epoch + 1);
    assert.equal(after.movingTo, undefined);
    await assert.rejects(s.moveSlot(881, 1, 'xf-g3'), /already held/);
    // A target that does not heartbeat is refused.
    now += 60_000;
    await s.heartbeat('xf-g3');
    await assert.rejects(s.moveSlot(881, 1, 'xf-g2'), /has not sent a heartbeat/);
  } finally {
    await s.close();
  }
});
