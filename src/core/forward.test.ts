// The rules of forwards and inbound rules, and the element texts the compiler writes and the kernel
// reader rebuilds from `nft -j` (the JSON shapes are those nft 1.0.6 prints).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  allowElement,
  checkForwardTarget,
  checkNotReserved,
  checkSourcePrefix,
  disjointRules,
  forwardElement,
  isReservedPort,
  parsePortRange,
  rulesOverlap,
} from './forward.js';
import { isExitnodeError } from './errors.js';
import { nftElementText } from '../kernel/observe.js';

const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (isExitnodeError(e)) return e.code;
    throw e;
  }
  return 'no error';
};

test('reserved ports: the slot’s WireGuard ports (udp), BGP and BFD', () => {
  assert.equal(isReservedPort(1, 'udp', 4096), true);
  assert.equal(isReservedPort(1, 'udp', 8191), true);
  assert.equal(isReservedPort(1, 'udp', 8192), false, "slot 2's range is not slot 1's business");
  assert.equal(isReservedPort(1, 'tcp', 6844), false, 'WireGuard is udp only');
  assert.equal(isReservedPort(15, 'udp', 65535), true);
  assert.equal(isReservedPort(3, 'tcp', 179), true);
  assert.equal(
    code(() => checkNotReserved(1, 'udp', 6844)),
    'FORWARD_PORT_RESERVED',
  );
  assert.equal(
    code(() => checkNotReserved(1, 'tcp', 6844)),
    'no error',
  );
});

test('a target is a workload address of one of the network’s NRs', () => {
  assert.equal(checkForwardTarget('10.26.188.100', ['1abc', '1abd']), '10.26.188.100');
  assert.equal(checkForwardTarget('10.26.189.2', ['1abc', '1abd']), '10.26.189.2');
  for (const bad of ['10.26.188.1', '10.26.188.0', '10.26.188.255', '10.26.190.5', '10.026.188.5', 'x', '::1'])
    assert.equal(
      code(() => checkForwardTarget(bad, ['1abc', '1abd'])),
      'FORWARD_INVALID',
      bad,
    );
});

test('port ranges, sources and overlap', () => {
  assert.deepEqual(parsePortRange('80'), { from: 80, to: 80 });
  assert.deepEqual(parsePortRange('8000-8100'), { from: 8000, to: 8100 });
  assert.deepEqual(parsePortRange(443), { from: 443, to: 443 });
  for (const bad of ['0', '90-80', '1-70000', 'http', '80-', ''])
    assert.equal(
      code(() => parsePortRange(bad)),
      'FORWARD_INVALID',
      bad,
    );
  assert.equal(checkSourcePrefix('2001:DB8::1'), '2001:db8::1/128');
  assert.equal(
    code(() => checkSourcePrefix('2001:db8::1/32')),
    'FORWARD_INVALID',
  );
  assert.equal(
    code(() => checkSourcePrefix('10.0.0.0/8')),
    'FORWARD_INVALID',
  );
  const r = (protocol: 'tcp' | 'udp', from: number, to: number, source?: string) => ({
    protocol,
    from,
    to,
    ...(source ? { source } : {}),
  });
  assert.equal(rulesOverlap(r('tcp', 80, 80), r('tcp', 70, 90)), true);
  assert.equal(rulesOverlap(r('tcp', 80, 80), r('udp', 80, 80)), false);
  assert.equal(rulesOverlap(r('tcp', 80, 80, '2001:db8::/32'), r('tcp', 80, 80, '2001:db8:1::/48')), true);
  assert.equal(rulesOverlap(r('tcp', 80, 80, '2001:db8::/32'), r('tcp', 80, 80, '2001:db9::/32')), false);
  assert.equal(rulesOverlap(r('tcp', 80, 89), r('tcp', 90, 99)), false);
  assert.deepEqual(disjointRules([r('tcp', 80, 80), r('tcp', 70, 90), r('udp', 80, 80)]), [
    r('tcp', 80, 80),
    r('udp', 80, 80),
  ]);
});

test('element texts read back from nft -j as written', () => {
  const f = { protocol: 'tcp' as const, port: 8080, target: '10.16.1.100', targetPort: 80 };
  assert.equal(nftElementText([{ concat: ['tcp', 8080] }, { concat: ['10.16.1.100', 80] }]), forwardElement(f));
  const p = '2001:db8:5e:1001::/64';
  assert.equal(
    nftElementText({
      concat: [{ prefix: { addr: '2001:db8:5e:1001::', len: 64 } }, 'tcp', 80, { prefix: { addr: '::', len: 0 } }],
    }),
    allowElement(p, { protocol: 'tcp', from: 80, to: 80 }),
  );
  assert.equal(
    nftElementText({
      concat: [{ prefix: { addr: '2001:db8:5e:1001::', len: 64 } }, 'udp', { range: [8000, 8100] }, '2001:db8:ff::1'],
    }),
    allowElement(p, { protocol: 'udp', from: 8000, to: 8100, source: '2001:db8:ff::1/128' }),
  );
  assert.equal(nftElementText({ elem: { val: '2001:0db8:5e:1001::' } }), '2001:db8:5e:1001::');
});
