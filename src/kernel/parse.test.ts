// The readers' parsers on output captured from iproute2 6.1, nftables 1.0.6 and wireguard-tools
// 1.0.20210914 on this machine kind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpBatch, parseNft, parseWgDump } from './observe.js';
import { batchFailures } from './apply.js';
import { failureText, type ObjectRef } from '../reconcile/objects.js';
import { splitJson } from './exec.js';
import { parseUapiGet } from './wg-uapi.js';
import { parseVrrpState } from './vrrp.js';

const IP = `[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"inet6_addr_gen_mode":"eui64"},{"ifindex":3,"link":"pub-1abc-1","ifname":"to-1abc-1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"linkinfo":{"info_kind":"veth"},"inet6_addr_gen_mode":"none"},{"ifindex":4,"ifname":"br-1abc-1","flags":["BROADCAST"],"master":"x","linkinfo":{"info_kind":"bridge","info_data":{"stp_state":0}},"inet6_addr_gen_mode":"none"}]
[{"ifindex":3,"ifname":"to-1abc-1","addr_info":[{"family":"inet","local":"10.1.0.1","prefixlen":32},{"family":"inet6","local":"fe80::1:1abc","prefixlen":64}]}]
[{"dst":"2001:db8:5e:1abc::/64","gateway":"fe80::1abc:1","dev":"to-1abc-1","metric":1024,"flags":[],"pref":"medium","table":"main"},{"dst":"default","gateway":"fe80::1","dev":"pub-1-1","flags":[]},{"dst":"2001:db8::/64","dev":"x","table":"local"}]
[{"dst":"10.26.188.0/24","gateway":"10.255.26.188","dev":"to-1abc-1","scope":"link","flags":["onlink"]},{"dst":"10.0.0.1","dev":"to-1abc-1","prefsrc":"10.1.0.1","flags":[]}]
[{"family":"inet","interface":"all","forwarding":true,"rp_filter":"off"},{"family":"inet6","interface":"all","forwarding":false}]
`;

test('ip -json -batch: links, addresses, our routes (main table only), forwarding', () => {
  const ns = parseIpBatch('gw-1-1', IP);
  assert.deepEqual(
    ns.links.map((l) => [l.name, l.kind, l.up, l.addrgenNone, l.master ?? '']),
    [
      ['lo', '', true, false, ''],
      ['to-1abc-1', 'veth', true, true, ''],
      ['br-1abc-1', 'bridge', false, true, 'x'],
    ],
  );
  assert.deepEqual(ns.addrs, [
    { dev: 'to-1abc-1', addr: '10.1.0.1/32' },
    { dev: 'to-1abc-1', addr: 'fe80::1:1abc/64' },
  ]);
  assert.deepEqual(ns.routes, [
    { dst: '2001:db8:5e:1abc::/64', dev: 'to-1abc-1', onlink: false, via: 'fe80::1abc:1' },
    { dst: '::/0', dev: 'pub-1-1', onlink: false, via: 'fe80::1' },
    { dst: '10.26.188.0/24', dev: 'to-1abc-1', onlink: true, via: '10.255.26.188' },
    { dst: '10.0.0.1/32', dev: 'to-1abc-1', onlink: false, src: '10.1.0.1' },
  ]);
  assert.deepEqual(ns.sysctls, { 'net.ipv4.conf.all.forwarding': '1', 'net.ipv6.conf.all.forwarding': '0' });
});

test('ip -json -batch with a missing list is an error, not an empty namespace', () => {
  assert.throws(() => parseIpBatch('x', IP.split('\n').slice(0, 3).join('\n')), /returned 3 lists, expected 5/);
});

test('splitJson keeps brackets inside strings', () => {
  assert.deepEqual(splitJson('[{"a":"]["}]\n[]\n{"b":"\\"}"}'), [[{ a: '][' }], [], { b: '"}' }]);
});

test("nft -j list ruleset: our tables only, elements as prefixes of their set's length, rule hashes", () => {
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'inet', name: 'exitnode-filter', handle: 1 } },
      { table: { family: 'inet', name: 'operator', handle: 2 } },
      // 10.26.188.7 was added by hand: host bits under the mask, kept as written so that the plan deletes it.
      {
        set: {
          family: 'inet',
          name: 'src4',
          table: 'exitnode-filter',
          type: ['ifname', 'ipv4_addr'],
          elem: [{ concat: ['to-1abc-1', '10.26.188.0'] }, { concat: ['to-1abc-1', '10.26.188.7'] }],
        },
      },
      {
        set: {
          family: 'inet',
          name: 'src4h',
          table: 'exitnode-filter',
          type: ['ifname', 'ipv4_addr'],
          elem: [{ concat: ['to-1abc-1', '10.255.26.188'] }],
        },
      },
      {
        set: {
          family: 'inet',
          name: 'src6',
          table: 'exitnode-filter',
          elem: [{ concat: ['to-1abc-1', '2001:DB8:5e:1abc::'] }],
        },
      },
      // A set of the former interval layout (its table's rules no longer match: it is rebuilt).
      {
        set: {
          family: 'inet',
          name: 'old',
          table: 'exitnode-filter',
          flags: ['interval'],
          elem: [{ concat: ['to-1abc-1', { prefix: { addr: '10.26.188.0', len: 24 } }] }],
        },
      },
      { set: { family: 'inet', name: 'x', table: 'operator', elem: ['1.2.3.4'] } },
      {
        rule: {
          family: 'inet',
          table: 'exitnode-filter',
          chain: 'forward',
          handle: 4,
          comment: 'exitnode:20059b81b2a42379',
          expr: [],
        },
      },
      { rule: { family: 'inet', table: 'exitnode-filter', chain: 'forward', handle: 5, expr: [] } },
    ],
  });
  assert.deepEqual(parseNft(json), [
    {
      family: 'inet',
      name: 'exitnode-filter',
      ruleHashes: ['20059b81b2a42379', ''],
      sets: {
        src4: [
          { ifname: 'to-1abc-1', prefix: '10.26.188.0/24' },
          { ifname: 'to-1abc-1', prefix: '10.26.188.7/24' },
        ],
        src4h: [{ ifname: 'to-1abc-1', prefix: '10.255.26.188/32' }],
        src6: [{ ifname: 'to-1abc-1', prefix: '2001:db8:5e:1abc::/64' }],
        old: [{ ifname: 'to-1abc-1', prefix: '10.26.188.0/24' }],
      },
    },
  ]);
});

test('wg show all dump', () => {
  const dump = [
    'wg-1abd-1\tcPrivCPrivCPrivCPrivCPrivCPrivCPrivCPrivCPrM=\tpub=\t6845\toff',
    'wg-1abd-1\tPEERKEY=\t(none)\t192.0.2.1:6844\t2001:db8:5e:1abc::/64,10.26.188.0/24,0.0.0.0/0,::/0\t1700000000\t10\t20\t25',
    'wg-1abd-1\tPEER2=\t(none)\t(none)\t(none)\t0\t0\t0\toff',
    'wg-other\tk\tp\t1\toff',
  ].join('\n');
  const m = parseWgDump(dump);
  const w = m.get('wg-1abd-1')!;
  assert.equal(w.listenPort, 6845);
  assert.deepEqual(w.peers, [
    {
      publicKey: 'PEERKEY=',
      endpoint: '192.0.2.1:6844',
      allowedIps: ['2001:db8:5e:1abc::/64', '10.26.188.0/24', '0.0.0.0/0', '::/0'],
      keepalive: 25,
    },
    { publicKey: 'PEER2=', allowedIps: [] },
  ]);
  assert.ok(m.has('wg-other'));
});

test('ip -force -batch failures are reported per object', () => {
  const err =
    'Error: Nexthop has invalid gateway.\nCommand failed -:2\nCannot find device "to-1abc-1"\nCommand failed -:3\n';
  const X: ObjectRef = { kind: 'route', ns: 'gw', dst: 'X', dev: 'to-1abc-1' };
  const Y: ObjectRef = { kind: 'route', ns: 'gw', dst: 'Y', dev: 'to-1abc-1' };
  const f = batchFailures(err, [{ kind: 'netns', name: 'a' }, X, Y], ['l1', 'route replace X', 'route replace Y']);
  assert.deepEqual(f, [
    { objects: [X], reason: 'Error: Nexthop has invalid gateway. (ip route replace X)' },
    { objects: [Y], reason: 'Cannot find device "to-1abc-1" (ip route replace Y)' },
  ]);
  assert.deepEqual(f.map(failureText), [
    'route X in gw: Error: Nexthop has invalid gateway. (ip route replace X)',
    'route Y in gw: Cannot find device "to-1abc-1" (ip route replace Y)',
  ]);
});

test('parseUapiGet: the peers of a wireguard-go `get=1` answer, keys in base64', () => {
  const k1 = Buffer.alloc(32, 1);
  const k2 = Buffer.alloc(32, 2);
  const text = [
    `private_key=${Buffer.alloc(32, 9).toString('hex')}`,
    'listen_port=4096',
    `public_key=${k1.toString('hex')}`,
    'endpoint=203.0.113.7:6000',
    'persistent_keepalive_interval=25',
    'allowed_ip=10.16.1.0/24',
    `public_key=${k2.toString('hex')}`,
    'persistent_keepalive_interval=0',
    'errno=0',
    '',
    '',
  ].join('\n');
  assert.deepEqual(parseUapiGet(text), [
    { publicKey: k1.toString('base64'), endpoint: '203.0.113.7:6000', keepalive: 25 },
    { publicKey: k2.toString('base64'), keepalive: 0 },
  ]);
});

test("parseVrrpState: the notify reader's line, or undefined", () => {
  assert.deepEqual(parseVrrpState('MASTER 250 1796113149132\n'), {
    state: 'MASTER',
    priority: 250,
    since: 1796113149132,
  });
  assert.deepEqual(parseVrrpState('STOPPED 200 5'), { state: 'STOPPED', priority: 200, since: 5 });
  for (const bad of [undefined, '', 'STOP 250 1', 'MASTER 250', 'MASTER x 1'])
    assert.equal(parseVrrpState(bad), undefined);
});
