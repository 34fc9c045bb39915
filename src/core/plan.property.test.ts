// Property tests of the addressing plan over random valid inputs, and agreement with an
// independent implementation of DESIGN.md section 2 (test/reference/plan-ref.ts) on random
// cases nobody wrote down.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { refNr, refRefusal, refSlot } from '../../test/reference/plan-ref.js';
import { ExitnodeError } from './errors.js';
import { explain } from './explain.js';
import { Ip4, Ip4Prefix, Ip6, Ip6Prefix } from './ip.js';
import { allocation, nrIdText, plan, planNr, planSlot, slotIdRange } from './plan.js';

const RUNS = 2000;

/** A random /48 as text: six random bytes written in a random (valid, non-canonical too) style. */
const prefix48 = fc
  .tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }))
  .filter(([a]) => a >> 6 !== 0x3fa && a >> 8 !== 0xff) // fe80::/10 and ff00::/8 are refused, tested apart
  .map(([a, b, c]) => `${a.toString(16)}:${b.toString(16)}:${c.toString(16)}::/48`);
const allocNumber = fc.integer({ min: 1, max: 65535 });
const slot = fc.integer({ min: 1, max: 15 });
const nrInSlot = (e: number) => fc.integer({ min: slotIdRange(e).first, max: slotIdRange(e).last });
const anyNr = slot.chain((e) => nrInSlot(e));

describe('plan properties', () => {
  it('agrees with the independent implementation on random slots and NRs', () => {
    fc.assert(
      fc.property(prefix48, allocNumber, anyNr, (p, A, S) => {
        const a = allocation(p, A);
        const canonicalP = a.prefix.toString();
        assert.deepEqual(planSlot(a, S >> 12), refSlot(canonicalP, A, S >> 12));
        assert.deepEqual(planNr(a, S), refNr(canonicalP, A, nrIdText(S)));
      }),
      { numRuns: RUNS },
    );
  });

  it('refuses exactly what the independent rules refuse', () => {
    const anyPrefix = fc.oneof(
      prefix48,
      fc
        .tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 128 }))
        .map(([a, l]) => `2001:db8:${a.toString(16)}::/${l}`),
      fc
        .tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 1, max: 0xffff }))
        .map(([a, x]) => `2001:db8:${a.toString(16)}:${x.toString(16)}::/48`),
      fc.constantFrom('10.0.0.0/8', '192.0.2.0/24', 'fe80::/48', 'febf:1::/48', 'ff02:0:1::/48'),
    );
    const anyA = fc.oneof(allocNumber, fc.integer({ min: -5, max: 70000 }));
    const anyE = fc.integer({ min: -1, max: 17 });
    const anyH = fc.oneof(
      fc.integer({ min: 0, max: 0xffff }).map((n) => nrIdText(n)),
      fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: 0, maxLength: 6 }),
      fc.constantFrom('xyz', 'g000', '1abc '),
    );
    fc.assert(
      fc.property(anyPrefix, anyA, anyE, anyH, (p, A, E, h) => {
        const why = refRefusal(p, A, E, h);
        let err: unknown;
        try {
          plan(allocation(p, A), { slot: E, nr: h });
        } catch (e) {
          err = e;
        }
        if (why === undefined) assert.equal(err, undefined, `refused a valid input: ${String(err)}`);
        else {
          assert.ok(
            err instanceof ExitnodeError,
            `${p} A=${A} E=${E} S=${JSON.stringify(h)} should be refused (${why}), got ${String(err)}`,
          );
          assert.ok(!err.message.includes('\n'));
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('every interface name fits in 15 characters', () => {
    fc.assert(
      fc.property(prefix48, allocNumber, anyNr, (p, A, S) => {
        const a = allocation(p, A);
        const n = planNr(a, S);
        const s = planSlot(a, S >> 12);
        for (const name of [
          n.GWtoEPName,
          n.EPPubName,
          n.WGName,
          n.NRLocalName,
          n.BridgeName,
          s.GWPubName,
          n.Namespace,
          s.Namespace,
        ]) {
          assert.ok(name.length <= 15, `${name} is ${name.length} characters`);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('every NR prefix is inside its slot /52, every slot /52 inside the /48', () => {
    fc.assert(
      fc.property(prefix48, allocNumber, anyNr, (p, A, S) => {
        const a = allocation(p, A);
        const slotP = Ip6Prefix.parse(planSlot(a, S >> 12).prefix);
        const nrP = Ip6Prefix.parse(planNr(a, S).prefix);
        assert.ok(slotP.contains(nrP));
        assert.ok(a.prefix.contains(slotP));
        assert.ok(!Ip6Prefix.parse(planSlot(a, S >> 12 === 15 ? 1 : (S >> 12) + 1).prefix).contains(nrP));
      }),
      { numRuns: RUNS },
    );
  });

  it('explain of any address inside an NR prefix returns that NR', () => {
    fc.assert(
      fc.property(prefix48, allocNumber, anyNr, fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (p, A, S, host) => {
        const a = allocation(p, A);
        const addr = Ip6Prefix.parse(planNr(a, S).prefix).at(host);
        const e = explain(a, addr.toString());
        assert.equal(e.kind, 'nr');
        assert.equal(e.nr, nrIdText(S));
        assert.equal(e.slot, S >> 12);
      }),
      { numRuns: RUNS },
    );
  });

  it('parsing the canonical text of any value gives the value back', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (v) => {
        const a = new Ip6(v);
        assert.equal(Ip6.parse(a.toString()).value, v);
      }),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (v) => {
        assert.equal(Ip4.parse(new Ip4(v).toString()).value, v);
      }),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.integer({ min: 0, max: 128 }), (v, len) => {
        const net = len === 0 ? 0n : (v >> BigInt(128 - len)) << BigInt(128 - len);
        const p = new Ip6Prefix(net, len);
        assert.ok(Ip6Prefix.parse(p.toString()).equals(p));
      }),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }), (v, len) => {
        const net = len === 0 ? 0 : Number((BigInt(v) >> BigInt(32 - len)) << BigInt(32 - len));
        const p = new Ip4Prefix(net, len);
        assert.ok(Ip4Prefix.parse(p.toString()).equals(p));
      }),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(prefix48, allocNumber, anyNr, (p, A, S) => {
        const a = allocation(p, A);
        for (const [k, v] of Object.entries(planNr(a, S))) {
          if (typeof v !== 'string' || !v.includes('/')) continue;
          const [addr] = v.split('/');
          const back = addr!.includes(':') ? Ip6.parse(addr!).toString() : Ip4.parse(addr!).toString();
          assert.equal(back, addr, `${k} is not canonical`);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('uniqueness across all ids of an allocation', () => {
  it('no two ids (and no slot) share a name or an address', () => {
    // Exhaustive for one allocation (61,184 NRs + 15 slots), sampled for a second: the plan is
    // injective in S by construction, but this is what would catch a formula typo.
    for (const [p, A] of [
      ['2001:db8:5e::/48', 1],
      ['2a02:1802:5e::/48', 65535],
    ] as const) {
      const a = allocation(p, A);
      const seen = new Map<string, string>();
      const claim = (v: string, who: string): void => {
        const prev = seen.get(v);
        assert.equal(prev, undefined, `${v} is used by ${prev} and ${who}`);
        seen.set(v, who);
      };
      for (let E = 1; E <= 15; E++) {
        const s = planSlot(a, E);
        for (const k of ['prefix', 'Namespace', 'GWPubName', 'GWPubLL', 'GWPubIP6'] as const)
          claim(s[k], `slot ${E} ${k}`);
        const { first, last } = slotIdRange(E);
        for (let S = first; S <= last; S++) {
          const n = planNr(a, S);
          for (const k of [
            'prefix',
            'Namespace',
            'GWtoEPName',
            'GWtoEPLL',
            'EPPubName',
            'EPPubLL',
            'EPPubIP4R',
            'WGName',
            'WGLL',
            'NRLocalName',
            'NRLocalIP6',
            'NRLocalIP4',
            'BridgeName',
          ] as const) {
            claim(n[k], `${n.id} ${k}`);
          }
          claim(`port ${n.WGPort}`, `${n.id} WGPort`);
        }
      }
      // WGIP4RT is EPPubIP4R's address with /16: same address, so it is checked through EPPubIP4R.
      assert.equal(seen.size, 15 * 5 + 61184 * 14);
    }
  });
});
