// Golden tests: every test/fixtures/views/NAME.json ({config, view}) compiles to the sorted text
// in NAME.desired.txt beside it (UPDATE_GOLDEN=1 rewrites them; review the diff), plus cases
// checked against DESIGN.md section 3 line by line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compile, Compiler } from './index.js';
import { desiredText } from './text.js';
import { parseNodeConfig } from '../agent/config.js';
import { parseNodeView } from '../core/view.js';
import type { CompileRuntime } from './config.js';

const dir = new URL('../../test/fixtures/views/', import.meta.url).pathname;

for (const f of readdirSync(dir)
  .filter((x) => x.endsWith('.json'))
  .sort()) {
  test(`golden: ${f}`, () => {
    const { config, view, runtime } = JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
      config: unknown;
      view: unknown;
      runtime?: { masters?: string[]; withoutKey?: string[] };
    };
    const text = desiredText(compile(parseNodeView(view), parseNodeConfig(config), runtimeOf(runtime)));
    const golden = join(dir, f.replace(/\.json$/, '.desired.txt'));
    if (process.env.UPDATE_GOLDEN) writeFileSync(golden, text);
    assert.equal(text, readFileSync(golden, 'utf8'));
  });
}

/** A fixture's "runtime": the slots this node is VRRP master of, the ExitPoint links without a key. */
function runtimeOf(r: { masters?: string[]; withoutKey?: string[] } | undefined): CompileRuntime {
  return { masters: new Set(r?.masters ?? []), withoutKey: new Set(r?.withoutKey ?? []) };
}

function load(name: string): ReturnType<typeof compile> {
  const { config, view } = JSON.parse(readFileSync(join(dir, name), 'utf8')) as { config: unknown; view: unknown };
  return compile(parseNodeView(view), parseNodeConfig(config));
}

test('gateway of DESIGN.md section 3: one route pair per NR of the TN, via the ExitPoint', () => {
  const text = desiredText(load('two-tns.json'));
  for (const line of [
    'gw-1-1 route 2a02:1802:5e:1abc::/64 via fe80::1abc:1 dev to-1abc-1',
    'gw-1-1 route 2a02:1802:5e:1abd::/64 via fe80::1abc:1 dev to-1abc-1',
    'gw-1-1 route 10.26.189.0/24 via 10.255.26.188 dev to-1abc-1 onlink',
    'gw-1-1 route ::/0 via fe80::1 dev pub-1-1',
    'gw-1-1 route 0.0.0.0/0 via 185.69.166.1 dev pub-1-1',
    'gw-1-1 addr fe80::1000:0:0:1/64 dev pub-1-1',
    'gw-1-1 addr 2a02:1802:5e:0:1000::1/64 dev pub-1-1',
    'gw-1-1 addr 185.69.166.123/24 dev pub-1-1',
    'gw-1-1 addr fe80::1:1abc/64 dev to-1abc-1 nodad',
    'gw-1-1 sysctl net.ipv6.conf.pub-1-1.ndisc_notify=1',
    'gw-1-1 nft element inet exitnode-filter src4 "to-1abc-1" . 10.26.189.0/24',
    'gw-1-1 nft element inet exitnode-filter src6 "to-1abe-1" . 2a02:1802:5e:1abe::/64',
    'net-1abc-1 route ::/0 via fe80::1:1abc dev pub-1abc-1',
    'net-1abc-1 route 0.0.0.0/0 via 10.1.0.1 dev pub-1abc-1 onlink',
    'net-1abc-1 route 2a02:1802:5e:1abd::/64 dev wg-1abc-1',
    'net-1abc-1 addr 10.255.26.188/16 dev wg-1abc-1',
    'net-1abc-1 addr 2a02:1802:5e:1abc::1/64 dev veth-1abc-1 nodad',
    '(host) link vbr-1abc-1 veth (veth peer veth-1abc-1 in net-1abc-1) master br-1abc-1',
    'gw-1-1 link pub-1-1 macvlan (macvlan on eth1 in (host))',
  ])
    assert.ok(text.includes(`${line}\n`), `missing: ${line}`);
  // The uplink keeps DAD; a NR in another slot's id range never appears in this gateway.
  assert.ok(!/addr fe80::1000:0:0:1\/64 dev pub-1-1 nodad/.test(text));
  assert.ok(
    text.includes('gw-1-1 route 2a02:1802:5e:1235::/64 via fe80::1abc:1 dev to-1abc-1\n'),
    'an NR on a node without a public address is routed too',
  );
});

test('non-exit NR: defaults into WireGuard with its own source, exit peer carries ::/0 and 0.0.0.0/0, keepalive without public address', () => {
  const text = desiredText(load('nr-only-sim.json'));
  assert.ok(text.includes('n2-net-1abd-401 route ::/0 dev wg-1abd-401 src 2001:db8:5e:1abd::1\n'));
  assert.ok(text.includes('n2-net-1abd-401 route 0.0.0.0/0 dev wg-1abd-401 src 10.26.189.1\n'));
  assert.ok(
    text.includes(
      'wg wg-1abd-401 peer zeneXLwfm/zNJ/4VDuaCJHYMH4YoG5UbPd7J1fpnsTs= allowed 2001:db8:5e:1abc::/64,10.26.188.0/24,10.255.26.188/32,fe80::1abc/128,::/0,0.0.0.0/0 endpoint 192.0.2.1:6844 keepalive 25\n',
    ),
  );
  assert.ok(!text.includes('gw-'), 'no gateway on a node without a slot');
  assert.ok(!text.includes('nft'), 'no nft outside gateways');
});

test('a TN compiled before is handed over as the same objects; the result is the one a fresh compile gives', () => {
  const { config, view } = JSON.parse(readFileSync(join(dir, 'two-tns.json'), 'utf8')) as {
    config: unknown;
    view: unknown;
  };
  const c = parseNodeConfig(config);
  const v = (): ReturnType<typeof parseNodeView> => parseNodeView(structuredClone(view));
  const fresh = desiredText(compile(v(), c));
  const compiler = new Compiler();
  const first = compiler.compile(v(), c);
  // One NR less in the first TN: the second TN's routes and elements are reused, the first's rebuilt.
  const changed = v();
  changed.networks[0]!.resources = changed.networks[0]!.resources.filter((r) => r.id !== '1abd');
  const second = compiler.compile(changed, c);
  const gw1 = first.namespaces.find((n) => n.name === 'gw-1-1')!;
  const gw2 = second.namespaces.find((n) => n.name === 'gw-1-1')!;
  const ofTn = (routes: typeof gw1.routes, dev: string): typeof gw1.routes => routes.filter((r) => r.dev === dev);
  assert.ok(
    ofTn(gw2.routes, 'to-1abe-1').every((r, i) => r === ofTn(gw1.routes, 'to-1abe-1')[i]),
    'unchanged TN: identical route objects',
  );
  assert.ok(!ofTn(gw2.routes, 'to-1abc-1').some((r) => gw1.routes.includes(r)), 'changed TN: new route objects');
  assert.ok(!desiredText(second).includes('1abd::/64 via'), 'the removed NR has no gateway route');
  // The history is the compiler's own: another compiler (or compile alone) starts without it.
  const other = new Compiler().compile(changed, c).namespaces.find((n) => n.name === 'gw-1-1')!;
  assert.ok(
    !ofTn(other.routes, 'to-1abe-1').some((r) => gw1.routes.includes(r)),
    'no history shared between compilers',
  );
  // Back to the first view: what a compile without any history gives, line for line.
  assert.equal(desiredText(compiler.compile(v(), c)), fresh);
});

test('stage 2 (vrrp slot): keepalived owns the slot addresses; the ExitPoint floats, is down off-master, keyless out', () => {
  const backup = desiredText(loadWith('vrrp-backup.json'));
  for (const line of [
    'n2-gw-1-401 link pub-1-401 veth (veth peer pz-1-401 in seg) kernel-ll',
    'n2-gw-1-401 foreign addr fe80::1000:0:0:1/64',
    'n2-gw-1-401 foreign addr 2001:db8:5e:0:1000::1/64',
    'n2-gw-1-401 foreign addr 198.51.100.11/24',
    'n2-gw-1-401 foreign route 0.0.0.0/0',
    'n2-gw-1-401 route ::/0 via fe80::1 dev pub-1-401',
    // built on the second candidate although the exit NR's node is n1
    'n2-net-1abc-401 link wg-1abc-401 wireguard (wireguard created in n2-gw-1-401) down',
    'n2-gw-1-401 link to-1abc-401 veth (veth peer pub-1abc-401 in n2-net-1abc-401)',
    'wg wg-1abc-401 peer D+492J9+vzlqyM/VtMRueXVpAjQtOvhx/X2icjkc3gQ= allowed 2001:db8:5e:1abe::/64,10.26.190.0/24,10.255.26.190/32,fe80::1abe/128 endpoint 203.0.113.9:40000 keepalive 25',
    'vrrp n2-gw-1-401 slot 401/1 vrid 136 priority 200',
  ])
    assert.ok(backup.includes(`${line}\n`), `missing: ${line}`);
  assert.ok(!/addr \S+ dev pub-1-401/.test(backup), 'no slot address on the uplink: keepalived adds them');
  assert.ok(!backup.includes('route 0.0.0.0/0 via 198.51.100.1'), 'the IPv4 default route is keepalived’s');
  assert.ok(!/ route \S+ dev wg-1abc-401\n/.test(backup), 'a down link holds no route');
  assert.ok(!backup.includes('wg-1abf-401'), 'an ExitPoint without its shared key is left out');
  const master = desiredText(loadWith('vrrp-master.json'));
  assert.ok(master.includes('n1-net-1abc-401 link wg-1abc-401 wireguard (wireguard created in n1-gw-1-401)\n'));
  assert.ok(master.includes('n1-net-1abc-401 route 2001:db8:5e:1abd::/64 dev wg-1abc-401\n'), 'master: routes');
  assert.ok(master.includes('n1-net-1abf-401 link wg-1abf-401 wireguard (wireguard created in n1-gw-1-401)\n'));
  assert.ok(master.includes('vrrp n1-gw-1-401 slot 401/1 vrid 136 priority 250\n'));
  assert.ok(!master.includes('203.0.113.9:40000'), 'a master ExitPoint lets its NAT peers roam');
});

function loadWith(name: string): ReturnType<typeof compile> {
  const { config, view, runtime } = JSON.parse(readFileSync(join(dir, name), 'utf8')) as {
    config: unknown;
    view: unknown;
    runtime?: { masters?: string[]; withoutKey?: string[] };
  };
  return compile(parseNodeView(view), parseNodeConfig(config), runtimeOf(runtime));
}
