// Stage 2 in the store (issue 10, DESIGN.md 8.2), on PGlite and on a PostgreSQL server: candidates
// filled at assignment, the view's stage-2 fields, node keys and sealed keys, VRRP and endpoint
// reports, dual-master step-down, the sweep's promotion, replacement and last resort, the planned
// handover, and which view versions each of them moves.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { openStore, type Store, type OpenOptions } from '../../src/store/index.js';
import { isExitnodeError } from '../../src/core/index.js';
import { parseNodeView, type NodeView } from '../../src/core/view.js';
import { generateNodeKey, openSealed, seal } from '../../src/core/seal.js';
import { pgCluster, pgSkipReason } from '../support/pg.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isExitnodeError(e)) return e.code;
    throw e;
  }
  return 'no error';
}

const A = 951;
const F = 'xcs-farm';
const [G1, G2, G3, W1] = ['xcs-g1', 'xcs-g2', 'xcs-g3', 'xcs-w1'] as const;
const EXIT_KEY = Buffer.alloc(32, 7).toString('base64');

function suite(name: string, open: (o: Omit<OpenOptions, 'url' | 'dataDir'>) => Promise<Store>, skip?: string): void {
  describe(`stage 2 candidates on ${name}`, { skip }, () => {
    let now = 1_700_000_000_000;
    let s: Store;
    const keys = { [G1]: generateNodeKey(), [G2]: generateNodeKey(), [G3]: generateNodeKey() };
    let net = '';
    let exit = '';
    let wnr = '';
    const versions = async (): Promise<Record<string, number>> =>
      Object.fromEntries(await Promise.all([G1, G2, G3, W1].map(async (n) => [n, await s.viewVersion(n)])));
    const moved = (a: Record<string, number>, b: Record<string, number>): string[] =>
      Object.keys(a)
        .filter((k) => a[k] !== b[k])
        .sort();
    const beat = async (...nodes: string[]): Promise<void> => {
      for (const n of nodes) await s.heartbeat(n);
    };
    const view = async (n: string): Promise<NodeView> => {
      const v = await s.view(n);
      // The agent's gate accepts every view the store serves, unchanged.
      assert.deepEqual(parseNodeView(JSON.parse(JSON.stringify(v))), v);
      return v;
    };

    before(async () => {
      s = await open({ clock: () => now, leaseTtlMs: 5000 });
      await s.createFarm(F);
      await s.createFarm('xcs-other');
      await s.createTenant('xcs-t');
      await s.createAllocation({
        farm: F,
        prefix: '2001:db8:5a00::/48',
        number: A,
        // GWPubIP4 for slot 1 only: slot 2's ExitPoints float on GWPubIP6.
        ipv4: { addresses: ['192.0.2.51'], prefixLength: 24, gateway: '192.0.2.1' },
        failover: 'vrrp',
      });
      await s.createAllocation({ farm: F, prefix: '2001:db8:5b00::/48', number: A + 1 });
      for (const id of [G1, G2, G3]) await s.createNode({ farm: F, id, exitCapable: true });
      await s.createNode({ farm: F, id: W1, publicIPv4: '198.51.100.61', exitCapable: false });
      await s.createNode({ farm: 'xcs-other', id: 'xcs-o1', exitCapable: true });
      // Past the start-up grace of the sweep.
      now += 6000;
      await beat(G1, G2, G3, W1);
    });
    after(async () => {
      await s.close();
    });

    it('records the failover mode, and refuses bad modes and lists', async () => {
      const a = (await s.getAllocation(A))!;
      assert.deepEqual([a.failover, a.candidates], ['vrrp', 2]);
      assert.deepEqual(
        [(await s.getAllocation(A + 1))!.failover, (await s.getAllocation(A + 1))!.candidates],
        ['lease', 2],
      );
      assert.equal(
        await code(s.createAllocation({ farm: F, prefix: '2001:db8:5c00::/48', failover: 'bgp' as 'vrrp' })),
        'FAILOVER_INVALID',
      );
      assert.equal(
        await code(s.createAllocation({ farm: F, prefix: '2001:db8:5c00::/48', candidates: 9 })),
        'FAILOVER_INVALID',
      );
      assert.equal(await code(s.assignSlot(A, 2, [G1, G1])), 'CANDIDATES_INVALID');
      assert.equal(await code(s.assignSlot(A, 2, [G1, G2, G3])), 'CANDIDATES_INVALID');
      assert.equal(await code(s.assignSlot(A, 2, [])), 'CANDIDATES_INVALID');
      assert.equal(await code(s.assignSlot(A, 2, [G1, W1])), 'NODE_NOT_EXIT_CAPABLE');
      assert.equal(await code(s.assignSlot(A, 2, [G1, 'xcs-o1'])), 'NODE_UNKNOWN');
      assert.equal(await code(s.assignSlot(A + 1, 2, [G1, G2])), 'CANDIDATES_INVALID', "a 'lease' slot has one node");
      assert.deepEqual(await s.listSlots(A).then((x) => x[1]!.candidates), [], 'nothing written');
    });

    it('fills the candidates when a slot gets its holder, the holder first', async () => {
      const v0 = await versions();
      const r = await s.assignSlot(A, 1, G1);
      assert.equal(r.node, G1);
      assert.deepEqual(
        r.candidates!.map((c) => [c.node, c.rank, c.priority, c.healthy, c.stepDown]),
        [
          [G1, 0, 250, true, false],
          [G2, 1, 200, true, false],
        ],
      );
      assert.deepEqual(moved(v0, await versions()), [G1, G2], 'only the candidates');
      const g1 = await view(G1);
      const g2 = await view(G2);
      assert.deepEqual(g1.slots, [
        { allocation: A, slot: 1, epoch: 1, ipv4: '192.0.2.51', candidates: [G1, G2], priority: 250 },
      ]);
      assert.deepEqual(g2.slots, [
        { allocation: A, slot: 1, epoch: 1, ipv4: '192.0.2.51', candidates: [G1, G2], priority: 200 },
      ]);
      assert.deepEqual((await view(G3)).slots, []);
      // No node key published yet: an empty sealTo, in candidates' views only.
      assert.deepEqual(g1.sealTo, []);
      assert.equal((await view(G3)).sealTo, undefined);
      assert.equal((await view(W1)).sealTo, undefined);
    });

    it('shows a network to every candidate, its ExitPoint on the floating address', async () => {
      const v0 = await versions();
      const { network } = await s.createNetwork({ tenant: 'xcs-t', name: 'web', allocation: A });
      net = network.id;
      exit = network.exit;
      assert.equal(network.resources[0]!.node, G1);
      assert.deepEqual(moved(v0, await versions()), [G1, G2]);
      const v1 = await versions();
      wnr = (await s.addResource({ tenant: 'xcs-t', network: net, node: W1 })).resource.id;
      assert.deepEqual(moved(v1, await versions()), [G1, G2, W1]);
      for (const n of [G1, G2, W1]) {
        const v = await view(n);
        assert.deepEqual(
          v.networks[0]!.resources.map((x) => [x.id, x.node, x.endpoint]),
          [
            [exit, G1, `192.0.2.51:${parseInt(exit, 16)}`],
            [wnr, W1, `198.51.100.61:${parseInt(wnr, 16)}`],
          ],
          n,
        );
      }
      assert.deepEqual((await view(G3)).networks, []);
    });

    it('takes node keys; candidates see the other exit-capable nodes to seal to', async () => {
      let v0 = await versions();
      assert.equal(await code(s.setNodeKey(G1, 'short')), 'KEY_SYNTAX');
      assert.equal(await code(s.setNodeKey(G1, Buffer.alloc(32).toString('base64'))), 'KEY_INVALID');
      await s.setNodeKey(G3, keys[G3].publicKey);
      assert.deepEqual(moved(v0, await versions()), [G1, G2], "the candidates' sealTo");
      v0 = await versions();
      await s.setNodeKey(G3, keys[G3].publicKey);
      assert.deepEqual(moved(v0, await versions()), [], 'the same key again moves nothing');
      await s.setNodeKey(G1, keys[G1].publicKey);
      await s.setNodeKey(G2, keys[G2].publicKey);
      assert.deepEqual((await view(G1)).sealTo, [
        { node: G2, key: keys[G2].publicKey },
        { node: G3, key: keys[G3].publicKey },
      ]);
      assert.deepEqual(
        (await view(G2)).sealTo!.map((x) => x.node),
        [G1, G3],
      );
    });

    it("stores sealed ExitPoint keys from the ExitPoint's node only, ciphertext only", async () => {
      await s.setKey(G1, net, exit, EXIT_KEY);
      const plain = randomBytes(32);
      const box = (n: keyof typeof keys): string => seal(plain, keys[n].publicKey);
      assert.equal(await code(s.setSealedKeys(G2, net, exit, [{ node: G3, sealed: box(G3) }])), 'NR_UNKNOWN');
      assert.equal(await code(s.setSealedKeys(W1, net, wnr, [{ node: G3, sealed: box(G3) }])), 'NR_UNKNOWN');
      assert.equal(
        await code(s.setSealedKeys(G1, net, exit, [{ node: W1, sealed: box(G3) }])),
        'NODE_NOT_EXIT_CAPABLE',
      );
      assert.equal(await code(s.setSealedKeys(G1, net, exit, [{ node: 'xcs-o1', sealed: box(G3) }])), 'NODE_UNKNOWN');
      assert.equal(await code(s.setSealedKeys(G1, net, exit, [{ node: G3, sealed: 'not base64!' }])), 'SEALED_INVALID');
      assert.equal(
        await code(s.setSealedKeys(G1, net, exit, [{ node: G3, sealed: randomBytes(48).toString('base64') }])),
        'SEALED_INVALID',
        'wrong size',
      );
      assert.equal(await code(s.setSealedKeys(G1, net, exit, [{ node: G1, sealed: box(G1) }])), 'SEALED_INVALID');
      const v0 = await versions();
      assert.equal(
        await s.setSealedKeys(G1, net, exit, [
          { node: G2, sealed: box(G2) },
          { node: G3, sealed: box(G3) },
        ]),
        2,
      );
      assert.deepEqual(moved(v0, await versions()), [G2], 'only a candidate shows its sealed key');
      const e2 = (await view(G2)).networks[0]!.resources.find((x) => x.id === exit)!;
      assert.deepEqual(openSealed(e2.sealedKey!, keys[G2].privateKey), plain);
      assert.equal(e2.publicKey, EXIT_KEY);
      assert.equal((await view(G1)).networks[0]!.resources[0]!.sealedKey, undefined);
      assert.equal((await view(W1)).networks[0]!.resources[0]!.sealedKey, undefined);
    });

    it('stores VRRP reports without moving views, learned endpoints for the candidates only', async () => {
      now += 1000;
      const v0 = await versions();
      await s.heartbeat(G1, { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: 250, since: now - 10 }] });
      await s.heartbeat(G2, { vrrp: [{ allocation: A, slot: 1, state: 'BACKUP', priority: 200, since: now - 10 }] });
      // A node that is no candidate: ignored.
      await s.heartbeat(G3, { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: 100, since: now }] });
      assert.deepEqual(moved(v0, await versions()), [], 'a mere VRRP report moves no view');
      const c = (await s.listSlots(A))[0]!.candidates!;
      assert.deepEqual(
        c.map((x) => [x.node, x.vrrpState, x.vrrpPriority, x.reportedAt, x.changedAt]),
        [
          [G1, 'MASTER', 250, now, now],
          [G2, 'BACKUP', 200, now, now],
        ],
      );
      const ev = await s.events.list({ kinds: ['vrrp.*'] });
      assert.deepEqual(
        ev.events.map((e) => [e.kind, e.node]),
        [
          ['vrrp.master', G1],
          ['vrrp.backup', G2],
        ],
      );
      assert.equal(
        await code(
          s.heartbeat(G1, { vrrp: [{ allocation: A, slot: 1, state: 'LEADER' as 'MASTER', priority: 1, since: 0 }] }),
        ),
        'REPORT_INVALID',
      );
      assert.equal(
        await code(s.heartbeat(G1, { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: 1.5, since: 0 }] })),
        'REPORT_INVALID',
      );
      assert.equal(
        await code(s.heartbeat(G1, { endpoints: [{ network: net, nr: wnr, endpoint: '203.0.113.9:0' }] })),
        'REPORT_INVALID',
      );
      const v1 = await versions();
      await s.heartbeat(G3, { endpoints: [{ network: net, nr: wnr, endpoint: '203.0.113.9:51820' }] });
      assert.deepEqual(moved(v1, await versions()), [], 'not from a candidate: ignored');
      await s.heartbeat(G1, {
        endpoints: [
          { network: net, nr: wnr, endpoint: '203.0.113.9:51820' },
          { network: net, nr: exit, endpoint: '203.0.113.9:1' },
        ],
      });
      assert.deepEqual(moved(v1, await versions()), [G1, G2], 'the candidates only, not the remote NR');
      const v2 = await versions();
      await s.heartbeat(G1, { endpoints: [{ network: net, nr: wnr, endpoint: '203.0.113.9:51820' }] });
      assert.deepEqual(moved(v2, await versions()), [], 'the same endpoint again moves nothing');
      for (const n of [G1, G2]) {
        const r = (await view(n)).networks[0]!.resources;
        assert.equal(r.find((x) => x.id === wnr)!.learnedEndpoint, '203.0.113.9:51820');
        assert.equal(r.find((x) => x.id === exit)!.learnedEndpoint, undefined);
      }
      assert.equal((await view(W1)).networks[0]!.resources.find((x) => x.id === wnr)!.learnedEndpoint, undefined);
    });

    it('makes the second of two masters step down, records it, clears it on BACKUP', async () => {
      now += 500;
      await s.heartbeat(G2, { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: 200, since: now }] });
      const v0 = await versions();
      now += 500;
      // g1 reports MASTER after g2 became master: both at once.
      await s.heartbeat(G1, { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: 250, since: now - 2000 }] });
      assert.deepEqual(moved(v0, await versions()), [G2]);
      assert.equal((await view(G2)).slots[0]!.stepDown, true);
      assert.equal((await view(G1)).slots[0]!.stepDown, undefined);
      const ev = (await s.events.list({ kinds: ['slot.dual_master'] })).events;
      assert.equal(ev.length, 1);
      assert.deepEqual(ev[0]!.data, { masters: [G1, G2], kept: G1, stepDown: [G2] });
      assert.equal(ev[0]!.text, `slot ${A}/1: two masters at once (${G1}, ${G2}); ${G2} told to step down, ${G1} kept`);
      now += 500;
      const v1 = await versions();
      await s.heartbeat(G2, { vrrp: [{ allocation: A, slot: 1, state: 'BACKUP', priority: 0, since: now }] });
      assert.deepEqual(moved(v1, await versions()), [G2]);
      assert.equal((await view(G2)).slots[0]!.stepDown, undefined);
    });

    it("does not mistake a dead master's last report for a second master", async () => {
      // g1 MASTER, then silent; g2 takes over by VRRP within the TTL and reports MASTER.
      now += 1000;
      await s.heartbeat(G1, { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: 250, since: now - 5000 }] });
      now += 1500;
      await beat(G3, W1);
      await s.heartbeat(G2, { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: 200, since: now - 200 }] });
      now += 1000;
      await s.heartbeat(G2, { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: 200, since: now - 1200 }] });
      assert.equal((await view(G2)).slots[0]!.stepDown, undefined);
      assert.equal((await view(G1)).slots[0]!.stepDown, undefined);
    });

    it('promotes the next live candidate when the first lapses, keeping the keys; replaces the lapsed one', async () => {
      const before = (await s.listSlots(A))[0]!;
      // g1's last heartbeat was 2.5 s ago; 2.5 s more and it lapses.
      now += 2500;
      const v0 = await versions();
      // The sweep runs before every heartbeat and view (and on the server's timer).
      assert.deepEqual(await s.sweep(), [{ allocation: A, slot: 1, previous: G1, node: G2, epoch: before.epoch + 1 }]);
      await beat(G2, G3, W1);
      const sl = (await s.listSlots(A))[0]!;
      assert.deepEqual(
        sl.candidates!.map((c) => [c.node, c.rank, c.priority]),
        [
          [G2, 0, 250],
          [G3, 1, 200],
        ],
        'g1 replaced by the live g3',
      );
      assert.deepEqual(moved(v0, await versions()), [G1, G2, G3, W1], 'the exit NR moved to g2 in every view');
      const n = (await s.getNetwork(net))!;
      assert.deepEqual(
        n.resources.find((x) => x.id === exit),
        { id: exit, node: G2, prefix: n.resources.find((x) => x.id === exit)!.prefix, publicKey: EXIT_KEY },
        'the ExitPoint key is kept',
      );
      const g3 = await view(G3);
      assert.deepEqual(g3.slots[0]!.candidates, [G2, G3]);
      assert.ok(
        g3.networks[0]!.resources.find((x) => x.id === exit)!.sealedKey,
        'the new candidate reads its sealed key',
      );
      assert.deepEqual((await view(G1)).slots, []);
      const ev = (await s.events.list({ kinds: ['slot.moved'] })).events.at(-1)!;
      assert.deepEqual([ev.data.from, ev.data.to, ev.data.cause], [G1, G2, 'lapsed']);
      assert.deepEqual(await s.sweep(), [], 'settled');
    });

    it('falls back to a live node alone when every candidate is gone (last resort), then tops up', async () => {
      now += 3000;
      await beat(W1);
      await s.heartbeat(G1, { vrrp: [{ allocation: A, slot: 1, state: 'STOPPED', priority: 0, since: now }] });
      now += 3000;
      const moves = await s.sweep();
      assert.deepEqual(
        moves.map((m) => [m.previous, m.node]),
        [[G2, G1]],
      );
      assert.deepEqual(
        (await s.listSlots(A))[0]!.candidates!.map((c) => c.node),
        [G1],
      );
      assert.equal((await s.getNetwork(net))!.resources.find((x) => x.id === exit)!.publicKey, EXIT_KEY);
      now += 10;
      await beat(G3);
      assert.equal((await s.sweep()).length, 1);
      assert.deepEqual(
        (await s.listSlots(A))[0]!.candidates!.map((c) => c.node),
        [G1, G3],
        'g3 back: a standby again',
      );
    });

    it('plans a handover on slot move: NODE first, the master steps down once NODE is BACKUP', async () => {
      await beat(G2);
      now += 100;
      await s.heartbeat(G1, { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: 250, since: now }] });
      await s.heartbeat(G3, { vrrp: [{ allocation: A, slot: 1, state: 'BACKUP', priority: 200, since: now }] });
      const e0 = (await s.listSlots(A))[0]!.epoch;
      const r = await s.moveSlot(A, 1, G3);
      assert.equal(r.node, G3);
      assert.equal(r.epoch, e0 + 1);
      assert.equal(r.handoverTo, G3);
      assert.deepEqual(
        r.candidates!.map((c) => [c.node, c.stepDown]),
        [
          [G3, false],
          [G1, true],
        ],
        'g3 reported BACKUP already: g1 steps down at once',
      );
      const g1 = await view(G1);
      assert.deepEqual([g1.slots[0]!.priority, g1.slots[0]!.stepDown], [200, true]);
      const ev = (await s.events.list({ kinds: ['slot.moved'] })).events.at(-1)!;
      assert.equal(ev.data.cause, 'planned');
      now += 300;
      await s.heartbeat(G3, { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: 250, since: now }] });
      await s.heartbeat(G1, { vrrp: [{ allocation: A, slot: 1, state: 'BACKUP', priority: 0, since: now }] });
      const after = (await s.listSlots(A))[0]!;
      assert.equal(after.handoverTo, undefined, 'done');
      assert.deepEqual(
        after.candidates!.map((c) => [c.node, c.vrrpState, c.stepDown]),
        [
          [G3, 'MASTER', false],
          [G1, 'BACKUP', false],
        ],
      );
      assert.equal(await code(s.moveSlot(A, 1, G3)), 'SLOT_MOVE_NOOP');
      assert.ok((after.vrrpTransitions ?? 0) >= 6);
    });

    it("takes the farmer's ordered list; a slot in 'lease' mode stays exactly as before", async () => {
      const r = await s.assignSlot(A, 2, [G3, G1]);
      assert.deepEqual(
        r.candidates!.map((c) => c.node),
        [G3, G1],
      );
      const { network } = await s.createNetwork({ tenant: 'xcs-t', name: 'db', allocation: A });
      if (network.slot === 2) {
        const v = await view(G1);
        const e = v.networks.find((x) => x.id === network.id)!.resources[0]!;
        assert.equal(
          e.endpoint,
          `[2001:db8:5a00:0:2000::1]:${parseInt(network.exit, 16)}`,
          'GWPubIP6 without a GWPubIP4',
        );
      }
      const l = await s.assignSlot(A + 1, 1, G2);
      assert.equal(l.candidates, undefined);
      assert.deepEqual(
        (await view(G2)).slots.find((x) => x.allocation === A + 1),
        {
          allocation: A + 1,
          slot: 1,
          epoch: 1,
        },
      );
      const st = await s.stats();
      assert.deepEqual(
        st.candidates.filter((c) => c.slot === 1).map((c) => [c.node, c.state]),
        [
          [G3, 'MASTER'],
          [G1, 'BACKUP'],
        ],
      );
    });
  });
}

suite('PGlite', (o) => openStore(o));
const skip = pgSkipReason();
suite('a PostgreSQL server', async (o) => openStore({ ...o, url: await (await pgCluster()).createDb() }), skip);
