// diff against a fake kernel: `holding(desired)` is the ActualState a kernel would report after
// applying `desired` exactly; cases then change one thing on either side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Compiler } from '../compile/index.js';
import type { DesiredState } from '../compile/desired.js';
import { parseNodeView, type NodeView } from '../core/view.js';
import { parseNodeConfig } from '../agent/config.js';
import type { ActualState } from './actual.js';
import { assumeApplied } from './assume.js';
import { diff } from './diff.js';
import { concerns, objectsText, objectText, ownersOf } from './objects.js';
import { Phase, type Plan } from './plan.js';

// One compiler for the file, as an agent keeps one: later compiles hand unchanged TNs' objects over.
const compiler = new Compiler();
const compile = compiler.compile.bind(compiler);

const fixture = JSON.parse(
  readFileSync(new URL('../../test/fixtures/views/two-tns.json', import.meta.url), 'utf8'),
) as { config: unknown; view: NodeView };
const config = parseNodeConfig(fixture.config);
const view = (): NodeView => structuredClone(parseNodeView(fixture.view));
const KEYS = new Map([
  ['wg-1abc-1', 'KEYC'],
  ['wg-1abe-1', 'KEYE'],
]);
const opts = { kernelWireguard: false, privateKeys: KEYS };

function holding(d: DesiredState): ActualState {
  return assumeApplied(d, KEYS, {
    wgProcesses: new Map(d.wireguard.map((w, i) => [w.name, 1000 + i])),
    keyFiles: new Set(d.wireguard.map((w) => w.name)),
    pidFiles: new Set(d.wireguard.map((w) => w.name)),
  });
}

const lines = (p: Plan): string[] =>
  p.steps.flatMap((s) =>
    'lines' in s
      ? s.lines.map((l) => `${s.tool} ${s.ns || '(host)'}: ${l}`)
      : [`${s.tool} ${s.ns || '(host)'}: ${objectsText(s.objects)}`],
  );

test('from nothing: namespaces first, then links, moves, sysctls, addresses and routes, nft, keys, WireGuard; nothing removed', () => {
  const d = compile(view(), config);
  const empty: ActualState = {
    namespaces: new Map([['', { name: '', links: [], addrs: [], routes: [], sysctls: {}, nft: [] }]]),
    owned: new Set(),
    wireguard: new Map(),
    wgProcesses: new Map(),
    keyFiles: new Set(),
    pidFiles: new Set(),
  };
  const p = diff(d, empty, { kernelWireguard: false, privateKeys: new Map() });
  const phases = p.steps.map((s) => s.phase);
  assert.deepEqual(
    phases,
    [...phases].sort((a, b) => a - b),
    'ordered by phase',
  );
  assert.equal(p.steps[0]!.tool, 'ip');
  assert.deepEqual((p.steps[0] as { lines: string[] }).lines, [
    'netns add gw-1-1',
    'netns add net-1abc-1',
    'netns add net-1abe-1',
  ]);
  assert.ok(!p.steps.some((s) => s.phase >= Phase.LINK_DEL), 'no removals');
  const l = lines(p);
  assert.ok(l.includes('ip (host): link add link eth1 name pub-1-1 netns gw-1-1 type macvlan mode bridge'));
  assert.ok(l.includes('ip gw-1-1: link add to-1abc-1 type veth peer name pub-1abc-1 netns net-1abc-1'));
  assert.ok(l.includes('ip (host): link set wg-1abc-1 netns net-1abc-1'));
  assert.ok(l.includes('ip gw-1-1: addr replace fe80::1:1abc/64 dev to-1abc-1 nodad'));
  assert.ok(l.includes('ip gw-1-1: addr replace fe80::1000:0:0:1/64 dev pub-1-1'), 'the uplink keeps DAD');
  assert.ok(l.includes('ip gw-1-1: route replace 10.26.189.0/24 via 10.255.26.188 dev to-1abc-1 onlink proto 77'));
  assert.ok(l.includes('ip net-1abc-1: route replace ::/0 via fe80::1:1abc dev pub-1abc-1 proto 77'));
  assert.ok(l.includes('sysctl gw-1-1: net.ipv6.conf.pub-1-1.ndisc_notify=1'));
  assert.ok(
    l.some(
      (x) =>
        x.startsWith('nft gw-1-1: add element inet exitnode-filter src6 { ') &&
        x.includes('"to-1abc-1" . 2a02:1802:5e:1235::,'),
    ),
  );
  assert.equal(p.steps.filter((s) => s.tool === 'keygen').length, 2);
  assert.equal(p.steps.filter((s) => s.tool === 'wg-start').length, 2);
  // Every line of a namespace goes in one batch: one process per namespace per phase.
  const batches = p.steps.filter((s) => s.tool === 'ip').map((s) => `${s.phase} ${s.ns}`);
  assert.equal(new Set(batches).size, batches.length);
});

test('the kernel holding exactly the desired state: empty plan', () => {
  const d = compile(view(), config);
  assert.deepEqual(diff(d, holding(d), opts).steps, []);
});

test('foreign objects are never touched: links, addresses on them, tables of others', () => {
  const d = compile(view(), config);
  const a = holding(d);
  const host = a.namespaces.get('')!;
  host.links.push(
    { name: 'eth0', kind: '', up: true, addrgenNone: false },
    { name: 'br-0123456789ab', kind: 'bridge', up: true, addrgenNone: false },
    { name: 'docker0', kind: 'bridge', up: true, addrgenNone: false },
    { name: 'wg0', kind: 'wireguard', up: true, addrgenNone: false },
  );
  host.addrs.push({ dev: 'eth0', addr: '192.0.2.1/24' });
  const gw = a.namespaces.get('gw-1-1')!;
  gw.links.push({ name: 'mgmt0', kind: 'veth', up: true, addrgenNone: false });
  gw.nft.push({ family: 'inet', name: 'operator', ruleHashes: [''], sets: {} });
  assert.deepEqual(diff(d, a, opts).steps, []);
});

test('one NR of a TN removed: two routes, two elements, the ExitPoint routes and one WireGuard peer — nothing else', () => {
  const before = compile(view(), config);
  const v = view();
  v.networks[0]!.resources = v.networks[0]!.resources.filter((r) => r.id !== '1abd');
  const p = diff(compile(v, config), holding(before), opts);
  assert.deepEqual(lines(p).sort(), [
    'ip gw-1-1: route del 10.26.189.0/24 dev to-1abc-1 proto 77',
    'ip gw-1-1: route del 2a02:1802:5e:1abd::/64 dev to-1abc-1 proto 77',
    'ip net-1abc-1: route del 10.26.189.0/24 dev wg-1abc-1 proto 77',
    'ip net-1abc-1: route del 2a02:1802:5e:1abd::/64 dev wg-1abc-1 proto 77',
    'nft gw-1-1: delete element inet exitnode-filter src4 { "to-1abc-1" . 10.26.189.0 }',
    'nft gw-1-1: delete element inet exitnode-filter src6 { "to-1abc-1" . 2a02:1802:5e:1abd:: }',
    'wg net-1abc-1: WireGuard configuration of wg-1abc-1',
  ]);
});

test('against the previous pass (shared objects) the plan is the one a kernel read (copies) gives', () => {
  const before = compile(view(), config);
  const v = view();
  v.networks[0]!.resources = v.networks[0]!.resources.filter((r) => r.id !== '1abd');
  v.networks[1]!.resources.push({ id: '1aff', node: 'n9' });
  const after = compile(v, config);
  const shared = holding(before);
  const copied = holding(structuredClone(before));
  assert.ok(
    shared.namespaces.get('gw-1-1')!.routes[5] === before.namespaces.find((n) => n.name === 'gw-1-1')!.routes[5],
  );
  const a = lines(diff(after, shared, opts));
  assert.deepEqual(a, lines(diff(after, copied, opts)));
  assert.ok(a.includes('ip gw-1-1: route del 2a02:1802:5e:1abd::/64 dev to-1abc-1 proto 77'));
  assert.ok(
    a.some((x) => x.startsWith('ip gw-1-1: route replace 2a02:1802:5e:1aff::/64 via')),
    a.join('\n'),
  );
});

test('a whole TN removed: its namespace, its links in the gateway and the root namespace, process, key and PID file', () => {
  const before = compile(view(), config);
  const v = view();
  v.networks = v.networks.filter((n) => n.id !== 'tn-b');
  const l = lines(diff(compile(v, config), holding(before), opts));
  assert.deepEqual(l.filter((x) => !x.startsWith('nft')).sort(), [
    'ip (host): link del br-1abe-1',
    'ip (host): link del vbr-1abe-1',
    'ip (host): netns del net-1abe-1',
    'ip gw-1-1: link del to-1abe-1',
    'kill (host): wireguard-go wg-1abe-1 (pid 1001)',
    'rm (host): PID file wg-1abe-1.pid',
    'rm (host): key file wg-1abe-1.key',
  ]);
  assert.equal(
    l.filter((x) => x.startsWith('nft')).length,
    3,
    'the three src element groups of to-1abe-1 (src6, src4, src4h)',
  );
});

test('a rule changed by hand: the table is rebuilt in one transaction; an element missing: one add', () => {
  const d = compile(view(), config);
  const a = holding(d);
  const gw = a.namespaces.get('gw-1-1')!;
  gw.nft[1]!.ruleHashes[0] = '';
  gw.nft[0]!.sets = {};
  const nft = diff(d, a, opts).steps.filter((s) => s.tool === 'nft');
  assert.equal(nft.length, 1, 'one nft -f for the namespace');
  const text = (nft[0] as { lines: string[] }).lines;
  assert.deepEqual(text.slice(0, 3), [
    'table inet exitnode-filter',
    'delete table inet exitnode-filter',
    'table inet exitnode-filter {',
  ]);
  assert.ok(!text.some((x) => x.includes('exitnode-nat')), 'the intact table is left alone');
});

test('drift: a deleted route, an address gone, a link down, a wrong WireGuard peer', () => {
  const d = compile(view(), config);
  const a = holding(d);
  const gw = a.namespaces.get('gw-1-1')!;
  gw.routes = gw.routes.filter((r) => r.dst !== '10.26.189.0/24');
  const ep = a.namespaces.get('net-1abc-1')!;
  ep.addrs = ep.addrs.filter((x) => x.addr !== '10.255.26.188/16');
  ep.links.find((l) => l.name === 'veth-1abc-1')!.up = false;
  const w = a.wireguard.get('wg-1abc-1')!;
  w.peers = [{ ...w.peers[0]!, allowedIps: w.peers[0]!.allowedIps.slice(0, -1) }, ...w.peers.slice(1)];
  const objects = diff(d, a, opts).steps.flatMap((s) => s.objects);
  assert.deepEqual(objects, [
    { kind: 'route', ns: 'gw-1-1', dst: '10.26.189.0/24', dev: 'to-1abc-1' },
    { kind: 'link', ns: 'net-1abc-1', name: 'veth-1abc-1' },
    { kind: 'addr', ns: 'net-1abc-1', dev: 'wg-1abc-1', addr: '10.255.26.188/16' },
    { kind: 'wg-conf', ns: 'net-1abc-1', name: 'wg-1abc-1' },
  ]);
  assert.deepEqual(objects.map(objectText), [
    'route 10.26.189.0/24 in gw-1-1',
    'link veth-1abc-1 in net-1abc-1',
    'address 10.255.26.188/16 on wg-1abc-1 in net-1abc-1',
    'WireGuard configuration of wg-1abc-1',
  ]);
  // Which slot or NR each belongs to: the route to the gateway (its namespace), the rest to NR 1abc.
  assert.deepEqual(
    objects.map((o) => ownersOf(o, '')),
    [
      [{ kind: 'slot', slot: 1, allocation: 1 }],
      [
        { kind: 'nr', nr: '1abc', allocation: 1 },
        { kind: 'nr', nr: '1abc', allocation: 1 },
      ],
      [
        { kind: 'nr', nr: '1abc', allocation: 1 },
        { kind: 'nr', nr: '1abc', allocation: 1 },
      ],
      [
        { kind: 'nr', nr: '1abc', allocation: 1 },
        { kind: 'nr', nr: '1abc', allocation: 1 },
      ],
    ],
  );
  assert.ok(!concerns(objects[0]!, { kind: 'nr', nr: '1abc', allocation: 1 }, ''));
  assert.ok(!concerns(objects[1]!, { kind: 'slot', slot: 1, allocation: 1 }, ''));
  // A namespace of another prefix is not this node's.
  assert.deepEqual(ownersOf({ kind: 'netns', name: 'gw-1-1' }, 'n1-'), []);
  assert.deepEqual(ownersOf({ kind: 'link', ns: 'n1-gw-1-1', name: 'to-1abc-1' }, 'n1-'), [
    { kind: 'slot', slot: 1, allocation: 1 },
    { kind: 'nr', nr: '1abc', allocation: 1 },
  ]);
});

test('a WireGuard interface left in the public namespace by an interrupted pass is moved, not restarted', () => {
  const d = compile(view(), config);
  const a = holding(d);
  const ep = a.namespaces.get('net-1abc-1')!;
  ep.links = ep.links.filter((l) => l.name !== 'wg-1abc-1');
  ep.addrs = ep.addrs.filter((x) => x.dev !== 'wg-1abc-1');
  ep.routes = ep.routes.filter((x) => x.dev !== 'wg-1abc-1');
  a.namespaces.get('')!.links.push({ name: 'wg-1abc-1', kind: 'tun', up: false, addrgenNone: false });
  const p = diff(d, a, opts);
  assert.ok(!p.steps.some((s) => s.tool === 'wg-start'));
  assert.ok(lines(p).includes('ip (host): link set wg-1abc-1 netns net-1abc-1'));
  assert.ok(!lines(p).some((x) => x.includes('link del wg-1abc-1')), 'a wg link about to move is not swept');
});

test('an unreadable namespace is left alone, with every link into it; the rest of the plan goes ahead', () => {
  const d = compile(view(), config);
  const a = holding(d);
  // net-1abe-1 could not be read; the gateway lost a route of the other TN.
  a.namespaces.delete('net-1abe-1');
  a.unreadable = new Map([['net-1abe-1', 'nsenter: cannot open /run/netns/net-1abe-1']]);
  a.namespaces.get('gw-1-1')!.routes = a.namespaces.get('gw-1-1')!.routes.filter((r) => r.dst !== '10.26.189.0/24');
  const l = lines(diff(d, a, opts));
  assert.deepEqual(l, ['ip gw-1-1: route replace 10.26.189.0/24 via 10.255.26.188 dev to-1abc-1 onlink proto 77']);
  // Not stale either: an unreadable owned namespace that the view no longer wants is not deleted blind.
  const v = view();
  v.networks = v.networks.filter((n) => n.id !== 'tn-b');
  const l2 = lines(diff(compile(v, config), a, opts));
  assert.ok(!l2.some((x) => x.includes('netns del net-1abe-1')));
});

// ---- stage 2: keepalived's objects, links kept down, keepalived itself ----------------------

const VRRP = {
  ns: 'gw-1-1',
  allocation: 1,
  slot: 1,
  vrid: 1,
  priority: 250,
  config: 'vrrp_instance x {}\n',
  hash: 'h1',
};

/** The two-TN desired state as a candidate: GWPubLL, GWPubIP6, GWPubIP4 and the IPv4 default route are keepalived's. */
function asCandidate(d: DesiredState): DesiredState {
  const gw = d.namespaces.find((n) => n.name === 'gw-1-1')!;
  const up = gw.addrs.filter((x) => x.dev === 'pub-1-1').map((x) => x.addr);
  return {
    ...d,
    namespaces: d.namespaces.map((n) =>
      n !== gw
        ? n
        : {
            ...n,
            addrs: n.addrs.filter((x) => x.dev !== 'pub-1-1'),
            routes: n.routes.filter((r) => r.dst !== '0.0.0.0/0'),
            foreign: { addrs: up, routes: ['0.0.0.0/0'] },
          },
    ),
    vrrp: [VRRP],
  };
}

test("foreign: keepalived's addresses and routes on the uplink are neither added nor deleted", () => {
  const full = compile(view(), config);
  const d = asCandidate(full);
  const foreign = d.namespaces.find((n) => n.name === 'gw-1-1')!.foreign!;
  assert.equal(foreign.addrs.length, 3, 'GWPubLL, GWPubIP6, GWPubIP4');
  // The kernel as the master has it: every address and the IPv4 default route (here with our protocol, even).
  const master = holding(full);
  master.vrrp = new Map([['gw-1-1', { ns: 'gw-1-1', pid: 77, hash: 'h1' }]]);
  assert.deepEqual(lines(diff(d, master, opts)), [], 'nothing of the master is deleted');
  // The kernel as a backup has it: none of them; nothing is added either.
  const backup = holding(d);
  backup.vrrp = master.vrrp;
  assert.deepEqual(lines(diff(d, backup, opts)), []);
  // Without `foreign` the same kernel would lose them: the guard is what keeps them.
  const bare = { ...d, namespaces: d.namespaces.map((n) => ({ ...n, foreign: undefined })) };
  const l = lines(diff(bare, master, opts));
  assert.ok(l.includes('ip gw-1-1: addr del fe80::1000:0:0:1/64 dev pub-1-1'), l.join('\n'));
  assert.ok(l.some((x) => x.startsWith('ip gw-1-1: route del 0.0.0.0/0')));
});

test('keepalived: started when not running, reloaded on a new hash, stopped before its namespace goes, left alone unread', () => {
  const d = asCandidate(compile(view(), config));
  const have = holding(d);
  have.vrrp = new Map();
  let p = diff(d, have, opts);
  assert.deepEqual(lines(p), ['vrrp-start gw-1-1: keepalived in gw-1-1']);
  assert.equal(p.steps[0]!.phase, Phase.VRRP);
  have.vrrp = new Map([['gw-1-1', { ns: 'gw-1-1', hash: 'h0' }]]);
  assert.deepEqual(
    lines(diff(d, have, opts)),
    ['vrrp-start gw-1-1: keepalived in gw-1-1'],
    'a directory without a process',
  );
  have.vrrp = new Map([['gw-1-1', { ns: 'gw-1-1', pid: 77, hash: 'h0' }]]);
  p = diff(d, have, opts);
  assert.deepEqual(lines(p), ['vrrp-reload gw-1-1: keepalived in gw-1-1 (pid 77), reload']);
  have.vrrp = new Map([['gw-1-1', { ns: 'gw-1-1', pid: 77, hash: 'h1' }]]);
  assert.deepEqual(lines(diff(d, have, opts)), []);
  delete have.vrrp;
  assert.deepEqual(lines(diff({ ...d, vrrp: [] }, have, opts)), [], 'not read: left alone');
  // The slot goes: keepalived stops before the namespace is deleted, and before the links go.
  have.vrrp = new Map([['gw-1-1', { ns: 'gw-1-1', pid: 77, hash: 'h1' }]]);
  const none = compile({ ...view(), slots: [], networks: [] }, config);
  p = diff(none, have, opts);
  const stop = p.steps.findIndex((s) => s.tool === 'vrrp-stop');
  const del = p.steps.findIndex((s) => s.objects.some((o) => o.kind === 'netns' && o.name === 'gw-1-1'));
  assert.ok(stop >= 0 && stop < del, lines(p).join('\n'));
  assert.equal(p.steps[stop]!.phase, Phase.VRRP_STOP);
  assert.deepEqual(ownersOf(p.steps[stop]!.objects[0]!, ''), [{ kind: 'slot', slot: 1, allocation: 1 }]);
});

test('a link kept down: taken down (its IPv6 addresses put back in the same batch), no route through it, then nothing to do', () => {
  const d = compile(view(), config);
  const wgNs = d.wireguard[0]!.ns;
  const wg = d.wireguard[0]!.name;
  const downed: DesiredState = {
    ...d,
    namespaces: d.namespaces.map((n) =>
      n.name === wgNs ? { ...n, links: n.links.map((l) => (l.name === wg ? { ...l, down: true } : l)) } : n,
    ),
  };
  const l = lines(diff(downed, holding(d), opts)).filter((x) => x.includes(wg));
  assert.equal(l[0], `ip ${wgNs}: link set ${wg} down`);
  assert.ok(
    l.some((x) => x.startsWith(`ip ${wgNs}: addr replace fe80:`)),
    'its IPv6 link-local again',
  );
  assert.ok(!l.some((x) => x.includes('route')), 'routes through it neither added nor deleted');
  assert.deepEqual(lines(diff(downed, holding(downed), opts)), []);
  // Wanted up again: up, and its routes come back.
  const back = lines(diff(d, holding(downed), opts));
  assert.equal(back[0], `ip ${wgNs}: link set ${wg} up`);
  assert.ok(back.length > 1 && back.slice(1).every((x) => x.includes(`route replace`)), back.join('\n'));
});
