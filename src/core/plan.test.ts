// The addressing plan against test/fixtures/vectors.json (a verbatim copy of the specification's
// spec/vectors.json, kept in the repository: see test/fixtures/README.md): every valid case
// reproduced exactly, every invalid case refused with a one-line catalog error.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ExitnodeError } from './errors.js';
import { allocation, checkSlot, nrId, plan, planNr, slotIdRange, FIRST_RESERVED_ID } from './plan.js';

interface Vectors {
  valid: { input: { prefix: string; allocation: number; slot: number; nr: string }; plan: unknown }[];
  invalid: { prefix: string; allocation: number; slot: number; nr: string; why: string }[];
}
const vectors = JSON.parse(
  readFileSync(new URL('../../test/fixtures/vectors.json', import.meta.url), 'utf8'),
) as Vectors;

/** The rule each `why` of vectors.json maps to in the catalog. */
const WHY_CODE: Record<string, string> = {
  'not a /48': 'PREFIX_NOT_48',
  'host bits set': 'PREFIX_HOST_BITS',
  'not IPv6': 'NOT_IPV6',
  'allocation number out of range': 'ALLOCATION_RANGE',
  'slot 0 is PrefixZero': 'SLOT_PREFIXZERO',
  'slot out of range': 'SLOT_RANGE',
  'nr id outside the slot': 'NR_ID_OUTSIDE_SLOT',
  'reserved id': 'NR_ID_RESERVED',
  'nr id is not 16 bits': 'NR_ID_SYNTAX',
  'nr id is not hex': 'NR_ID_SYNTAX',
};

describe('vectors.json', () => {
  for (const v of vectors.valid) {
    it(`reproduces ${v.input.prefix} A=${v.input.allocation} E=${v.input.slot} S=${v.input.nr}`, () => {
      const a = allocation(v.input.prefix, v.input.allocation);
      assert.deepEqual(plan(a, { slot: v.input.slot, nr: v.input.nr }), v.plan);
      // the slot follows from the id when it is omitted
      assert.deepEqual(plan(a, { nr: v.input.nr }), v.plan);
    });
  }
  for (const v of vectors.invalid) {
    it(`refuses ${v.prefix} A=${v.allocation} E=${v.slot} S=${v.nr} (${v.why})`, () => {
      const code = WHY_CODE[v.why];
      assert.ok(code, `no catalog code mapped for ${v.why}`);
      assert.throws(
        () => plan(allocation(v.prefix, v.allocation), { slot: v.slot, nr: v.nr }),
        (e: unknown) => {
          assert.ok(e instanceof ExitnodeError, `expected a catalog error, got ${String(e)}`);
          assert.equal(e.code, code);
          assert.ok(!e.message.includes('\n'), 'one line');
          return true;
        },
      );
    });
  }
});

describe('validation messages name the value and the rule', () => {
  const cases: [() => unknown, RegExp][] = [
    [() => allocation('2a02:1802:5e::/47', 1), /"2a02:1802:5e::\/47".*exactly a \/48/],
    [() => allocation('2a02:1802:5e::1/48', 1), /host bits.*2a02:1802:5e::\/48/],
    [() => allocation('10.0.0.0/8', 1), /"10.0.0.0\/8" is an IPv4 prefix/],
    [() => allocation('2a02:1802:5e::/48', 0), /allocation number 0 .*1 to 65535/],
    [() => allocation('2a02:1802:5e::/48', '1.5'), /allocation number "1.5"/],
    [() => allocation('2a02:1802:5e::', 1), /no prefix length/],
    [() => allocation('zz::/48', 1), /not a prefix/],
    [() => checkSlot(16), /slot 16 is out of range.*1 to 15/],
    [() => checkSlot(0), /slot 0 is PrefixZero/],
    [() => nrId('2abc', 1), /"2abc" is outside slot 1.*1000-1fff/],
    [() => nrId('ff00'), /"ff00" is reserved/],
    [() => nrId('0abc'), /"0abc" is in PrefixZero/],
    [() => nrId('1abcd'), /not 16 bits/],
    [() => nrId('xyz'), /not hexadecimal/],
    [() => nrId('-1'), /not hexadecimal/],
    [() => nrId(''), /not hexadecimal/],
  ];
  for (const [fn, re] of cases) {
    it(re.source, () => assert.throws(fn, (e: unknown) => e instanceof ExitnodeError && re.test(e.message)));
  }
});

describe('slot ranges', () => {
  it('slots 1-14 have 4096 ids, slot 15 has 3840 (ff00-ffff reserved)', () => {
    for (let s = 1; s <= 14; s++) assert.equal(slotIdRange(s).count, 4096);
    assert.equal(slotIdRange(15).count, 3840);
    assert.equal(slotIdRange(15).last, FIRST_RESERVED_ID - 1);
    let total = 0;
    for (let s = 1; s <= 15; s++) total += slotIdRange(s).count;
    assert.equal(total, 61184);
  });
  it('the longest names fit in 15 characters (veth-ffff-65535 is the longest possible)', () => {
    const n = planNr(allocation('2001:db8:ffff::/48', 65535), 0xfeff);
    for (const name of [n.Namespace, n.GWtoEPName, n.EPPubName, n.WGName, n.NRLocalName, n.BridgeName])
      assert.ok(name.length <= 15, name);
    assert.equal('veth-ffff-65535'.length, 15);
  });
  it('accepts ids written with upper case or fewer digits and writes them as 4 lowercase digits', () => {
    const a = allocation('2001:db8::/48', 3);
    assert.equal(planNr(a, nrId('1ABC')).id, '1abc');
    assert.equal(plan(a, { nr: 'F000' }).nr?.id, 'f000');
  });
});
