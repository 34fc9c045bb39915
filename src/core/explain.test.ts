import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExitnodeError } from './errors.js';
import { explain } from './explain.js';
import { allocation } from './plan.js';

const a = allocation('2a02:1802:5e::/48', 1);

describe('explain', () => {
  const cases: { input: string; kind: string; slot?: number; nr?: string; role: RegExp }[] = [
    { input: '2a02:1802:5e:1abc::42', kind: 'nr', slot: 1, nr: '1abc', role: /workload on br-1abc-1/ },
    { input: '2a02:1802:5e:1abc::1', kind: 'nr', slot: 1, nr: '1abc', role: /NRLocalIP6 of NR 1abc/ },
    { input: '2a02:1802:5e:1abc::/64', kind: 'nr', slot: 1, nr: '1abc', role: /the \/64 of NR 1abc/ },
    { input: '2a02:1802:5e:1abc:8000::/65', kind: 'nr', slot: 1, nr: '1abc', role: /in NR 1abc/ },
    { input: '2a02:1802:5e:1000::/52', kind: 'slot', slot: 1, role: /NR ids 1000-1fff of slot 1 \(4096/ },
    { input: '2a02:1802:5e:ff00::/56', kind: 'slot', slot: 15, role: /reserved ids ff00-ffff/ },
    { input: '2a02:1802:5e:f000::/52', kind: 'slot', slot: 15, role: /3840 possible NRs.*ff00-ffff are reserved/ },
    { input: '2a02:1802:5e::/48', kind: 'slots', role: /whole allocation/ },
    { input: '2a02:1802:5e::/50', kind: 'slots', role: /slots 1, 2, 3 and PrefixZero/ },
    { input: '2a02:1802:5e::1', kind: 'prefixzero', role: /upstream router's address/ },
    { input: '2a02:1802:5e:0:3000::1', kind: 'prefixzero', slot: 3, role: /GWPubIP6 of slot 3.*pub-3-1.*gw-3-1/ },
    { input: '2a02:1802:5e:0:3000::2', kind: 'prefixzero', role: /PrefixZero segment/ },
    { input: '2a02:1802:5e:0abc::1', kind: 'prefixzero', role: /0abc is PrefixZero/ },
    { input: '2a02:1802:5e:ff12::1', kind: 'reserved', slot: 15, role: /reserved/ },
    { input: 'fe80::1000:0:0:1', kind: 'link-local', slot: 1, role: /GWPubLL of slot 1/ },
    { input: 'fe80::1:1abc', kind: 'link-local', nr: '1abc', role: /GWtoEPLL/ },
    { input: 'fe80::1abc:1', kind: 'link-local', nr: '1abc', role: /EPPubLL/ },
    { input: 'fe80::1abc', kind: 'link-local', nr: '1abc', role: /WGLL/ },
    { input: 'fe80::1', kind: 'link-local', role: /upstream router/ },
    { input: '10.26.188.7', kind: 'nr', nr: '1abc', role: /IPv4 \/24/ },
    { input: '10.26.188.1', kind: 'nr', nr: '1abc', role: /NRLocalIP4/ },
    { input: '10.255.26.188', kind: 'nr', nr: '1abc', role: /routing address/ },
    { input: '10.1.0.1', kind: 'link-local', role: /GWtoEPIP4/ },
  ];
  for (const c of cases) {
    it(`${c.input}: ${c.kind}`, () => {
      const e = explain(a, c.input);
      assert.equal(e.kind, c.kind);
      if (c.slot !== undefined) assert.equal(e.slot, c.slot);
      if (c.nr !== undefined) assert.equal(e.nr, c.nr);
      assert.match(e.role, c.role);
    });
  }

  it('gives the hop-by-hop path for an NR behind a known ExitPoint', () => {
    const e = explain(a, '2a02:1802:5e:1abd::9', { exit: 0x1abc, iface: 'swp1' });
    assert.deepEqual(
      e.path.map((h) => h.route),
      [
        '2a02:1802:5e:1000::/52 via fe80::1000:0:0:1 dev swp1',
        '2a02:1802:5e:1abd::/64 via fe80::1abc:1 dev to-1abc-1',
        '2a02:1802:5e:1abd::/64 dev wg-1abc-1',
        '2a02:1802:5e:1abd::/64 dev veth-1abd-1 (connected)',
      ],
    );
    assert.match(e.path[2]!.note, /endpoint <node of 1abd>:6845/);
    assert.deepEqual(
      e.carriers.map((c) => `${c.namespace} ${c.interface}`),
      ['gw-1-1 to-1abc-1', 'net-1abc-1 wg-1abc-1', 'net-1abd-1 veth-1abd-1', '<node root> br-1abd-1'],
    );
  });

  it('says what the plan cannot know without the ExitPoint', () => {
    const e = explain(a, '2a02:1802:5e:1abd::9');
    assert.equal(e.path.length, 4);
    assert.match(e.path[1]!.route, /via fe80::<exit>:1 dev to-<exit>-1/);
    assert.ok(e.unknown.some((u) => /which TN/.test(u)));
  });

  it('the ExitPoint itself ends at its own veth', () => {
    const e = explain(a, '2a02:1802:5e:1abc::9', { exit: 0x1abc });
    assert.equal(e.path.length, 3);
    assert.match(e.path[2]!.route, /dev veth-1abc-1/);
  });

  const refused: [string, string][] = [
    ['2a02:1802:5f::1', 'ADDRESS_OUTSIDE_ALLOCATION'],
    ['2a02:1802:5e::/47', 'ADDRESS_OUTSIDE_ALLOCATION'],
    ['fe80::dead:beef:1', 'ADDRESS_OUTSIDE_ALLOCATION'],
    ['192.0.2.1', 'ADDRESS_OUTSIDE_ALLOCATION'],
    ['not-an-address', 'ADDRESS_SYNTAX'],
    ['2a02:1802:5e::1/64', 'PREFIX_HOST_BITS'],
  ];
  for (const [input, code] of refused) {
    it(`refuses ${input} (${code})`, () =>
      assert.throws(
        () => explain(a, input),
        (e: unknown) => e instanceof ExitnodeError && e.code === code && e.message.includes(input.split('/')[0]!),
      ));
  }
  it("refuses an exit id outside the address's slot", () => {
    assert.throws(() => explain(a, '2a02:1802:5e:1abd::9', { exit: 0x2abc }), /outside slot 1/);
  });
});
