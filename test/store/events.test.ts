// The farm's history (issue 12), on PGlite and on a PostgreSQL server: the triggers of
// 005_events.sql record what happens to slots, nodes, networks and NRs with their causes and a
// failover's measured cost; reading is scoped and filtered; a tail never skips an event whose
// transaction commits late; retention bounds the table. Time comes from a hand-moved clock.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, PgStore, type Store, type OpenOptions, type EventRecord } from '../../src/store/index.js';
import { openPglite } from '../../src/store/sql.js';
import { pgCluster, pgSkipReason } from '../support/pg.js';

type Opener = (o: Omit<OpenOptions, 'url' | 'dataDir'>) => Promise<Store>;

const kinds = (es: EventRecord[]): string[] => es.map((e) => e.kind);

function suite(name: string, open: Opener, skip?: string): void {
  describe(`events on ${name}`, { skip }, () => {
    let now = 1_700_000_000_000;
    const clock = () => now;
    let s: Store;

    before(async () => {
      s = await open({ clock, leaseTtlMs: 5000, fenceMarginMs: 1000 });
      await s.createFarm('xev-farm');
      await s.createFarm('xev-other');
      await s.createTenant('xev-t1');
      await s.createTenant('xev-t2');
      await s.createAllocation({ farm: 'xev-farm', prefix: '2001:db8:4a00::/48', number: 941 });
      await s.createAllocation({ farm: 'xev-other', prefix: '2001:db8:4b00::/48', number: 942 });
      for (const id of ['xev-g1', 'xev-g2']) await s.createNode({ farm: 'xev-farm', id, exitCapable: true });
      await s.createNode({ farm: 'xev-farm', id: 'xev-w1', exitCapable: false });
      await s.createNode({ farm: 'xev-other', id: 'xev-o1', exitCapable: true });
    });
    after(() => s.close());

    const farmEvents = async (after = 0): Promise<EventRecord[]> =>
      (await s.events.list({ farm: 'xev-farm', after, limit: 1000 })).events;

    it('records a failover from first heartbeat to the new holder answering, with its cost', async () => {
      // Past the start-up grace (one TTL plus the margin), in which nothing moves and nobody is silent.
      now += 7000;
      const start = await s.events.head();
      for (const n of ['xev-g1', 'xev-g2', 'xev-w1']) await s.heartbeat(n);
      await s.assignSlot(941, 1, 'xev-g1');
      now += 500;
      await s.heartbeat('xev-g1', { slots: [{ allocation: 941, slot: 1, healthy: true }] });
      await s.heartbeat('xev-g1', { slots: [{ allocation: 941, slot: 1, healthy: true }] });
      let ev = await farmEvents(start);
      assert.deepEqual(kinds(ev), ['node.up', 'node.up', 'node.up', 'slot.assigned', 'gateway.healthy']);
      assert.equal(ev[3]!.node, 'xev-g1');
      assert.equal(ev[3]!.text, 'slot 941/1 assigned to xev-g1, epoch 1');
      assert.equal(ev[4]!.data.first, true);

      // g1 goes silent; g2 keeps heartbeating. Silent after one TTL, moved after the margin more.
      const lastHeard = now;
      for (let i = 0; i < 5; i++) {
        now += 1000;
        await s.heartbeat('xev-g2');
        await s.heartbeat('xev-w1');
      }
      const cursor = await s.events.head();
      assert.deepEqual(await s.events.tick(), { silent: 1, pruned: 0 });
      assert.deepEqual((await s.events.tick()).silent, 0, 'a silent node is told once');
      now += 1000;
      await s.heartbeat('xev-g2');
      now += 1200;
      await s.heartbeat('xev-g2', { slots: [{ allocation: 941, slot: 1, healthy: false, reason: 'building' }] });
      now += 800;
      await s.heartbeat('xev-g2', { slots: [{ allocation: 941, slot: 1, healthy: true }] });
      ev = await farmEvents(cursor);
      assert.deepEqual(kinds(ev), ['node.silent', 'slot.moved', 'gateway.unhealthy', 'failover']);
      const [silent, moved, , failover] = ev as [EventRecord, EventRecord, EventRecord, EventRecord];
      assert.equal(silent.node, 'xev-g1');
      assert.deepEqual(silent.data.slots, ['941/1']);
      assert.equal(silent.data.lastHeartbeat, lastHeard);
      assert.equal(moved.data.cause, 'lapsed');
      assert.equal(moved.data.from, 'xev-g1');
      assert.equal(moved.data.to, 'xev-g2');
      assert.equal(moved.data.fromLastHeartbeat, lastHeard);
      assert.equal(moved.at, lastHeard + 6000);
      assert.equal(failover.node, 'xev-g2');
      assert.equal(failover.data.costMs, 8000);
      assert.equal(failover.data.rebuildMs, 2000);
      assert.match(failover.text, /^slot 941\/1 answered by xev-g2 again 8\.0 s after xev-g1 was last heard/);

      // A later flip of health is not a second failover; g1 coming back is told.
      now += 1000;
      await s.heartbeat('xev-g2', { slots: [{ allocation: 941, slot: 1, healthy: true }] });
      await s.heartbeat('xev-g1');
      ev = await farmEvents(cursor);
      assert.deepEqual(kinds(ev).slice(4), ['node.back']);
      assert.equal(ev[4]!.data.silentMs, now - lastHeard);
    });

    it('tells the cause of a planned move and of an unhealthy holder', async () => {
      const cursor = await s.events.head();
      for (const n of ['xev-g1', 'xev-g2']) await s.heartbeat(n);
      await s.moveSlot(941, 1, 'xev-g1');
      await s.heartbeat('xev-g2', { release: [{ allocation: 941, slot: 1, epoch: 2 }] });
      now += 100;
      await s.heartbeat('xev-g1', { slots: [{ allocation: 941, slot: 1, healthy: true }] });
      let ev = await farmEvents(cursor);
      assert.deepEqual(kinds(ev), ['slot.move-planned', 'slot.moved', 'failover']);
      assert.equal(ev[1]!.data.cause, 'planned');
      assert.equal(ev[2]!.data.cause, 'planned');

      const c2 = await s.events.head();
      for (let i = 0; i < 7; i++) {
        now += 1000;
        await s.heartbeat('xev-g1', { slots: [{ allocation: 941, slot: 1, healthy: false, reason: 'no answer' }] });
        await s.heartbeat('xev-g2');
      }
      await s.sweep();
      ev = await farmEvents(c2);
      assert.deepEqual(kinds(ev), ['gateway.unhealthy', 'slot.moved']);
      assert.equal(ev[0]!.data.reason, 'no answer');
      assert.equal(ev[1]!.data.cause, 'unhealthy');
      assert.equal(ev[1]!.data.reason, 'no answer');
    });

    it('records networks and NRs, scoped to the farm and the tenant', async () => {
      const cursor = await s.events.head();
      for (const n of ['xev-g1', 'xev-g2', 'xev-w1']) await s.heartbeat(n);
      const { network: a } = await s.createNetwork({ tenant: 'xev-t1', name: 'web' });
      const { network: b } = await s.createNetwork({ tenant: 'xev-t2', name: 'db' });
      const nr = (await s.addResource({ tenant: 'xev-t1', network: a.id, node: 'xev-w1' })).resource;
      await s.addResource({ tenant: 'xev-t1', network: a.id, node: 'xev-g1' });
      await s.removeResource('xev-t1', a.id, nr.id);
      await s.deleteNetwork('xev-t1', a.id);
      const ev = await farmEvents(cursor);
      assert.deepEqual(kinds(ev), [
        'network.created',
        'network.created',
        'nr.added',
        'nr.added',
        'nr.removed',
        'network.deleted',
      ]);
      assert.equal(ev[0]!.network, a.id);
      assert.equal(ev[0]!.nr, a.exit);
      assert.equal(ev[0]!.tenant, 'xev-t1');
      assert.equal(ev[2]!.nr, nr.id);
      assert.equal(ev[2]!.node, 'xev-w1');
      assert.equal(ev[4]!.text, `NR ${nr.id} removed from ${a.id} (web) (was on xev-w1)`);
      const t2 = await s.events.list({ tenant: 'xev-t2', after: cursor });
      assert.deepEqual(
        t2.events.map((e) => [e.kind, e.network]),
        [['network.created', b.id]],
      );
      const other = await s.events.list({ farm: 'xev-other' });
      assert.deepEqual(other.events, []);
    });

    it('filters by kind (and kind prefix), slot, node, network and time; pages both ways', async () => {
      const all = (await s.events.list({ farm: 'xev-farm', limit: 1000 })).events;
      assert.ok(all.length > 10);
      const slotKinds = (await s.events.list({ farm: 'xev-farm', kinds: ['slot.*'] })).events;
      assert.ok(slotKinds.length >= 4 && slotKinds.every((e) => e.kind.startsWith('slot.')));
      const two = (await s.events.list({ farm: 'xev-farm', kinds: ['failover', 'node.silent'] })).events;
      assert.deepEqual([...new Set(kinds(two))].sort(), ['failover', 'node.silent']);
      const bySlot = (await s.events.list({ farm: 'xev-farm', allocation: 941, slot: 1 })).events;
      assert.ok(bySlot.every((e) => e.allocation === 941 && e.slot === 1));
      const byNode = (await s.events.list({ farm: 'xev-farm', node: 'xev-w1' })).events;
      assert.ok(byNode.length && byNode.every((e) => e.node === 'xev-w1'));
      const mid = all[Math.floor(all.length / 2)]!;
      const since = (await s.events.list({ farm: 'xev-farm', since: mid.at, limit: 1000 })).events;
      assert.ok(since.every((e) => e.at >= mid.at));
      // History: the newest first page, then older by `before`; oldest first within a page.
      const p1 = await s.events.list({ farm: 'xev-farm', limit: 3 });
      assert.equal(p1.more, true);
      assert.deepEqual(
        p1.events.map((e) => e.id),
        all.slice(-3).map((e) => e.id),
      );
      const p2 = await s.events.list({ farm: 'xev-farm', limit: 3, before: p1.events[0]!.id });
      assert.deepEqual(
        p2.events.map((e) => e.id),
        all.slice(-6, -3).map((e) => e.id),
      );
      // Tail: after a cursor, in pages.
      const t1 = await s.events.list({ farm: 'xev-farm', after: all[0]!.id - 1, limit: 4 });
      assert.equal(t1.more, true);
      assert.equal(t1.next, t1.events[3]!.id);
      const t2 = await s.events.list({ farm: 'xev-farm', after: t1.next, limit: 1000 });
      assert.deepEqual(
        [...t1.events, ...t2.events].map((e) => e.id),
        all.map((e) => e.id),
      );
      assert.equal(t2.next, await s.events.head());
    });

    it("records the agents' drift repairs and status changes from their reports", async () => {
      const cursor = await s.events.head();
      const base = { appliedVersion: 3, viewVersion: 3, serverReachable: true, served: [] };
      await s.dashboard.report('xev-w1', { ...base, status: 'ok' });
      await s.dashboard.report('xev-w1', { ...base, status: 'ok' });
      await s.dashboard.report('xev-w1', {
        ...base,
        status: 'ok',
        drift: { seq: '1-1', objects: ['route 10.1.0.0/24', 'link br-1001-941'], agoMs: 10 },
      });
      await s.dashboard.report('xev-w1', {
        ...base,
        status: 'degraded',
        drift: { seq: '1-1', objects: ['route 10.1.0.0/24', 'link br-1001-941'], agoMs: 900 },
        lastPass: { agoMs: 5, ms: 40, full: true, size: 3, failures: 2 },
      });
      assert.equal(await s.dashboard.report('xev-nobody', { ...base, status: 'ok' }), false);
      const ev = await farmEvents(cursor);
      assert.deepEqual(kinds(ev), ['node.drift-repaired', 'node.status']);
      assert.equal(ev[0]!.text, 'node xev-w1: repaired drift in 2 objects (route 10.1.0.0/24, link br-1001-941)');
      assert.equal(ev[1]!.text, 'node xev-w1: agent degraded, 2 failures in its last pass');
      const o = await s.dashboard.overview('xev-farm');
      const w1 = o.nodes.find((n) => n.id === 'xev-w1')!;
      assert.equal(w1.agent?.status, 'degraded');
      assert.equal(o.allocations[0]!.slots.length, 15);
      const s1 = o.allocations[0]!.slots[0]!;
      assert.deepEqual(s1.candidates, [{ node: 'xev-g2', role: 'holder' }]);
      assert.equal(s1.lastMove?.cause, 'unhealthy');
      assert.equal(s1.capacity, 4096);
      assert.equal(o.allocations[0]!.slots[14]!.capacity, 3840);
    });
  });
}

suite('PGlite', (o) => openStore(o));
const skip = pgSkipReason();
suite('a PostgreSQL server', async (o) => openStore({ ...o, url: await (await pgCluster()).createDb() }), skip);

describe('events: slot fill triggers, the tail across a rolled-back insert, retention (PGlite)', () => {
  let now = 1_700_000_000_000;
  let db: Awaited<ReturnType<typeof openPglite>>;
  let s: PgStore;
  before(async () => {
    db = await openPglite(undefined);
    s = await PgStore.open(db, { clock: () => now, eventMaxRows: 6, eventRetentionMs: 60_000 });
  });
  after(() => s.close());

  it('tells the 2048 advisory and a full slot once each', async () => {
    await s.createFarm('xev-f');
    await s.createAllocation({ farm: 'xev-f', prefix: '2001:db8:4c00::/48', number: 943 });
    const set = (slot: number, n: number) =>
      db.query('UPDATE slots SET nr_count = $3 WHERE allocation = $1 AND slot = $2', [943, slot, n]);
    await set(2, 2048);
    await set(2, 2049);
    await set(2, 2050);
    await set(2, 4096);
    await set(15, 3840);
    const ev = (await s.events.list({ farm: 'xev-f' })).events;
    assert.deepEqual(
      ev.map((e) => [e.kind, e.slot, e.data.nrs]),
      [
        ['slot.advisory', 2, 2049],
        ['slot.full', 2, 4096],
        ['slot.full', 15, 3840],
      ],
    );
    assert.equal(ev[0]!.text, 'slot 943/2 holds 2049 NRs, more than 2048: enable another ExitNode');
  });

  it('holds a tail behind a sequence hole until it is older than HOLE_MS', async () => {
    await s.createFarm('xev-h');
    await s.createNode({ farm: 'xev-h', id: 'xev-h1', exitCapable: false });
    await s.createNode({ farm: 'xev-h', id: 'xev-h2', exitCapable: false });
    await s.heartbeat('xev-h1');
    const h0 = await s.events.head();
    // A rolled-back transaction leaves a hole in the ids.
    await db
      .transaction(async (tx) => {
        await tx.query("INSERT INTO events (at, kind) VALUES (0, 'test.rolled-back')");
        throw new Error('roll back');
      })
      .catch(() => undefined);
    await s.heartbeat('xev-h2');
    const early = await s.events.list({ after: h0 });
    assert.deepEqual(early.events, [], 'the event after a young hole waits');
    assert.equal(early.next, h0);
    await new Promise((r) => setTimeout(r, 2100));
    const later = await s.events.list({ after: h0 });
    assert.deepEqual(kinds(later.events), ['node.up']);
    assert.equal(later.events[0]!.node, 'xev-h2');
    assert.equal(later.next, later.events[0]!.id);
  });

  it('bounds the table: retention by count, then by age', async () => {
    await s.createFarm('xev-r');
    for (let i = 0; i < 8; i++) await s.createNode({ farm: 'xev-r', id: `xev-r${i}`, exitCapable: false });
    for (let i = 0; i < 8; i++) await s.heartbeat(`xev-r${i}`);
    const t1 = await s.events.tick();
    assert.ok(t1.pruned >= 2, `pruned ${t1.pruned}`);
    assert.deepEqual(
      (await s.events.list({})).events.map((e) => e.node),
      ['xev-r2', 'xev-r3', 'xev-r4', 'xev-r5', 'xev-r6', 'xev-r7'],
      'the newest six (eventMaxRows)',
    );
    now += 61_000;
    for (let i = 0; i < 2; i++) await s.heartbeat(`xev-r${i}`);
    const t2 = await s.events.tick();
    // Silent now: r2-r7 and the two nodes of the test above (eight events, in node id order); the
    // six node.up events are older than the retention, and the count keeps the newest six.
    assert.equal(t2.silent, 8);
    assert.equal(t2.pruned, 6 + 2);
    const left = (await s.events.list({ farm: 'xev-r' })).events;
    assert.deepEqual(kinds(left), Array(6).fill('node.silent'));
    assert.deepEqual(
      left.map((e) => e.node),
      ['xev-r2', 'xev-r3', 'xev-r4', 'xev-r5', 'xev-r6', 'xev-r7'],
    );
  });
});
