// The Store contract, run against both drivers: PGlite (in memory and in a data directory) and a
// real PostgreSQL server (a throwaway cluster, test/support/pg.ts). Time comes from a hand-moved
// clock, so leases and quarantine are tested without sleeping.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store, type OpenOptions } from '../../src/store/index.js';
import { isExitnodeError } from '../../src/core/index.js';
import { parseNodeView } from '../../src/core/view.js';
import { pgCluster, pgSkipReason } from '../support/pg.js';
import { ViewWatch } from '../../src/api/watch.js';

const KEY_A = Buffer.alloc(32, 1).toString('base64');
const KEY_B = Buffer.alloc(32, 2).toString('base64');

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isExitnodeError(e)) return e.code;
    throw e;
  }
  return 'no error';
}

type Opener = (o: Omit<OpenOptions, 'url' | 'dataDir'>) => Promise<{ store: Store; reopen?: () => Promise<Store> }>;

/** `restartable`: the database outlives its store (not so in memory), so the restart case applies. */
function contract(name: string, open: Opener, skip?: string, restartable = true): void {
  describe(`Store contract on ${name}`, { skip }, () => {
    let now = 1_700_000_000_000;
    const clock = () => now;
    let s: Store;
    let reopen: (() => Promise<Store>) | undefined;
    const stores: Store[] = [];

    before(async () => {
      const o = await open({ clock, leaseTtlMs: 5000, quarantineMs: 60_000 });
      s = o.store;
      reopen = o.reopen;
      stores.push(s);
      await s.createFarm('xts-farm');
      await s.createFarm('xts-other');
      await s.createTenant('xts-t1');
      await s.createTenant('xts-t2');
      await s.createAllocation({
        farm: 'xts-farm',
        prefix: '2001:db8:3a00::/48',
        number: 931,
        ipv4: { addresses: ['192.0.2.11', '192.0.2.12', '192.0.2.13'], prefixLength: 24, gateway: '192.0.2.1' },
      });
      await s.createAllocation({ farm: 'xts-other', prefix: '2001:db8:3b00::/48', number: 932 });
      await s.createNode({ farm: 'xts-farm', id: 'xts-gw1', publicIPv4: '198.51.100.1', exitCapable: true });
      await s.createNode({ farm: 'xts-farm', id: 'xts-gw2', publicIPv6: '2001:db8:ffff::2', exitCapable: true });
      await s.createNode({ farm: 'xts-farm', id: 'xts-w1', publicIPv4: '198.51.100.3', exitCapable: false });
      await s.createNode({ farm: 'xts-farm', id: 'xts-w2', exitCapable: false });
      await s.createNode({ farm: 'xts-other', id: 'xts-o1', exitCapable: true });
    });
    after(async () => {
      for (const x of stores) await x.close().catch(() => undefined);
    });

    it('refuses duplicates and bad allocations with catalogued errors', async () => {
      assert.equal(await code(s.createFarm('xts-farm')), 'NAME_TAKEN');
      assert.equal(await code(s.createFarm('Bad Name')), 'NAME_SYNTAX');
      assert.equal(
        await code(s.createAllocation({ farm: 'xts-farm', prefix: '2001:db8:3a00::/48' })),
        'ALLOCATION_TAKEN',
      );
      assert.equal(
        await code(s.createAllocation({ farm: 'xts-farm', prefix: '2001:db8:3c00::/48', number: 931 })),
        'ALLOCATION_TAKEN',
      );
      assert.equal(await code(s.createAllocation({ farm: 'xts-farm', prefix: '2001:db8:3c00::/47' })), 'PREFIX_NOT_48');
      assert.equal(
        await code(s.createAllocation({ farm: 'xts-farm', prefix: '2001:db8:3c00::1/48' })),
        'PREFIX_HOST_BITS',
      );
      assert.equal(await code(s.createAllocation({ farm: 'nope', prefix: '2001:db8:3c00::/48' })), 'FARM_UNKNOWN');
      assert.equal(
        await code(
          s.createAllocation({
            farm: 'xts-farm',
            prefix: '2001:db8:3c00::/48',
            ipv4: { addresses: ['203.0.113.5'], prefixLength: 24, gateway: '192.0.2.1' },
          }),
        ),
        'IPV4_POOL',
      );
      assert.equal(await code(s.createNode({ farm: 'xts-farm', id: 'xts-gw1', exitCapable: true })), 'NAME_TAKEN');
      assert.equal(
        await code(s.createNode({ farm: 'xts-farm', id: 'xts-x', publicIPv4: '2001:db8::1', exitCapable: true })),
        'NOT_IPV4',
      );
      const auto = await s.createAllocation({ farm: 'xts-other', prefix: '2001:db8:3d00::/48' });
      assert.equal(auto.number, 1, 'lowest free allocation number');
    });

    it('refuses a network while no slot has a node, then places it on the assigned slot', async () => {
      assert.equal(
        await code(s.createNetwork({ tenant: 'xts-t1', name: 'early', allocation: 931 })),
        'SLOT_UNASSIGNED',
      );
      assert.equal(await code(s.assignSlot(931, 1, 'xts-w1')), 'NODE_NOT_EXIT_CAPABLE');
      // another farm's node answers as one that does not exist (issue 11)
      assert.equal(await code(s.assignSlot(931, 1, 'xts-o1')), 'NODE_UNKNOWN');
      assert.equal(await code(s.assignSlot(931, 16, 'xts-gw1')), 'SLOT_RANGE');
      const a = await s.assignSlot(931, 1, 'xts-gw1');
      assert.deepEqual(
        { node: a.node, epoch: a.epoch, ipv4: a.ipv4 },
        { node: 'xts-gw1', epoch: 1, ipv4: '192.0.2.11/24' },
      );
      const { network } = await s.createNetwork({ tenant: 'xts-t1', name: 'web', allocation: 931 });
      assert.equal(network.slot, 1);
      assert.equal(network.exit, '1000');
      assert.deepEqual(network.resources, [{ id: '1000', node: 'xts-gw1', prefix: '2001:db8:3a00:1000::/64' }]);
      assert.equal(await code(s.createNetwork({ tenant: 'xts-t1', name: 'web', allocation: 931 })), 'NAME_TAKEN');
    });

    it('hands out the lowest free id, quarantines removed ids, replays idempotent requests', async () => {
      const [net] = await s.listNetworks('xts-t1');
      const r1 = await s.addResource({ tenant: 'xts-t1', network: net!.id, node: 'xts-w1', idempotencyKey: 'k-1' });
      assert.equal(r1.resource.id, '1001');
      assert.equal(r1.replay, false);
      const again = await s.addResource({ tenant: 'xts-t1', network: net!.id, node: 'xts-w1', idempotencyKey: 'k-1' });
      assert.deepEqual(again.resource, r1.resource);
      assert.equal(again.replay, true);
      assert.equal(
        await code(s.addResource({ tenant: 'xts-t1', network: net!.id, node: 'xts-w2', idempotencyKey: 'k-1' })),
        'IDEMPOTENCY_MISMATCH',
      );
      assert.equal(await code(s.addResource({ tenant: 'xts-t1', network: net!.id, node: 'xts-w1' })), 'NR_NODE_TAKEN');
      assert.equal(
        await code(s.addResource({ tenant: 'xts-t2', network: net!.id, node: 'xts-w2' })),
        'NETWORK_UNKNOWN',
      );
      assert.equal(await code(s.addResource({ tenant: 'xts-t1', network: net!.id, node: 'xts-o1' })), 'NODE_UNKNOWN');
      const r2 = await s.addResource({ tenant: 'xts-t1', network: net!.id, node: 'xts-w2' });
      assert.equal(r2.resource.id, '1002');
      await s.removeResource('xts-t1', net!.id, '1001');
      assert.equal(await code(s.removeResource('xts-t1', net!.id, '1001')), 'NR_UNKNOWN');
      assert.equal(await code(s.removeResource('xts-t1', net!.id, '1000')), 'NR_IS_EXIT');
      assert.equal(await code(s.removeResource('xts-t2', net!.id, '1002')), 'NETWORK_UNKNOWN');
      assert.equal(await code(s.removeResource('xts-t1', net!.id, '2001')), 'NR_ID_OUTSIDE_SLOT');
      assert.equal(
        await code(s.addResource({ tenant: 'xts-t1', network: net!.id, node: 'xts-w1', idempotencyKey: 'k-1' })),
        'IDEMPOTENCY_GONE',
      );
      // 1001 is in quarantine: the next id is 1003.
      const r3 = await s.addResource({ tenant: 'xts-t1', network: net!.id, node: 'xts-w1' });
      assert.equal(r3.resource.id, '1003');
      await s.removeResource('xts-t1', net!.id, '1003');
      now += 59_999;
      const r4 = await s.addResource({ tenant: 'xts-t1', network: net!.id, node: 'xts-w1' });
      assert.equal(r4.resource.id, '1004', 'still in quarantine one ms before it ends');
      await s.removeResource('xts-t1', net!.id, '1004');
      now += 1;
      const r5 = await s.addResource({ tenant: 'xts-t1', network: net!.id, node: 'xts-w1' });
      assert.equal(r5.resource.id, '1001', 'reused once the quarantine is over, lowest first');
      await s.assignSlot(931, 1, 'xts-gw1'); // renew: the clock moved a minute
    });

    it('serves a node exactly its view, with endpoints and versions', async () => {
      const [net] = await s.listNetworks('xts-t1');
      const v0 = await s.view('xts-w2');
      assert.deepEqual(v0.node, { id: 'xts-w2' });
      assert.deepEqual(v0.slots, []);
      assert.deepEqual(v0.allocations, [
        {
          number: 931,
          prefix: '2001:db8:3a00::/48',
          upstream: { ll: 'fe80::1', ip6: '2001:db8:3a00::1', ipv4Gateway: '192.0.2.1', ipv4PrefixLength: 24 },
        },
      ]);
      assert.deepEqual(v0.networks, [
        {
          id: net!.id,
          allocation: 931,
          exit: '1000',
          resources: [
            { id: '1000', node: 'xts-gw1', endpoint: '198.51.100.1:4096' },
            { id: '1001', node: 'xts-w1', endpoint: '198.51.100.3:4097' },
            { id: '1002', node: 'xts-w2' },
          ],
        },
      ]);
      const g = await s.view('xts-gw1');
      assert.deepEqual(
        g.slots,
        [{ allocation: 931, slot: 1, epoch: 1, ipv4: '192.0.2.11' }],
        'GWPubIP4 as an address; its length is upstream.ipv4PrefixLength',
      );
      // an NR another node hosts: as if it did not exist (issue 11)
      assert.equal(await code(s.setKey('xts-w1', net!.id, '1002', KEY_A)), 'NR_UNKNOWN');
      assert.equal(await code(s.setKey('xts-w2', net!.id, '1002', 'short')), 'KEY_SYNTAX');
      await s.setKey('xts-w2', net!.id, '1002', KEY_A);
      const v1 = await s.view('xts-w2');
      assert.ok(v1.version > v0.version);
      assert.equal(v1.networks[0]!.resources[2]!.publicKey, KEY_A);
      assert.ok((await s.viewVersion('xts-gw1')) > g.version, 'a key change reaches every node of the network');
      const other = await s.view('xts-o1');
      assert.deepEqual(other.networks, []);
      // The agent's gate (core's parseNodeView) accepts every view the store serves, unchanged.
      for (const x of [v0, v1, g, other]) assert.deepEqual(parseNodeView(JSON.parse(JSON.stringify(x))), x);
    });

    it('keeps a lease while heartbeats come, moves the slot with epoch + 1 when they stop', async () => {
      const [net] = await s.listNetworks('xts-t1');
      await s.heartbeat('xts-gw1');
      await s.heartbeat('xts-gw2');
      await s.setKey('xts-gw1', net!.id, '1000', KEY_B);
      const before = {
        gw1: await s.viewVersion('xts-gw1'),
        gw2: await s.viewVersion('xts-gw2'),
        w1: await s.viewVersion('xts-w1'),
      };
      for (let i = 0; i < 4; i++) {
        now += 3000;
        const leases = await s.heartbeat('xts-gw1');
        await s.heartbeat('xts-gw2');
        assert.deepEqual(leases, [{ allocation: 931, slot: 1, epoch: 1, leaseExpiresAt: now + 5000 }]);
        assert.deepEqual(await s.sweep(), []);
      }
      now += 3000;
      await s.heartbeat('xts-gw2'); // gw1 falls silent
      now += 1999;
      assert.deepEqual(await s.sweep(), [], 'the lease holds until its last millisecond');
      now += 1;
      const moves = await s.sweep();
      assert.deepEqual(moves, [{ allocation: 931, slot: 1, previous: 'xts-gw1', node: 'xts-gw2', epoch: 2 }]);
      const v = await s.view('xts-gw2');
      assert.deepEqual(v.slots, [{ allocation: 931, slot: 1, epoch: 2, ipv4: '192.0.2.11' }]);
      const exit = v.networks[0]!.resources.find((r) => r.id === '1000')!;
      assert.deepEqual(
        exit,
        { id: '1000', node: 'xts-gw2', endpoint: '[2001:db8:ffff::2]:4096' },
        'the ExitPoint moved, its old key cleared',
      );
      assert.deepEqual((await s.view('xts-gw1')).slots, []);
      assert.deepEqual(parseNodeView(JSON.parse(JSON.stringify(v))), v);
      assert.ok((await s.viewVersion('xts-gw1')) > before.gw1);
      assert.ok(v.version > before.gw2);
      assert.ok((await s.viewVersion('xts-w1')) > before.w1);
      // The old holder's late heartbeat gets nothing back.
      assert.deepEqual(await s.heartbeat('xts-gw1'), []);
      assert.equal(await code(s.heartbeat('xts-nope')), 'NODE_UNKNOWN');
    });

    it('places a new network on the healthy slot with the fewest NRs', async () => {
      await s.assignSlot(931, 2, 'xts-gw1');
      const { network } = await s.createNetwork({ tenant: 'xts-t2', name: 'db' });
      assert.equal(network.slot, 2);
      assert.equal(network.exit, '2000');
      assert.equal(network.resources[0]!.node, 'xts-gw1');
      assert.equal((await s.createNetwork({ tenant: 'xts-t2', name: 'db2', allocation: 931 })).network.slot, 2);
      // Every lease lapses, and no node is healthy to take a slot over: the refusal says why.
      now += 6000;
      assert.equal(
        await code(s.createNetwork({ tenant: 'xts-t2', name: 'db3', allocation: 931 })),
        'SLOT_LEASE_LAPSED',
      );
      // gw2 heartbeats again: slot 2 (gw1's) moves to it, and slot 1 (its own) is renewed.
      await s.heartbeat('xts-gw2');
      const third = await s.createNetwork({ tenant: 'xts-t2', name: 'db3', allocation: 931 });
      assert.equal(third.network.resources[0]!.node, 'xts-gw2');
    });

    it('deletes a network with all its NRs and quarantines every id', async () => {
      const nets = await s.listNetworks('xts-t2');
      const db = nets.find((n) => n.name === 'db')!;
      assert.equal(await code(s.deleteNetwork('xts-t1', db.id)), 'NETWORK_UNKNOWN');
      await s.deleteNetwork('xts-t2', db.id);
      assert.equal(await s.getNetwork(db.id), undefined);
      const again = await s.createNetwork({ tenant: 'xts-t2', name: 'db4', allocation: 931 });
      assert.notEqual(again.network.exit, db.exit, 'the deleted ExitPoint id is in quarantine');
      const st = await s.stats();
      assert.equal(
        st.resources,
        (await s.listNetworks()).reduce((n, x) => n + x.resources.length, 0),
      );
      assert.equal(
        st.slots.reduce((n, x) => n + x.nrs, 0),
        st.resources,
        'per-slot counters agree with the rows',
      );
    });

    it('forwards: picks GWPubIP4 and a free port, refuses reserved and taken ones, replays keys, removes totally', async () => {
      await s.heartbeat('xts-gw1');
      await s.heartbeat('xts-gw2');
      const { network: net } = await s.createNetwork({ tenant: 'xts-t1', name: 'svc', allocation: 931 });
      const w = await s.addResource({ tenant: 'xts-t1', network: net.id, node: 'xts-w1' });
      const v4 = (id: string, host: number): string => `10.${parseInt(id, 16) >> 8}.${parseInt(id, 16) & 255}.${host}`;
      const gw = (await s.listSlots(931))[net.slot - 1]!;
      const base = { tenant: 'xts-t1', network: net.id };
      const f1 = await s.addForward({
        ...base,
        protocol: 'tcp',
        port: 8080,
        target: v4(w.resource.id, 100),
        targetPort: 80,
      });
      assert.deepEqual(f1.forward, {
        network: net.id,
        allocation: 931,
        slot: net.slot,
        protocol: 'tcp',
        port: 8080,
        address: gw.ipv4!.split('/')[0],
        target: v4(w.resource.id, 100),
        targetPort: 80,
      });
      const auto1 = await s.addForward({
        ...base,
        protocol: 'udp',
        target: v4(net.exit, 7),
        targetPort: 53,
        idempotencyKey: 'fk',
      });
      assert.equal(auto1.forward.port, 1024, 'lowest free port');
      const again = await s.addForward({
        ...base,
        protocol: 'udp',
        target: v4(net.exit, 7),
        targetPort: 53,
        idempotencyKey: 'fk',
      });
      assert.deepEqual(again, { forward: auto1.forward, replay: true });
      assert.equal(
        await code(
          s.addForward({ ...base, protocol: 'udp', target: v4(net.exit, 8), targetPort: 53, idempotencyKey: 'fk' }),
        ),
        'IDEMPOTENCY_MISMATCH',
      );
      assert.equal(
        (await s.addForward({ ...base, protocol: 'udp', target: v4(net.exit, 7), targetPort: 54 })).forward.port,
        1025,
      );
      const t = { ...base, target: v4(net.exit, 7), targetPort: 1 };
      assert.equal(await code(s.addForward({ ...t, protocol: 'tcp', port: 8080 })), 'FORWARD_PORT_TAKEN');
      assert.equal(
        await code(s.addForward({ ...t, protocol: 'udp', port: net.slot * 4096 + 5 })),
        'FORWARD_PORT_RESERVED',
      );
      assert.equal(await code(s.addForward({ ...t, protocol: 'tcp', port: 179 })), 'FORWARD_PORT_RESERVED');
      assert.equal(await code(s.addForward({ ...t, protocol: 'sctp', port: 9 })), 'FORWARD_INVALID');
      assert.equal(await code(s.addForward({ ...t, protocol: 'tcp', port: 70000 })), 'FORWARD_INVALID');
      assert.equal(await code(s.addForward({ ...t, protocol: 'tcp', target: v4(net.exit, 1) })), 'FORWARD_INVALID');
      assert.equal(await code(s.addForward({ ...t, protocol: 'tcp', target: '10.99.99.9' })), 'FORWARD_INVALID');
      assert.equal(await code(s.addForward({ ...t, tenant: 'xts-t2', protocol: 'tcp' })), 'NETWORK_UNKNOWN');
      assert.equal((await s.listForwards(net.id, 'xts-t1')).length, 3);
      // The gateway's view carries them, and the inbound policy once closed.
      await s.setInbound('xts-t1', net.id, 'closed');
      const r1 = await s.addInboundRule({ ...base, protocol: 'tcp', ports: '80' });
      const r2 = await s.addInboundRule({ ...base, protocol: 'udp', ports: '5000-5100', source: '2001:db8:ff::/48' });
      assert.equal(await code(s.addInboundRule({ ...base, protocol: 'tcp', ports: '70-90' })), 'INBOUND_RULE_OVERLAP');
      assert.equal(
        await code(s.addInboundRule({ ...base, protocol: 'udp', ports: '5050', source: '2001:db8:ff:1::/64' })),
        'INBOUND_RULE_OVERLAP',
      );
      assert.equal(await code(s.addInboundRule({ ...base, protocol: 'tcp', ports: '90-80' })), 'FORWARD_INVALID');
      assert.equal(
        await code(s.addInboundRule({ ...base, protocol: 'tcp', ports: '443', source: '10.0.0.0/8' })),
        'FORWARD_INVALID',
      );
      assert.equal(await code(s.setInbound('xts-t1', net.id, 'ajar')), 'INBOUND_POLICY_INVALID');
      assert.deepEqual(await s.getInbound(net.id, 'xts-t1'), {
        network: net.id,
        policy: 'closed',
        rules: [
          { id: r1.id, protocol: 'tcp', ports: '80' },
          { id: r2.id, protocol: 'udp', ports: '5000-5100', source: '2001:db8:ff::/48' },
        ],
      });
      const view = parseNodeView(await s.view(gw.node!));
      const vn = view.networks.find((x) => x.id === net.id)!;
      assert.equal(vn.forwards?.length, 3);
      assert.deepEqual(vn.inbound, {
        policy: 'closed',
        rules: [
          { protocol: 'tcp', from: 80, to: 80 },
          { protocol: 'udp', from: 5000, to: 5100, source: '2001:db8:ff::/48' },
        ],
      });
      await s.removeInboundRule('xts-t1', net.id, r1.id);
      assert.equal(await code(s.removeInboundRule('xts-t1', net.id, r1.id)), 'INBOUND_RULE_UNKNOWN');
      await s.removeForward('xts-t1', net.id, 'udp', 1025);
      assert.equal(await code(s.removeForward('xts-t1', net.id, 'udp', 1025)), 'FORWARD_UNKNOWN');
      // The NR a forward points at goes, and the forward with it.
      await s.removeResource('xts-t1', net.id, w.resource.id);
      assert.deepEqual(
        (await s.listForwards(net.id)).map((f) => `${f.protocol}/${f.port}`),
        ['udp/1024'],
      );
      assert.deepEqual(
        (await s.findForward(gw.ipv4!.split('/')[0]!, 1024)).map((f) => f.network),
        [net.id],
      );
      await s.deleteNetwork('xts-t1', net.id);
      assert.equal(await code(s.listForwards(net.id)), 'NETWORK_UNKNOWN');
      assert.deepEqual(await s.findForward(gw.ipv4!.split('/')[0]!, 1024), []);
      assert.equal(
        parseNodeView(await s.view(gw.node!)).networks.find((x) => x.id === net.id),
        undefined,
      );
    });

    // An in-memory database cannot be reopened: the restart case exists for the others only.
    if (restartable)
      it('loses nothing across a restart', async () => {
        assert.ok(reopen, 'a restartable store comes with reopen()');
        const before = {
          nets: await s.listNetworks(),
          slots: await s.listSlots(931),
          version: await s.viewVersion('xts-w1'),
        };
        await s.close();
        stores.splice(stores.indexOf(s), 1);
        s = await reopen();
        stores.push(s);
        assert.deepEqual(await s.listNetworks(), before.nets);
        assert.deepEqual(await s.listSlots(931), before.slots);
        assert.equal(await s.viewVersion('xts-w1'), before.version);
        assert.ok(await s.getNode('xts-gw1'));
      });
  });
}

contract('PGlite in memory', async (o) => ({ store: await openStore(o) }), undefined, false);

const dir = mkdtempSync(join(tmpdir(), 'xts-pglite-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
contract('PGlite in a data directory', async (o) => ({
  store: await openStore({ ...o, dataDir: dir }),
  reopen: () => openStore({ ...o, dataDir: dir }),
}));

const wdir = mkdtempSync(join(tmpdir(), 'xts-pglite-w-'));
process.on('exit', () => rmSync(wdir, { recursive: true, force: true }));
contract('PGlite in a worker thread', async (o) => ({
  store: await openStore({ ...o, dataDir: wdir, pgliteWorker: true }),
  reopen: () => openStore({ ...o, dataDir: wdir, pgliteWorker: true }),
}));

const skip = pgSkipReason();
let url: string | undefined;
contract(
  'a PostgreSQL server',
  async (o) => {
    url ??= await (await pgCluster()).createDb();
    return { store: await openStore({ ...o, url }), reopen: () => openStore({ ...o, url }) };
  },
  skip,
);

describe('forwards on two store instances of one PostgreSQL server', { skip }, () => {
  it('32 concurrent requests for one port, from two tenants on one slot, yield exactly one forward', async () => {
    const u = await (await pgCluster()).createDb();
    const now = 1_700_000_000_000;
    const [a, b] = await Promise.all([
      openStore({ url: u, clock: () => now }),
      openStore({ url: u, clock: () => now }),
    ]);
    try {
      await a.createFarm('xts-f');
      await a.createTenant('xts-t');
      await a.createTenant('xts-u');
      await a.createAllocation({
        farm: 'xts-f',
        prefix: '2001:db8:3f00::/48',
        number: 934,
        ipv4: { addresses: ['192.0.2.21', '192.0.2.22'], prefixLength: 24, gateway: '192.0.2.1' },
      });
      await a.createNode({ farm: 'xts-f', id: 'xts-g', exitCapable: true });
      await a.assignSlot(934, 2, 'xts-g');
      const n1 = (await a.createNetwork({ tenant: 'xts-t', name: 'one' })).network;
      const n2 = (await b.createNetwork({ tenant: 'xts-u', name: 'two' })).network;
      assert.equal(n1.slot, n2.slot);
      const target = (n: typeof n1): string => `10.${parseInt(n.exit, 16) >> 8}.${parseInt(n.exit, 16) & 255}.10`;
      const jobs = Array.from({ length: 32 }, (_, i) => {
        const n = i % 2 ? n1 : n2;
        return (i % 4 < 2 ? a : b)
          .addForward({
            tenant: n === n1 ? 'xts-t' : 'xts-u',
            network: n.id,
            protocol: 'tcp',
            port: 443,
            target: target(n),
            targetPort: 443,
          })
          .then(
            () => 'ok',
            (e: unknown) => (isExitnodeError(e) ? e.code : String(e)),
          );
      });
      const got = await Promise.all(jobs);
      assert.equal(got.filter((x) => x === 'ok').length, 1, got.join(' '));
      assert.equal(got.filter((x) => x === 'FORWARD_PORT_TAKEN').length, 31);
      const all = [...(await a.listForwards(n1.id)), ...(await b.listForwards(n2.id))];
      assert.deepEqual(
        all.map((f) => `${f.address} ${f.protocol}/${f.port}`),
        ['192.0.2.22 tcp/443'],
      );
      // Automatic ports under concurrency: all different, lowest first.
      const autos = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          (i % 2 ? a : b).addForward({
            tenant: 'xts-t',
            network: n1.id,
            protocol: 'udp',
            target: target(n1),
            targetPort: 53,
          }),
        ),
      );
      assert.deepEqual(
        autos.map((x) => x.forward.port).sort((x, y) => x - y),
        Array.from({ length: 16 }, (_, i) => 1024 + i),
      );
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('two store instances on one PostgreSQL server', { skip }, () => {
  it("never hand out one id twice and wake each other's view waiters", async () => {
    const u = await (await pgCluster()).createDb();
    const now = 1_700_000_000_000;
    const [a, b] = await Promise.all([
      openStore({ url: u, clock: () => now }),
      openStore({ url: u, clock: () => now }),
    ]);
    try {
      await a.createFarm('xts-f');
      await a.createTenant('xts-t');
      await a.createAllocation({ farm: 'xts-f', prefix: '2001:db8:3e00::/48', number: 933 });
      await a.createNode({ farm: 'xts-f', id: 'xts-g', exitCapable: true });
      for (let i = 0; i < 40; i++) await b.createNode({ farm: 'xts-f', id: `xts-n${i}`, exitCapable: false });
      await a.assignSlot(933, 3, 'xts-g');
      const nets = [];
      for (let i = 0; i < 4; i++)
        nets.push((await (i % 2 ? a : b).createNetwork({ tenant: 'xts-t', name: `n${i}` })).network);
      const watch = new ViewWatch(a);
      const v0 = await a.viewVersion('xts-n39');
      const woke = watch.waitFor('xts-n39', v0, 5000);
      const jobs = [];
      for (const net of nets)
        for (let i = 0; i < 40; i++)
          jobs.push((i % 2 ? a : b).addResource({ tenant: 'xts-t', network: net.id, node: `xts-n${i}` }));
      const got = await Promise.all(jobs);
      const ids = got.map((g) => g.resource.id);
      assert.equal(new Set(ids).size, 160);
      assert.ok(ids.every((id) => id.startsWith('3')));
      assert.deepEqual(
        [...ids].sort(),
        Array.from({ length: 160 }, (_, i) => (0x3004 + i).toString(16)),
        'lowest first, no gap',
      );
      assert.equal(await woke, true, 'changes made through b woke a waiter on a');
      watch.close();
    } finally {
      await a.close();
      await b.close();
    }
  });
});
