import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { ExitnodeError } from './errors.js';
import { Ip4, Ip4Prefix, Ip6, Ip6Prefix, parseAddress, parsePrefix } from './ip.js';

describe('IPv6 text', () => {
  const canonical: [string, string][] = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs (RFC 5952 4.2.3)
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed (4.2.2)
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run wins (4.2.3)
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['fe80::1000:0:0:1', 'fe80::1000:0:0:1'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'], // IPv4-mapped keeps its dotted tail (RFC 5952 5)
    ['::ffff:c000:0201', '::ffff:192.0.2.1'],
    ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
    ['2a02:1802:5e:0:1000:0:0:1', '2a02:1802:5e:0:1000::1'],
  ];
  for (const [input, want] of canonical)
    it(`${input} → ${want}`, () => assert.equal(Ip6.parse(input).toString(), want));

  const bad = [
    '',
    ':',
    ':::',
    '1:2:3:4:5:6:7:8:9',
    '1::2::3',
    '12345::',
    'g::1',
    'fe80::1%eth0',
    '1:2:3:4:5:6:7::8:9',
    '::1.2.3',
    '::256.0.0.1',
    '1.2.3.4',
    ' ::1',
    '::1 ',
    '1:2:3:4:5:6:7:8::',
  ];
  for (const b of bad) {
    it(`refuses ${JSON.stringify(b)}`, () =>
      assert.throws(
        () => Ip6.parse(b),
        (e: unknown) => e instanceof ExitnodeError && e.message.includes(JSON.stringify(b)),
      ));
  }

  it('agrees with ipaddr.js on random addresses (RFC 5952 text)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 16, maxLength: 16 }),
        fc.boolean(),
        (bytes, sparse) => {
          const b = sparse ? bytes.map((x, i) => (i % 5 === 0 ? x : 0)) : bytes;
          const ref = ipaddr.fromByteArray(b) as ipaddr.IPv6;
          if (ref.isIPv4MappedAddress()) return; // ipaddr.js writes these in hex; we follow RFC 5952 section 5
          const ours = Ip6.parse(ref.toNormalizedString());
          assert.equal(ours.toString(), ref.toRFC5952String());
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('IPv4 text', () => {
  it('parses dotted quads', () =>
    assert.equal(Ip4.parse('10.255.26.188').value, ((10 << 24) | (255 << 16) | (26 << 8) | 188) >>> 0));
  for (const b of ['010.0.0.1', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.-4', '', '::1', '1.2.3.4 ']) {
    it(`refuses ${JSON.stringify(b)}`, () => assert.throws(() => Ip4.parse(b), ExitnodeError));
  }
});

describe('prefixes', () => {
  it('containment and subnets', () => {
    const p = Ip6Prefix.parse('2001:db8:5e::/48');
    assert.equal(p.subnet(52, 1).toString(), '2001:db8:5e:1000::/52');
    assert.equal(p.subnet(64, 0x1abc).toString(), '2001:db8:5e:1abc::/64');
    assert.ok(p.contains(Ip6.parse('2001:db8:5e:ffff::1')));
    assert.ok(!p.contains(Ip6.parse('2001:db8:5f::1')));
    assert.ok(p.contains(p.subnet(64, 5)));
    assert.ok(!p.subnet(64, 5).contains(p));
    assert.equal(p.last.toString(), '2001:db8:5e:ffff:ffff:ffff:ffff:ffff');
    assert.ok(Ip4Prefix.parse('10.0.0.0/8').contains(Ip4.parse('10.255.1.2')));
    assert.ok(!Ip4Prefix.parse('10.0.0.0/8').contains(Ip4.parse('11.0.0.0')));
    assert.ok(Ip4Prefix.parse('0.0.0.0/0').contains(Ip4.parse('255.255.255.255')));
    assert.ok(Ip6Prefix.parse('::/0').contains(Ip6.parse('ffff::')));
  });
  const bad: [string, string][] = [
    ['2001:db8::1/48', 'PREFIX_HOST_BITS'],
    ['2001:db8::/129', 'PREFIX_SYNTAX'],
    ['2001:db8::/048', 'PREFIX_SYNTAX'],
    ['2001:db8::/', 'PREFIX_SYNTAX'],
    ['2001:db8::', 'PREFIX_SYNTAX'],
    ['10.1.2.0/33', 'PREFIX_SYNTAX'],
    ['10.1.2.3/24', 'PREFIX_HOST_BITS'],
    ['x/8', 'PREFIX_SYNTAX'],
  ];
  for (const [text, code] of bad)
    it(`refuses ${text} (${code})`, () =>
      assert.throws(
        () => parsePrefix(text),
        (e: unknown) => e instanceof ExitnodeError && e.code === code,
      ));
  it('names the network when host bits are set', () =>
    assert.throws(() => parsePrefix('2001:db8::1/48'), /the network is 2001:db8::\/48/));
  it('parseAddress picks the family', () => {
    assert.equal(parseAddress('192.0.2.1').family, 4);
    assert.equal(parseAddress('2001:db8::1').family, 6);
  });
});
