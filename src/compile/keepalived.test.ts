// keepalived's configuration (src/compile/keepalived.ts): golden files in
// test/fixtures/keepalived/ (UPDATE_GOLDEN=1 rewrites them; review the diff like code), the VRID
// of the stage-2 contract, and what changes the hash (a reload).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocation } from '../core/plan.js';
import { parseVrrpState } from '../kernel/vrrp.js';
import {
  NOTIFY_SCRIPT,
  VRRP_FILES,
  keepalivedSpec,
  vrrpDir,
  vrrpRouterId,
  type KeepalivedInput,
} from './keepalived.js';

const dir = new URL('../../test/fixtures/keepalived/', import.meta.url).pathname;

const base: KeepalivedInput = {
  allocation: allocation('2a02:1802:5e::/48', 1),
  slot: 1,
  ns: 'gw-1-1',
  priority: 250,
  upstreamLL: 'fe80::1',
  ipv4: { address: '185.69.166.11', prefixLength: 24, gateway: '185.69.166.1' },
  stateDir: '/var/lib/exitnode',
};

const cases: [string, KeepalivedInput][] = [
  ['dual-stack.conf', base],
  [
    'ipv6-only.conf',
    {
      ...base,
      allocation: allocation('2001:db8:7a::/48', 97),
      slot: 15,
      ns: 'n2-gw-15-97',
      priority: 200,
      upstreamLL: 'fe80::5e:1',
      ipv4: undefined,
      stateDir: '/tmp/exitnode-state/',
      advertS: 1,
    },
  ],
];

for (const [file, input] of cases)
  test(`golden: keepalived ${file}`, () => {
    const spec = keepalivedSpec(input);
    if (process.env.UPDATE_GOLDEN) writeFileSync(join(dir, file), spec.config);
    assert.equal(spec.config, readFileSync(join(dir, file), 'utf8'));
  });

test('the VRID of the contract: ((A - 1) * 15 + E - 1) mod 255 + 1, unique for 17 allocations of one segment', () => {
  for (const [a, e, vrid] of [
    [1, 1, 1],
    [1, 15, 15],
    [2, 1, 16],
    [17, 15, 255],
    [18, 1, 1],
    [97, 1, 166],
  ] as const)
    assert.equal(vrrpRouterId(a, e), vrid, `allocation ${a} slot ${e}`);
  const seen = new Set<number>();
  for (let a = 1; a <= 17; a++) for (let e = 1; e <= 15; e++) seen.add(vrrpRouterId(a, e));
  assert.equal(seen.size, 255);
});

test('the spec: namespace, VRID, priority; a changed priority or interval is a new hash, the same input the same', () => {
  const s = keepalivedSpec(base);
  assert.deepEqual([s.ns, s.allocation, s.slot, s.vrid, s.priority], ['gw-1-1', 1, 1, 1, 250]);
  assert.match(s.hash, /^[0-9a-f]{16}$/);
  assert.equal(keepalivedSpec({ ...base }).hash, s.hash);
  assert.notEqual(keepalivedSpec({ ...base, priority: 200 }).hash, s.hash);
  assert.notEqual(keepalivedSpec({ ...base, advertS: 1 }).hash, s.hash);
  assert.match(s.config, /^ {2}advert_int 0\.3$/m);
  assert.equal(vrrpDir('/var/lib/exitnode/', 'gw-1-1'), '/var/lib/exitnode/vrrp/gw-1-1');
});

test('GWPubLL is the only advertised address; GWPubIP6, GWPubIP4 and the IPv4 default route go with it', () => {
  const c = keepalivedSpec(base).config;
  const block = (name: string): string => new RegExp(`  ${name} \\{\\n([^}]*)  \\}`).exec(c)?.[1] ?? '';
  assert.equal(block('virtual_ipaddress'), '    fe80::1000:0:0:1/64 dev pub-1-1\n');
  assert.equal(
    block('virtual_ipaddress_excluded'),
    '    2a02:1802:5e:0:1000::1/64 dev pub-1-1\n    185.69.166.11/24 dev pub-1-1\n',
  );
  assert.equal(block('virtual_routes'), '    0.0.0.0/0 via 185.69.166.1 dev pub-1-1\n');
  assert.doesNotMatch(c, /scope link/, 'keepalived 2.2.7 refuses a scope on IPv6');
  assert.doesNotMatch(c, /track_interface/, 'its own interface is tracked anyway');
  const v6 = keepalivedSpec({ ...base, ipv4: undefined }).config;
  assert.doesNotMatch(v6, /virtual_routes|185\.69/);
});

test("the notify reader writes states in order and skips keepalived's events (MASTER_RX_LOWER_PRI)", () => {
  // The real script under sh, fed what keepalived 2.2.7 writes to its FIFO (a plain file here).
  const dir = mkdtempSync(join(tmpdir(), 'exitnode-notify-'));
  try {
    const script = join(dir, 'notify.sh');
    writeFileSync(script, NOTIFY_SCRIPT, { mode: 0o700 });
    const feed = (lines: string[]): string | undefined => {
      writeFileSync(join(dir, 'fifo'), lines.map((l) => l + '\n').join(''));
      const r = spawnSync('sh', [script, join(dir, 'fifo')], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return parseVrrpState(readFileSync(join(dir, VRRP_FILES.state), 'utf8'))?.state;
    };
    assert.equal(feed(['INSTANCE "slot-1-1" BACKUP 200', 'INSTANCE "slot-1-1" MASTER 250']), 'MASTER');
    assert.equal(feed(['INSTANCE "slot-1-1" MASTER_RX_LOWER_PRI 250']), 'MASTER', 'an event is not a state');
    assert.equal(feed(['GROUP "g" FAULT', 'INSTANCE "slot-1-1" FAULT 250']), 'FAULT');
    assert.equal(feed(['INSTANCE "slot-1-1" STOP 250']), 'STOPPED');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
