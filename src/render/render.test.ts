// The upstream renderers. Three kinds of checks:
//  - golden files: each OS's output for two fixed inputs, reviewed line by line against the
//    vendor's documentation (cited in golden/<os>.source beside each file). Regenerate after an
//    intended change with UPDATE_GOLDEN=1 and review the diff like code;
//  - properties: for random /48s, slot sets, OSes and next-hop kinds, the routes read back out of
//    the text are exactly one per slot with the prefix and next hop of the independent reference
//    implementation (test/reference/plan-ref.ts), and the upstream's addresses are there;
//  - bad input: one ExitnodeError naming the value, never a stack trace.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { isExitnodeError } from '../core/index.js';
import { refSlot } from '../../test/reference/plan-ref.js';
import {
  ROUTER_OSES,
  formatSlotList,
  parseSlotList,
  renderUpstream,
  upstreamModel,
  type RouterOs,
  type UpstreamInput,
} from './index.js';
import { renderedRoutes } from './routes.js';

const golden = (name: string): URL => new URL(`./golden/${name}`, import.meta.url);

/** A typical upstream interface name on each OS. */
export const IFACE: Record<RouterOs, string> = {
  linux: 'swp1',
  ifupdown2: 'swp1',
  frr: 'swp1',
  bird: 'eth1',
  vyos: 'eth1',
  mikrotik: 'ether1',
  cisco: 'GigabitEthernet0/0/1',
  junos: 'ge-0/0/1',
  openwrt: 'eth1',
};

const CASES: { suffix: string; input: (os: RouterOs) => UpstreamInput }[] = [
  { suffix: '', input: (os) => ({ prefix: '2001:db8:5e::/48', slots: [1, 2, 15], router: os, iface: IFACE[os] }) },
  {
    suffix: '-global',
    input: (os) => ({
      prefix: '2001:db8:5e::/48',
      slots: [3],
      router: os,
      iface: IFACE[os],
      via: 'global',
      upstreamLL: 'fe80::fe',
      upstreamIP6: '2001:db8:5e::fe/64',
    }),
  },
];

function expectError(fn: () => unknown, code: string, mentions: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isExitnodeError(e), `not an ExitnodeError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.includes(mentions), `message does not name ${JSON.stringify(mentions)}: ${e.message}`);
    assert.ok(!e.message.includes('\n'), 'one line');
    return;
  }
  assert.fail(`no error for ${mentions}`);
}

describe('renderUpstream: golden files', () => {
  for (const os of ROUTER_OSES) {
    for (const c of CASES) {
      const file = `${os}${c.suffix}.txt`;
      it(`${os}${c.suffix} matches golden/${file}`, () => {
        const text = renderUpstream(c.input(os));
        if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden(file), text);
        assert.equal(text, readFileSync(golden(file), 'utf8'));
      });
    }
    it(`${os} cites its vendor documentation beside the golden file`, () => {
      assert.ok(existsSync(golden(`${os}.source`)), `golden/${os}.source is missing`);
      assert.match(readFileSync(golden(`${os}.source`), 'utf8'), /https?:\/\//);
    });
  }
});

describe("renderUpstream: every output carries the plan's routes and addresses", () => {
  it('one route per enabled slot, the reference prefix and next hop, on the named interface', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.uniqueArray(fc.integer({ min: 1, max: 15 }), { minLength: 1, maxLength: 15 }),
        fc.constantFrom(...ROUTER_OSES),
        fc.constantFrom('ll' as const, 'global' as const),
        (h, slots, os, via) => {
          const prefix = `2001:db8:${h.toString(16)}::/48`;
          const text = renderUpstream({ prefix, slots, router: os, iface: IFACE[os], via });
          const got = renderedRoutes(os, text);
          const want = [...slots]
            .sort((a, b) => a - b)
            .map((e) => {
              const ref = refSlot(prefix, 1, e) as { prefix: string; GWPubLL: string; GWPubIP6: string };
              return { prefix: ref.prefix, nextHop: (via === 'll' ? ref.GWPubLL : ref.GWPubIP6).replace('/64', '') };
            });
          assert.deepEqual(
            got.map((r) => ({ prefix: r.prefix, nextHop: r.nextHop })),
            want,
          );
          if (via === 'll') {
            // A link-local next hop means nothing without its interface: every OS must name it.
            const named = os === 'junos' ? `${IFACE[os]}.0` : IFACE[os];
            for (const r of got)
              if (os !== 'openwrt') assert.equal(r.iface, named, `${os}: ${r.prefix} lacks its interface`);
          }
          const bytes = ipaddr.IPv6.parse(prefix.split('/')[0]!).toByteArray();
          bytes[15] = 1;
          const up = (ipaddr.fromByteArray(bytes) as ipaddr.IPv6).toRFC5952String();
          assert.ok(text.includes(`${up}/64`), `${os}: no ${up}/64 in\n${text}`);
          assert.ok(text.includes('fe80::1'), `${os}: no upstream link-local`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is pure: the same input gives the same text', () => {
    for (const os of ROUTER_OSES)
      assert.equal(renderUpstream(CASES[0]!.input(os)), renderUpstream(CASES[0]!.input(os)));
  });

  it('deduplicates and sorts the slots it is given', () => {
    assert.deepEqual(
      upstreamModel({ prefix: '2001:db8:5e::/48', slots: [15, 2, 2, 1], router: 'linux', iface: 'swp1' }).slots,
      [1, 2, 15],
    );
  });

  it('starts the Linux script with #!/bin/sh and set -e before the first ip command', () => {
    const text = renderUpstream(CASES[0]!.input('linux'));
    const lines = text.split('\n');
    assert.equal(lines[0], '#!/bin/sh');
    assert.ok(lines.indexOf('set -e') < lines.findIndex((l) => l.startsWith('ip ')));
  });

  it('says in every output what it is, the /48, the slots and that failover changes nothing', () => {
    for (const os of ROUTER_OSES) {
      const text = renderUpstream(CASES[0]!.input(os));
      for (const s of ['exitnode', '2001:db8:5e::/48', '1, 2, 15', 'derived from the /48 alone', 'fails over'])
        assert.ok(text.includes(s), `${os}: ${s}`);
    }
  });
});

describe('parseSlotList', () => {
  const good: [string, number[]][] = [
    ['1', [1]],
    ['1-3,5', [1, 2, 3, 5]],
    ['15', [15]],
    ['1-15', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]],
    ['5,1-3', [1, 2, 3, 5]],
    ['1-3,2', [1, 2, 3]],
    [' 1 - 2 , 4 ', [1, 2, 4]],
    ['7-7', [7]],
  ];
  for (const [text, want] of good)
    it(`reads ${JSON.stringify(text)}`, () => assert.deepEqual(parseSlotList(text), want));

  const bad: [string, string][] = [
    ['0', '"0"'],
    ['16', '"16"'],
    ['3-1', '"3-1"'],
    ['x', '"x"'],
    ['', 'empty'],
    ['1,,2', '""'],
    ['1,', '""'],
    ['1-', '"1-"'],
    ['-1', '"-1"'],
    ['1.5', '"1.5"'],
    ['0-3', '"0-3"'],
    ['14-16', '"14-16"'],
    ['1;2', '"1;2"'],
    ['0x1', '"0x1"'],
  ];
  for (const [text, part] of bad) {
    it(`refuses ${JSON.stringify(text)} naming the bad part`, () =>
      expectError(() => parseSlotList(text), 'SLOT_LIST_SYNTAX', part));
  }

  it('formatSlotList writes what parseSlotList reads back', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 15 }), { minLength: 1 }), (s) => {
        const sorted = [...s].sort((a, b) => a - b);
        assert.deepEqual(parseSlotList(formatSlotList(sorted)), sorted);
      }),
    );
    assert.equal(formatSlotList([1, 2, 3, 5, 7, 8]), '1-3,5,7,8');
  });
});

describe('renderUpstream: bad input', () => {
  const base = (over: Partial<UpstreamInput>): UpstreamInput => ({
    prefix: '2001:db8:5e::/48',
    slots: [1],
    router: 'linux',
    iface: 'swp1',
    ...over,
  });
  const cases: [string, Partial<UpstreamInput>, string, string][] = [
    [
      'an unknown router, listing the known ones',
      { router: 'edgeos' },
      'UPSTREAM_ROUTER_UNKNOWN',
      'linux, ifupdown2, frr, bird, vyos, mikrotik, cisco, junos, openwrt',
    ],
    ['a /47', { prefix: '2001:db8:5e::/47' }, 'PREFIX_NOT_48', '/47'],
    ['a /49', { prefix: '2001:db8:5e::/49' }, 'PREFIX_NOT_48', '/49'],
    ['host bits below the /48', { prefix: '2001:db8:5e::1/48' }, 'PREFIX_HOST_BITS', '2001:db8:5e::1/48'],
    ['an IPv4 prefix', { prefix: '192.0.2.0/24' }, 'NOT_IPV6', '192.0.2.0/24'],
    ['no slots', { slots: [] }, 'SLOT_LIST_SYNTAX', 'no slots'],
    ['slot 0', { slots: [0] }, 'SLOT_PREFIXZERO', 'slot 0'],
    ['slot 16', { slots: [16] }, 'SLOT_RANGE', '16'],
    ['a next hop kind other than ll/global', { via: 'link' as 'll' }, 'UPSTREAM_VIA_UNKNOWN', '"link"'],
    ['an upstream LL outside fe80::/64', { upstreamLL: '2001:db8::1' }, 'UPSTREAM_ADDRESS_OVERRIDE', '2001:db8::1'],
    ["an upstream LL that is a gateway's", { upstreamLL: 'fe80::3000:0:0:1' }, 'UPSTREAM_ADDRESS_OVERRIDE', 'slot 3'],
    ['an upstream LL with a /128', { upstreamLL: 'fe80::1/128' }, 'UPSTREAM_ADDRESS_OVERRIDE', 'fe80::1/128'],
    ['an upstream LL that is not an address', { upstreamLL: 'fe80::zz' }, 'ADDRESS_SYNTAX', 'fe80::zz'],
    [
      'an upstream global address outside P::/64',
      { upstreamIP6: '2001:db8:5e:1::1' },
      'UPSTREAM_ADDRESS_OVERRIDE',
      '2001:db8:5e:1::1',
    ],
    [
      "an upstream global address that is a gateway's",
      { upstreamIP6: '2001:db8:5e:0:f000::1' },
      'UPSTREAM_ADDRESS_OVERRIDE',
      'slot 15',
    ],
    ["the segment's anycast address", { upstreamIP6: '2001:db8:5e::' }, 'UPSTREAM_ADDRESS_OVERRIDE', 'Subnet-Router'],
  ];
  for (const [what, over, code, mentions] of cases) {
    it(`refuses ${what}`, () => expectError(() => renderUpstream(base(over)), code, mentions));
  }

  const ifaces: [RouterOs, string, string][] = [
    ['linux', '', 'empty'],
    ['linux', 'swp 1', 'whitespace'],
    ['linux', 'swp1\nip link del eth0', 'whitespace'],
    ['linux', "swp1'", 'quote'],
    ['linux', 'sixteen-chars-xx', '16 characters'],
    ['linux', '-swp1', 'starting with a letter'],
    ['linux', 'swp1;reboot', 'letters, digits'],
    ['linux', 'swp1$(id)', 'letters, digits'],
    ['linux', '..', 'letters, digits'],
    ['ifupdown2', 'a/b', 'letters, digits'],
    ['frr', 'swp1!', 'letters, digits'],
    ['bird', "eth1'", 'quote'],
    ['openwrt', 'eth1\tx', 'whitespace'],
    ['vyos', 'ens3', 'ethN'],
    ['vyos', 'eth1.5000', '1-4094'],
    ['vyos', 'eth1 ', 'whitespace'],
    ['mikrotik', 'ether 1', 'whitespace'],
    ['mikrotik', 'ether1;/system/reboot', 'letters, digits'],
    ['mikrotik', 'x'.repeat(65), '65 characters'],
    ['cisco', 'GigabitEthernet 0/0', 'whitespace'],
    ['cisco', '0/0/1', 'type and a number'],
    ['cisco', 'Gi0/0/1"', 'quote'],
    ['junos', 'ge-0/0/1 unit 0', 'whitespace'],
    ['junos', 'GE-0/0/1', 'ge-0/0/1'],
    ['junos', 'ge-0/0', 'ge-0/0/1'],
  ];
  for (const [os, name, mentions] of ifaces) {
    it(`refuses ${os} interface ${JSON.stringify(name)}`, () =>
      expectError(() => renderUpstream(base({ router: os, iface: name })), 'UPSTREAM_IFACE_NAME', mentions));
  }

  const goodIfaces: [RouterOs, string][] = [
    ['linux', 'eth0.100'],
    ['linux', 'enp3s0f1'],
    ['linux', 'br-up_1'],
    ['vyos', 'bond0.20'],
    ['vyos', 'br1'],
    ['mikrotik', 'sfp-sfpplus1'],
    ['cisco', 'Te1/1/1.100'],
    ['cisco', 'Port-channel1'],
    ['cisco', 'Vlan10'],
    ['junos', 'xe-1/0/0:2.100'],
    ['junos', 'ae0'],
    ['junos', 'irb.10'],
  ];
  for (const [os, name] of goodIfaces)
    it(`takes ${os} interface ${name}`, () => assert.ok(renderUpstream(base({ router: os, iface: name }))));

  it('never accepts a name that could leave its token in any output (random names)', () => {
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...ROUTER_OSES),
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 24 }),
          fc.stringMatching(/^[A-Za-z0-9 ./:;'"$#!%{}_-]{1,20}$/),
          fc.stringMatching(/^(eth|ge-|Gi|ether|swp)[0-9./:]{1,8}$/),
        ),
        (os, name) => {
          let text: string;
          try {
            text = renderUpstream(base({ router: os, iface: name }));
          } catch (e) {
            assert.ok(isExitnodeError(e) && e.code === 'UPSTREAM_IFACE_NAME', String(e));
            return;
          }
          assert.match(name, /^[A-Za-z0-9][A-Za-z0-9_./:-]*$/, `${os} accepted ${JSON.stringify(name)}`);
          assert.ok(text.includes(name));
          accepted++;
        },
      ),
      { numRuns: 3000 },
    );
    assert.ok(accepted > 50, `only ${accepted} names were accepted: the property tested little`);
  });

  it('renders a VyOS VLAN and a Junos unit on the right configuration path', () => {
    assert.match(
      renderUpstream(base({ router: 'vyos', iface: 'eth1.100' })),
      /^set interfaces ethernet eth1 vif 100 address '2001:db8:5e::1\/64'$/m,
    );
    assert.match(renderUpstream(base({ router: 'vyos', iface: 'bond0' })), /^set interfaces bonding bond0 address/m);
    const j = renderUpstream(base({ router: 'junos', iface: 'ae0.20' }));
    assert.match(j, /^set interfaces ae0 unit 20 family inet6 address 2001:db8:5e::1\/64$/m);
    assert.match(j, /qualified-next-hop fe80::1000:0:0:1 interface ae0\.20$/m);
  });
});
