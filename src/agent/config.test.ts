import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNodeConfig } from './config.js';

const good = {
  node: 'n1',
  namespacePrefix: 'n1-',
  rootNamespace: 'n1',
  publicNamespace: '',
  stateDir: '/var/lib/exitnode',
  uplink: { kind: 'veth', peerNamespace: 'seg', bridge: 'pz0' },
  wireguard: 'userspace',
};

test('a good config, and defaults', () => {
  assert.deepEqual(parseNodeConfig(good), good);
  const d = parseNodeConfig({ node: 'n1', stateDir: '/s', uplink: { kind: 'nic', device: 'eth1' } });
  assert.equal(d.namespacePrefix, '');
  assert.equal(d.rootNamespace, '');
  assert.equal(d.wireguard, 'auto');
});

const bad: [string, Record<string, unknown>, RegExp][] = [
  ['relative state dir', { stateDir: 'state' }, /stateDir.*absolute/],
  ['prefix with a slash', { namespacePrefix: '../x' }, /namespacePrefix/],
  ['unknown uplink kind', { uplink: { kind: 'wifi' } }, /uplink\.kind/],
  ['NIC name too long', { uplink: { kind: 'nic', device: 'a-very-long-nic-name' } }, /device/],
  ['macvlan without parent', { uplink: { kind: 'macvlan' } }, /parent/],
  ['bad wireguard mode', { wireguard: 'fast' }, /wireguard/],
  ['namespace with a space', { rootNamespace: 'a b' }, /rootNamespace/],
  ['unknown field', { nodes: 3 }, /nodes.*not a configuration field/],
];
for (const [name, patch, re] of bad) {
  test(`refused: ${name}`, () => {
    assert.throws(
      () => parseNodeConfig({ ...good, ...patch }),
      (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && re.test(e.message),
    );
  });
}
