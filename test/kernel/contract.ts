// The Kernel contract (src/kernel/kernel.ts), run against the in-memory fake (unit test,
// test/kernel/kernel-contract.test.ts) and the real adapter in throwaway namespaces (root test,
// test/netns/kernel-contract.root.test.ts). Both are driven through the interface only: the
// environment (a stand-in for the host's namespace, an upstream segment with a bridge and the
// upstream router's addresses) is itself built by applying a plan. A node with one gateway, an
// ExitPoint NR and a WireGuard peer is built by compile → observe → diff → apply, read back,
// probed, broken (a missing namespace, a bad line, a bad nft transaction), fenced, repaired, and
// taken down; every step is asserted in the terms the agent relies on.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/compile/index.js';
import type { DesiredState } from '../../src/compile/desired.js';
import { parseNodeView, type NodeView } from '../../src/core/view.js';
import type { NodeConfig } from '../../src/agent/config.js';
import { diff } from '../../src/reconcile/diff.js';
import { Phase, type Plan } from '../../src/reconcile/plan.js';
import type { ActualState } from '../../src/reconcile/actual.js';
import type { ObjectRef } from '../../src/reconcile/objects.js';
import {
  epPubName,
  gatewayNamespace,
  gatewayUplinkName,
  nrNamespace,
  toLinkName,
  uplinkPeerName,
  wgLinkName,
} from '../../src/core/ownership.js';
import type { Clock, Kernel } from '../../src/kernel/kernel.js';
import { keepalivedSpec } from '../../src/compile/keepalived.js';
import { allocation, planSlot } from '../../src/core/plan.js';

export interface KernelFixture {
  kernel: Kernel;
  clock: Clock;
  /** A state directory of the fixture's own. */
  stateDir: string;
  /** Removes whatever the suite left (namespaces of the prefix, processes); runs also after a failure. */
  cleanup(): Promise<void>;
  /** Whether process PID is alive (the real kernel: no orphan keepalived); absent: not asked. */
  alive?(pid: number): boolean;
}

const A = 97;
const PEER_KEY = Buffer.alloc(32, 7).toString('base64');
const GW_IP4 = '198.51.100.21';

/**
 * D as a stage-2 candidate would have it (until compile does it, DESIGN.md 8.2): the gateway's
 * uplink keeps the kernel's link-local address, GWPubLL, GWPubIP6, GWPubIP4 and the IPv4 default
 * route are keepalived's (left out, listed as foreign), and keepalived runs with PRIORITY.
 */
function candidate(d: DesiredState, gw: string, stateDir: string, priority: number): DesiredState {
  const a = allocation('2001:db8:7a::/48', A);
  const p = planSlot(a, 1);
  const foreign = [p.GWPubLL, p.GWPubIP6, `${GW_IP4}/24`];
  return {
    ...d,
    namespaces: d.namespaces.map((n) =>
      n.name !== gw
        ? n
        : {
            ...n,
            links: n.links.map((l) => (l.name === p.GWPubName ? { ...l, kernelLinkLocal: true } : l)),
            addrs: n.addrs.filter((x) => !foreign.includes(x.addr)),
            routes: n.routes.filter((r) => r.dst !== '0.0.0.0/0'),
            foreign: { addrs: foreign, routes: ['0.0.0.0/0'] },
          },
    ),
    vrrp: [
      keepalivedSpec({
        allocation: a,
        slot: 1,
        ns: gw,
        priority,
        upstreamLL: 'fe80::1',
        ipv4: { address: GW_IP4, prefixLength: 24, gateway: '198.51.100.1' },
        stateDir,
      }),
    ],
  };
}

/** The node's view: slot 1 of allocation 97, a TN whose ExitPoint 1abc is here and whose NR 1abd is elsewhere. */
function viewOf(node: string, slots: boolean, extra: Record<string, unknown> = {}): NodeView {
  return parseNodeView({
    version: 1,
    node: { id: node, publicIPv4: '192.0.2.1' },
    allocations: [
      {
        number: A,
        prefix: '2001:db8:7a::/48',
        upstream: { ll: 'fe80::1', ipv4Gateway: '198.51.100.1', ipv4PrefixLength: 24 },
      },
    ],
    slots: slots ? [{ allocation: A, slot: 1, epoch: 1, ipv4: GW_IP4 }] : [],
    networks: slots
      ? [
          {
            id: 'tn-k',
            allocation: A,
            exit: '1abc',
            resources: [
              { id: '1abc', node, endpoint: '192.0.2.1:6844' },
              { id: '1abd', node: 'elsewhere', publicKey: PEER_KEY, endpoint: '192.0.2.2:6845' },
            ],
            ...extra,
          },
        ]
      : [],
  });
}

/** Runs the contract against the kernels FACTORY makes; P is a namespace prefix of the suite's own. */
export function kernelContract(
  name: string,
  P: string,
  factory: () => Promise<KernelFixture>,
  opts: { skip?: string } = {},
): void {
  describe(`Kernel contract on ${name}`, { skip: opts.skip }, () => {
    let k: Kernel;
    let clock: Clock;
    let fx: KernelFixture;
    let config: NodeConfig;
    const ROOT = `${P}root`;
    const SEG = `${P}seg`;
    const GW = gatewayNamespace(`${P}n-`, 1, A);
    const NR = nrNamespace(`${P}n-`, '1abc', A);
    const UP = gatewayUplinkName(1, A);
    const WG = wgLinkName('1abc', A);
    const observeOpts = (): { namespacePrefix: string; stateDir: string; kernelWireguard: boolean } => ({
      namespacePrefix: config.namespacePrefix,
      stateDir: config.stateDir,
      kernelWireguard: false,
    });
    const read = (d: DesiredState): Promise<ActualState> => k.observe(d, observeOpts());
    const planFor = async (d: DesiredState): Promise<Plan> =>
      diff(d, await read(d), { kernelWireguard: false, privateKeys: k.privateKeys(config.stateDir, d.wireguard) });
    const pass = async (d: DesiredState): Promise<void> => {
      const failures = await k.apply(await planFor(d), { stateDir: config.stateDir });
      assert.deepEqual(failures, [], 'the pass applies without failures');
    };
    const ns = (a: ActualState, name: string) => {
      const n = a.namespaces.get(name);
      assert.ok(n, `${name} is read`);
      return n;
    };
    const waitUntil = async (what: string, fn: () => Promise<boolean>, ms = 10_000): Promise<void> => {
      const end = clock.now() + ms;
      while (!(await fn())) {
        if (clock.now() > end) assert.fail(`${what}: not within ${ms} ms`);
        await clock.sleep(50);
      }
    };
    let desired: DesiredState;
    let empty: DesiredState;

    before(async () => {
      fx = await factory();
      k = fx.kernel;
      clock = fx.clock;
      config = {
        node: 'k1',
        namespacePrefix: `${P}n-`,
        rootNamespace: ROOT,
        publicNamespace: ROOT,
        stateDir: fx.stateDir,
        uplink: { kind: 'veth', peerNamespace: SEG, bridge: 'pzbr' },
        wireguard: 'userspace',
      };
      desired = compile(viewOf('k1', true), config);
      empty = compile(viewOf('k1', false), config);
      // The environment: the node's root namespace, and the upstream segment: a bridge, and the
      // upstream router's end (fe80::1, 198.51.100.1) on a veth whose other end is a bridge port.
      const env: Plan = {
        steps: [
          {
            tool: 'ip',
            phase: Phase.NETNS_ADD,
            ns: '',
            lines: [`netns add ${ROOT}`, `netns add ${SEG}`],
            objects: [
              { kind: 'netns', name: ROOT },
              { kind: 'netns', name: SEG },
            ],
          },
          {
            tool: 'ip',
            phase: Phase.LINK_ADD,
            ns: SEG,
            lines: [
              'link add pzbr type bridge',
              'link add upr type veth peer name upl',
              'link set upl master pzbr',
              'link set pzbr addrgenmode none',
              'link set upl addrgenmode none',
              'link set upr addrgenmode none',
              'link set pzbr up',
              'link set upl up',
              'link set upr up',
              'addr replace fe80::1/64 dev upr nodad',
              'addr replace 198.51.100.1/24 dev upr',
            ],
            objects: Array<ObjectRef>(11).fill({ kind: 'link', ns: SEG, name: 'upr' }),
          },
        ],
      };
      assert.deepEqual(await k.apply(env, { stateDir: config.stateDir }), []);
    });
    after(async () => {
      await fx?.cleanup();
    });

    it('observes a node that holds nothing: no owned namespace, the environment as built', async () => {
      const a = await read(empty);
      assert.deepEqual([...a.owned], []);
      assert.deepEqual([...a.wireguard.keys()], []);
      assert.ok(k.namespaceExists(ROOT) && k.namespaceExists(SEG) && k.namespaceExists(''));
      assert.equal(k.namespaceExists(`${P}nope`), false);
      const seg = ns(await read(desired), SEG);
      const link = (n: string) => seg.links.find((l) => l.name === n);
      assert.equal(link('pzbr')?.kind, 'bridge');
      assert.equal(link('upl')?.master, 'pzbr');
      assert.deepEqual([link('upr')?.kind, link('upr')?.up], ['veth', true]);
      assert.deepEqual(
        seg.addrs
          .filter((x) => x.dev === 'upr')
          .map((x) => x.addr)
          .sort(),
        ['198.51.100.1/24', 'fe80::1/64'],
      );
      assert.deepEqual(seg.routes, [], 'only routes of our protocol are read');
    });

    it('applies a pass that builds what compile asks, reads it back, and a second diff is empty', async () => {
      await pass(desired);
      const a = await read(desired);
      assert.deepEqual([...a.owned].sort(), [GW, NR].sort());
      for (const d of desired.namespaces) {
        const got = ns(a, d.name);
        for (const l of d.links) {
          const have = got.links.find((x) => x.name === l.name);
          assert.ok(have, `link ${l.name} in ${d.name}`);
          assert.equal(have.up, true, `${l.name} is up`);
          if (l.master) assert.equal(have.master, l.master);
        }
        for (const x of d.addrs)
          assert.ok(
            got.addrs.some((y) => y.dev === x.dev && y.addr === x.addr),
            `${x.addr} on ${x.dev} in ${d.name}`,
          );
        assert.deepEqual(
          got.routes.map((r) => `${r.dst} ${r.via ?? '-'} ${r.dev}`).sort(),
          d.routes.map((r) => `${r.dst} ${r.via ?? '-'} ${r.dev}`).sort(),
          `routes of ${d.name}`,
        );
        for (const [key, v] of Object.entries(d.sysctls)) assert.equal(got.sysctls[key], v, `${key} in ${d.name}`);
        assert.deepEqual(
          got.nft.map((t) => `${t.family} ${t.name}`).sort(),
          d.nft.map((t) => `${t.family} ${t.name}`).sort(),
        );
        for (const t of d.nft) {
          const have = got.nft.find((x) => x.family === t.family && x.name === t.name)!;
          assert.ok(have.ruleHashes.length > 0 && have.ruleHashes.every((h) => h === t.hash), `rules of ${t.name}`);
          for (const [set, els] of Object.entries(t.sets))
            assert.deepEqual(
              (have.sets[set] ?? []).map((e) => `${e.ifname} ${e.prefix}`).sort(),
              els.map((e) => `${e.ifname} ${e.prefix}`).sort(),
              `set ${set}`,
            );
        }
      }
      const keys = k.privateKeys(config.stateDir, desired.wireguard);
      assert.deepEqual([...keys.keys()], [WG]);
      const wg = a.wireguard.get(WG);
      assert.ok(wg, 'the WireGuard interface answers');
      assert.equal(wg.privateKey, keys.get(WG));
      assert.equal(wg.listenPort, desired.wireguard[0]!.listenPort);
      assert.deepEqual(
        wg.peers.map((p) => [p.publicKey, p.endpoint, [...p.allowedIps].sort()]),
        desired.wireguard[0]!.peers.map((p) => [p.publicKey, p.endpoint, [...p.allowedIps].sort()]),
      );
      const files = k.observeFiles(observeOpts());
      assert.deepEqual([...files.keyFiles], [WG]);
      assert.deepEqual([...files.wgProcesses.keys()], [WG]);
      assert.deepEqual([...files.pidFiles], [WG]);
      assert.deepEqual((await planFor(desired)).steps, [], 'the kernel holds the desired state: nothing to do');
    });

    it('holds forwards and the inbound policy as elements: one change is one element, removal leaves none', async () => {
      const withFw = (extra: Record<string, unknown>): DesiredState =>
        compile(viewOf(config.node, true, extra), config);
      const texts = async (d: DesiredState): Promise<string[]> => {
        const got = ns(await read(d), GW);
        return got.nft.flatMap((t) =>
          Object.entries(t.texts ?? {}).flatMap(([set, els]) => els.map((e) => `${set} ${e}`)),
        );
      };
      const fw = [
        { protocol: 'tcp', port: 8080, target: '10.26.189.100', targetPort: 80 },
        { protocol: 'udp', port: 5353, target: '10.26.188.7', targetPort: 53 },
      ];
      const rules = [
        { protocol: 'tcp', from: 80, to: 80 },
        { protocol: 'udp', from: 8000, to: 8100, source: '2001:db8:ff::/48' },
        { protocol: 'tcp', from: 22, to: 22, source: '2001:db8:ff::1/128' },
      ];
      const one = withFw({ forwards: fw, inbound: { policy: 'closed', rules } });
      await pass(one);
      assert.deepEqual((await texts(one)).sort(), [
        'allow6 2001:db8:7a:1abc::/64 . tcp . 22 . 2001:db8:ff::1',
        'allow6 2001:db8:7a:1abc::/64 . tcp . 80 . ::/0',
        'allow6 2001:db8:7a:1abc::/64 . udp . 8000-8100 . 2001:db8:ff::/48',
        'allow6 2001:db8:7a:1abd::/64 . tcp . 22 . 2001:db8:ff::1',
        'allow6 2001:db8:7a:1abd::/64 . tcp . 80 . ::/0',
        'allow6 2001:db8:7a:1abd::/64 . udp . 8000-8100 . 2001:db8:ff::/48',
        'closed6 2001:db8:7a:1abc::',
        'closed6 2001:db8:7a:1abd::',
        'fwd4 tcp . 8080 : 10.26.189.100 . 80',
        'fwd4 udp . 5353 : 10.26.188.7 . 53',
      ]);
      assert.deepEqual((await planFor(one)).steps, [], 'read back as written: nothing to do');
      // One forward retargeted, one rule gone: element changes only, in one transaction per table.
      const two = withFw({
        forwards: [{ ...fw[0], targetPort: 8080 }, fw[1]],
        inbound: { policy: 'closed', rules: rules.slice(0, 2) },
      });
      const plan = await planFor(two);
      const objs = plan.steps.flatMap((x) => x.objects);
      assert.ok(objs.length > 0 && objs.every((o) => o.kind === 'nft-elements'), 'no table is rebuilt');
      await pass(two);
      assert.ok((await texts(two)).includes('fwd4 tcp . 8080 : 10.26.189.100 . 8080'));
      assert.equal((await texts(two)).filter((e) => e.includes(' . 22 . ')).length, 0);
      assert.deepEqual((await planFor(two)).steps, []);
      // Open again and no forwards: no element is left behind.
      await pass(desired);
      assert.deepEqual(await texts(desired), []);
      assert.deepEqual((await planFor(desired)).steps, []);
    });

    it("answers probes: the uplink's addresses leave DAD, then the upstream answers on it", async () => {
      assert.equal(await k.tentative(GW, 'nosuch'), undefined, 'a missing device');
      assert.equal(await k.tentative(`${P}nope`, UP), undefined, 'a missing namespace');
      assert.equal(await k.tentative(NR, epPubName('1abc', A)), false, 'nodad addresses are never tentative');
      await waitUntil('DAD on the uplink', async () => (await k.tentative(GW, UP)) === false);
      assert.equal(await k.ping(GW, UP, 'fe80::1', 1), true, 'IPv6 link-local upstream');
      assert.equal(await k.ping(GW, UP, '198.51.100.1', 1), true, 'IPv4 upstream');
      assert.equal(await k.ping(GW, UP, '198.51.100.99', 1), false, 'an address nobody holds');
      assert.equal(await k.ping(GW, 'nosuch', 'fe80::1', 1), false, 'a missing device');
      assert.equal(await k.ping(`${P}nope`, UP, 'fe80::1', 1), false, 'a missing namespace');
      await k.flushNeighbours(GW, UP, 4);
      await k.flushNeighbours(GW, UP, 6);
      await k.flushNeighbours(`${P}nope`, UP, 6);
      assert.equal(await k.ping(GW, UP, '198.51.100.1', 1), true, 'answers again after a flush');
    });

    it('keeps a failure to its own objects: a missing namespace, one bad line of a batch', async () => {
      const to = toLinkName('1abc', A);
      const lo: ObjectRef = { kind: 'loopback', ns: `${P}nope` };
      const lines: ObjectRef[] = [
        { kind: 'addr', ns: GW, dev: to, addr: '2001:db8:7a:ff::1/128' },
        { kind: 'route', ns: GW, dst: '2001:db8:7a:fe::/64', dev: 'nosuch' },
        { kind: 'route', ns: GW, dst: '2001:db8:7a:fd::/64', dev: to },
      ];
      const failures = await k.apply(
        {
          steps: [
            { tool: 'ip', phase: Phase.CONFIGURE, ns: `${P}nope`, lines: ['link set lo up'], objects: [lo] },
            {
              tool: 'ip',
              phase: Phase.CONFIGURE,
              ns: GW,
              lines: [
                `addr replace 2001:db8:7a:ff::1/128 dev ${to} nodad`,
                'route replace 2001:db8:7a:fe::/64 dev nosuch proto 77',
                `route replace 2001:db8:7a:fd::/64 dev ${to} proto 77`,
              ],
              objects: lines,
            },
          ],
        },
        { stateDir: config.stateDir },
      );
      assert.deepEqual(
        failures.map((f) => f.objects),
        [[lo], [lines[1]]],
      );
      assert.match(failures[0]!.reason, new RegExp(`namespace ${P}nope does not exist`));
      assert.match(failures[1]!.reason, /Cannot find device "nosuch"/);
      const gw = ns(await read(desired), GW);
      assert.ok(
        gw.addrs.some((x) => x.dev === to && x.addr === '2001:db8:7a:ff::1/128'),
        'line 1 applied',
      );
      assert.ok(
        gw.routes.some((r) => r.dst === '2001:db8:7a:fd::/64' && r.dev === to),
        'line 3 applied',
      );
      // Drift on owned objects: the next pass removes both.
      const repair = await planFor(desired);
      assert.deepEqual(
        repair.steps.flatMap((s) => ('lines' in s ? s.lines : [])),
        [`route del 2001:db8:7a:fd::/64 dev ${to} proto 77`, `addr del 2001:db8:7a:ff::1/128 dev ${to}`],
      );
      await pass(desired);
      assert.deepEqual((await planFor(desired)).steps, []);
    });

    it('applies an nft transaction whole or not at all', async () => {
      const set = (a: ActualState) =>
        ns(a, GW)
          .nft.find((t) => t.name === 'exitnode-filter')!
          .sets.src6!.map((e) => `${e.ifname} ${e.prefix}`);
      const before = set(await read(desired));
      const elements: ObjectRef = {
        kind: 'nft-elements',
        ns: GW,
        family: 'inet',
        table: 'exitnode-filter',
        set: 'src6',
        count: 1,
        op: 'add',
      };
      const failures = await k.apply(
        {
          steps: [
            {
              tool: 'nft',
              phase: Phase.NFT,
              ns: GW,
              lines: [
                'add element inet exitnode-filter src6 { "to-x" . 2001:db8:7a:99:: }',
                'delete element inet exitnode-filter src6 { "to-x" . 2001:db8:7a:98:: }',
              ],
              objects: [elements, { ...elements, op: 'delete' }],
            },
          ],
        },
        { stateDir: config.stateDir },
      );
      assert.equal(failures.length, 1);
      assert.deepEqual(failures[0]!.objects, [elements, { ...elements, op: 'delete' }], 'the transaction is one step');
      assert.match(failures[0]!.reason, /^nft: /);
      assert.deepEqual(set(await read(desired)), before, 'the first line did not apply either');
    });

    it('fences: the uplink goes down without addresses or routes, then away; a gone device is no error', async () => {
      assert.equal(await k.fence(GW, UP, false), undefined);
      let gw = ns(await read(desired), GW);
      assert.equal(gw.links.find((l) => l.name === UP)?.up, false, 'down');
      assert.deepEqual(
        gw.addrs.filter((x) => x.dev === UP),
        [],
        'no address',
      );
      assert.deepEqual(
        gw.routes.filter((r) => r.dev === UP),
        [],
        'no route through it',
      );
      assert.equal(await k.ping(GW, UP, '198.51.100.1', 1), false, 'the upstream is out of reach');
      assert.equal(await k.fence(GW, UP, true), undefined);
      gw = ns(await read(desired), GW);
      assert.equal(
        gw.links.some((l) => l.name === UP),
        false,
        'deleted',
      );
      assert.equal(
        ns(await read(desired), SEG).links.some((l) => l.name === uplinkPeerName(1, A)),
        false,
        'and its veth peer on the segment with it',
      );
      assert.equal(await k.fence(GW, UP, true), undefined, 'fencing again: nothing to do');
      assert.equal(typeof (await k.fence(`${P}nope`, UP, true)), 'string', 'a missing namespace is reported');
      // A pass puts it back.
      await pass(desired);
      assert.deepEqual((await planFor(desired)).steps, []);
      await waitUntil('the upstream answers again', () => k.ping(GW, UP, 'fe80::1', 1));
    });

    it('runs keepalived on a candidate gateway: master alone, its addresses left alone, reload, drain, stop', async () => {
      // A fresh uplink with the kernel's own link-local address (the adverts' source).
      assert.equal(await k.fence(GW, UP, true), undefined);
      const one = candidate(desired, GW, config.stateDir, 250);
      await pass(one);
      const files = () => k.observeFiles(observeOpts()).vrrp ?? new Map();
      const running = files().get(GW);
      assert.ok(running?.pid !== undefined, 'keepalived runs');
      assert.equal(running.hash, one.vrrp![0]!.hash);
      const state = () => k.vrrpStates(config.stateDir).get(GW);
      await waitUntil('alone on its segment, it becomes master', async () => state()?.state === 'MASTER');
      assert.equal(state()?.priority, 250);
      const p = planSlot(allocation('2001:db8:7a::/48', A), 1);
      const held = async (): Promise<string[]> =>
        ns(await read(one), GW)
          .addrs.filter(
            (x) => x.dev === UP && one.namespaces.find((n) => n.name === GW)!.foreign!.addrs.includes(x.addr),
          )
          .map((x) => x.addr)
          .sort();
      await waitUntil('the master holds GWPubLL, GWPubIP6 and GWPubIP4', async () => (await held()).length === 3);
      assert.deepEqual(await held(), [`${GW_IP4}/24`, p.GWPubIP6, p.GWPubLL].sort());
      assert.deepEqual((await planFor(one)).steps, [], "keepalived's addresses are left alone, it is not restarted");

      // A changed priority is a reload of the same process; the master stays master.
      const two = candidate(desired, GW, config.stateDir, 200);
      const reload = await planFor(two);
      assert.deepEqual(
        reload.steps.map((x) => x.tool),
        ['vrrp-reload'],
      );
      await pass(two);
      assert.equal(files().get(GW)?.pid, running.pid, 'the same process');
      assert.equal(files().get(GW)?.hash, two.vrrp![0]!.hash);
      assert.deepEqual((await planFor(two)).steps, []);
      assert.equal(state()?.state, 'MASTER');
      assert.equal(state()?.priority, 200, 'the priority it runs with now');

      // Drain: it leaves MASTER (FAULT, a priority-0 advert), comes back, and alone it is master again.
      const seen: string[] = [];
      const unwatch = k.watchVrrp(config.stateDir, (m) => seen.push(m.get(GW)?.state ?? '-'));
      try {
        await k.vrrpDrain(config.stateDir, GW);
        assert.notEqual(state()?.state, 'FAULT', 'back from FAULT when the drain returns');
        await waitUntil('master again', async () => state()?.state === 'MASTER');
        await waitUntil(
          'the watcher saw FAULT and MASTER',
          async () => seen.includes('FAULT') && seen.at(-1) === 'MASTER',
        );
      } finally {
        unwatch();
      }
      await k.vrrpDrain(config.stateDir, `${P}nope`);

      // Stopped when no longer wanted: no process, no directory, its addresses gone with it.
      const pid = files().get(GW)!.pid!;
      const stop = await planFor({ ...two, vrrp: [] });
      assert.deepEqual(
        stop.steps.map((x) => x.tool),
        ['vrrp-stop'],
      );
      await pass({ ...two, vrrp: [] });
      assert.equal(files().size, 0);
      assert.equal(k.vrrpStates(config.stateDir).size, 0);
      if (fx.alive) assert.equal(fx.alive(pid), false, 'the process is gone');
      assert.deepEqual(await held(), [], 'it took its addresses with it');
    });

    it('keeps a link down, brings links up and down at once, kicks WireGuard and reads its endpoints', async () => {
      const dn = (d: DesiredState): DesiredState => ({
        ...d,
        namespaces: d.namespaces.map((n) =>
          n.name === NR ? { ...n, links: n.links.map((l) => (l.name === WG ? { ...l, down: true } : l)) } : n,
        ),
      });
      const link = async (d: DesiredState) => ns(await read(d), NR).links.find((l) => l.name === WG);
      const routesVia = async (d: DesiredState) => ns(await read(d), NR).routes.filter((r) => r.dev === WG).length;
      await pass(dn(desired));
      assert.equal((await link(desired))?.up, false, 'kept down');
      assert.equal(await routesVia(desired), 0, 'no route through a down link');
      assert.ok(
        ns(await read(desired), NR).addrs.some((x) => x.dev === WG && x.addr.startsWith('fe80:')),
        'its IPv6 addresses stay',
      );
      assert.deepEqual((await planFor(dn(desired))).steps, [], 'nothing to do while it stays down');
      // The fast path: up at once (a missing device is skipped), then a pass adds its routes.
      await k.setLinksUp([
        { ns: NR, dev: WG, up: true },
        { ns: NR, dev: 'nosuch', up: true },
      ]);
      assert.equal((await link(desired))?.up, true);
      const back = await planFor(desired);
      assert.ok(
        back.steps.every((x) => x.objects.every((o) => o.kind === 'route')),
        'only its routes are missing',
      );
      await pass(desired);
      assert.ok((await routesVia(desired)) > 0);
      await k.setLinksUp([{ ns: NR, dev: WG, up: false }]);
      assert.equal((await link(desired))?.up, false);
      await pass(desired);
      assert.deepEqual((await planFor(desired)).steps, []);

      const eps = await k.wgEndpoints([WG, wgLinkName('ffff', A)]);
      assert.deepEqual([...eps.keys()], [WG], 'a missing interface is left out');
      assert.deepEqual([...eps.get(WG)!], [[PEER_KEY, '192.0.2.2:6845']]);
      await k.wgKick([WG, wgLinkName('ffff', A)]);
      assert.deepEqual((await planFor(desired)).steps, [], 'the kick leaves the configuration as it was');
    });

    it('rewrites a WireGuard interface without losing the endpoint a roaming peer is at', async () => {
      await pass(desired);
      // The peer now roams (no endpoint in the view, as a node behind NAT) and another setting
      // changes, so the interface is rewritten: the endpoint it holds stays.
      const roaming: DesiredState = {
        ...desired,
        wireguard: desired.wireguard.map((w) =>
          w.name === WG
            ? {
                ...w,
                peers: w.peers.map((p) =>
                  p.publicKey === PEER_KEY ? { ...p, endpoint: undefined, keepalive: 25 } : p,
                ),
              }
            : w,
        ),
      };
      const rewrite = await planFor(roaming);
      assert.deepEqual(
        rewrite.steps.map((x) => x.tool),
        ['wg'],
      );
      await pass(roaming);
      assert.deepEqual([...(await k.wgEndpoints([WG])).get(WG)!], [[PEER_KEY, '192.0.2.2:6845']]);
      assert.deepEqual((await planFor(roaming)).steps, []);
      await pass(desired);
      assert.deepEqual((await planFor(desired)).steps, []);
    });

    it("stops a gateway's keepalived before its namespace goes (no orphan)", async () => {
      assert.equal(await k.fence(GW, UP, true), undefined);
      const one = candidate(desired, GW, config.stateDir, 250);
      await pass(one);
      const pid = k.observeFiles(observeOpts()).vrrp?.get(GW)?.pid;
      assert.ok(pid !== undefined);
      const plan = await planFor(empty);
      const order = plan.steps.map((x) => x.tool + (x.objects[0]?.kind === 'netns' ? ' netns' : ''));
      assert.ok(
        order.indexOf('vrrp-stop') >= 0 && order.indexOf('vrrp-stop') < order.indexOf('ip netns'),
        order.join(),
      );
      await pass(empty);
      assert.equal(k.observeFiles(observeOpts()).vrrp?.size, 0);
      if (fx.alive) assert.equal(fx.alive(pid), false, 'no orphan keepalived');
    });

    it('takes everything down with the empty view, and leaves the environment alone', async () => {
      await pass(empty);
      const a = await read(empty);
      assert.deepEqual([...a.owned], []);
      assert.deepEqual([...a.wireguard.keys()], []);
      assert.equal(k.namespaceExists(GW) || k.namespaceExists(NR), false);
      const files = k.observeFiles(observeOpts());
      assert.deepEqual(
        [files.keyFiles.size, files.pidFiles.size, files.wgProcesses.size],
        [0, 0, 0],
        'no key, PID file or process',
      );
      assert.equal(k.privateKeys(config.stateDir, desired.wireguard).size, 0);
      assert.deepEqual(
        ns(a, ROOT)
          .links.map((l) => l.name)
          .filter((n) => n !== 'lo'),
        [],
        'no bridge or veth left in the root namespace',
      );
      // The kernel tears a namespace down in the background: its veth peers go a moment later.
      const segLinks = async (): Promise<string> =>
        ns(await read(desired), SEG)
          .links.map((l) => l.name)
          .sort()
          .join(' ');
      await waitUntil('the uplink peer gone with the gateway', async () => (await segLinks()) === 'lo pzbr upl upr');
      assert.deepEqual((await planFor(empty)).steps, []);
    });
  });
}
