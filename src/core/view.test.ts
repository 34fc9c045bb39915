// parseNodeView: the gate between TNoDB's JSON and the kernel. Each bad value is refused with
// VIEW_INVALID and a message that names the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExitnodeError } from './errors.js';
import { checkEndpoint, checkWgKey, parseNodeView, type NodeView } from './view.js';

const KEY = 'zeneXLwfm/zNJ/4VDuaCJHYMH4YoG5UbPd7J1fpnsTs=';
const good = (): NodeView => ({
  version: 3,
  node: { id: 'n1', publicIPv4: '192.0.2.1' },
  allocations: [
    {
      number: 1,
      prefix: '2A02:1802:005e::/48',
      upstream: { ll: 'fe80::1', ipv4Gateway: '185.69.166.1', ipv4PrefixLength: 24 },
    },
  ],
  slots: [{ allocation: 1, slot: 1, epoch: 1, ipv4: '185.69.166.123' }],
  networks: [
    {
      id: 't1',
      allocation: 1,
      exit: '1ABC',
      resources: [
        { id: '1abc', node: 'n1', publicKey: KEY, endpoint: '192.0.2.1:6844' },
        { id: '1abd', node: 'n2', endpoint: '[2001:DB8::2]:6845' },
      ],
    },
  ],
});

test('a good view comes back in canonical form', () => {
  const v = parseNodeView(JSON.stringify(good()));
  assert.equal(v.allocations[0]!.prefix, '2a02:1802:5e::/48');
  assert.equal(v.networks[0]!.exit, '1abc');
  assert.equal(v.networks[0]!.resources[1]!.endpoint, '[2001:db8::2]:6845');
});

const cases: [string, (v: NodeView) => void, RegExp][] = [
  [
    'a /47',
    (v) => {
      v.allocations[0]!.prefix = '2a02:1802:5e::/47';
    },
    /allocations\[0\]\.prefix.*\/47/,
  ],
  [
    'an IPv4 prefix',
    (v) => {
      v.allocations[0]!.prefix = '10.0.0.0/8';
    },
    /allocations\[0\]\.prefix/,
  ],
  [
    'allocation number 0',
    (v) => {
      v.allocations[0]!.number = 0;
    },
    /allocations\[0\]\.number/,
  ],
  [
    'a global upstream ll',
    (v) => {
      v.allocations[0]!.upstream.ll = '2001:db8::1';
    },
    /upstream\.ll.*link-local/,
  ],
  [
    'slot 0',
    (v) => {
      v.slots[0]!.slot = 0;
    },
    /slots\[0\]\.slot.*PrefixZero/,
  ],
  [
    'slot 16',
    (v) => {
      v.slots[0]!.slot = 16;
    },
    /slots\[0\]\.slot/,
  ],
  [
    'a slot of an unknown allocation',
    (v) => {
      v.slots[0]!.allocation = 2;
    },
    /slots\[0\]\.allocation.*no allocation/,
  ],
  [
    'a bad GWPubIP4',
    (v) => {
      v.slots[0]!.ipv4 = '185.69.166.300';
    },
    /slots\[0\]\.ipv4/,
  ],
  [
    'an id outside the TN slot',
    (v) => {
      v.networks[0]!.resources[1]!.id = '2abd';
    },
    /resources\[1\]\.id.*outside slot 1/,
  ],
  [
    'a reserved id',
    (v) => {
      v.networks[0]!.exit = 'ff01';
    },
    /networks\[0\]\.exit.*reserved/,
  ],
  [
    'a PrefixZero id',
    (v) => {
      v.networks[0]!.resources[1]!.id = '0abc';
    },
    /resources\[1\]\.id.*PrefixZero/,
  ],
  [
    'an id that is not hex',
    (v) => {
      v.networks[0]!.resources[1]!.id = '1abg';
    },
    /resources\[1\]\.id/,
  ],
  [
    'a 31-byte key',
    (v) => {
      v.networks[0]!.resources[0]!.publicKey = Buffer.alloc(31, 1).toString('base64');
    },
    /resources\[0\]\.publicKey.*32 bytes/,
  ],
  [
    'a key with a shell word',
    (v) => {
      v.networks[0]!.resources[0]!.publicKey = '$(reboot)';
    },
    /publicKey/,
  ],
  [
    'an endpoint without port',
    (v) => {
      v.networks[0]!.resources[0]!.endpoint = '192.0.2.1';
    },
    /resources\[0\]\.endpoint/,
  ],
  [
    'an endpoint with port 0',
    (v) => {
      v.networks[0]!.resources[0]!.endpoint = '192.0.2.1:0';
    },
    /endpoint/,
  ],
  [
    'an endpoint with a host name',
    (v) => {
      v.networks[0]!.resources[0]!.endpoint = 'evil.example:51820';
    },
    /endpoint/,
  ],
  [
    'an unbracketed IPv6 endpoint',
    (v) => {
      v.networks[0]!.resources[0]!.endpoint = '2001:db8::1:51820';
    },
    /endpoint/,
  ],
  [
    'an exit that is not a resource',
    (v) => {
      v.networks[0]!.exit = '1abe';
    },
    /networks\[0\]\.exit.*not one of/,
  ],
  [
    'an id twice',
    (v) => {
      v.networks[0]!.resources[1]!.id = '1abc';
    },
    /appears twice/,
  ],
  [
    'a node id with a space',
    (v) => {
      v.networks[0]!.resources[1]!.node = 'n 2';
    },
    /resources\[1\]\.node/,
  ],
  [
    'a negative version',
    (v) => {
      v.version = -1;
    },
    /version/,
  ],
  [
    'networks not an array',
    (v) => {
      (v as unknown as Record<string, unknown>).networks = {};
    },
    /networks.*not an array/,
  ],
];
for (const [name, mutate, re] of cases) {
  test(`refused: ${name}`, () => {
    const v = good();
    mutate(v);
    assert.throws(
      () => parseNodeView(v),
      (e: unknown) =>
        e instanceof ExitnodeError && e.code === 'VIEW_INVALID' && re.test(e.message) && !e.message.includes('\n'),
    );
  });
}

test('not JSON', () => {
  assert.throws(() => parseNodeView('{'), /not JSON/);
});

test('keys and endpoints', () => {
  assert.equal(checkWgKey(KEY, 'k'), KEY);
  assert.throws(() => checkWgKey(KEY.replace('s=', 't='), 'k'), /32 bytes/); // 44 chars but the last sextet has stray bits
  assert.equal(checkEndpoint('192.0.2.1:51820', 'e'), '192.0.2.1:51820');
  assert.throws(() => checkEndpoint('192.0.2.1:65536', 'e'), /endpoint/);
  assert.throws(() => checkEndpoint('192.0.2.1:051820', 'e'), /endpoint/);
});

// Stage 2 (issue 10): candidates, priority, stepDown, sealTo, sealedKey, learnedEndpoint.
const SEALED = Buffer.alloc(80, 3).toString('base64');
const stage2 = (): NodeView => {
  const v = good();
  v.slots[0] = { ...v.slots[0]!, candidates: ['n1', 'n2'], priority: 250, stepDown: true };
  v.sealTo = [{ node: 'n2', key: KEY }];
  v.networks[0]!.resources[0]!.sealedKey = SEALED;
  v.networks[0]!.resources[1]!.learnedEndpoint = '[2001:DB8::9]:51820';
  return v;
};

test('a stage-2 view keeps its candidates, keys and learned endpoints', () => {
  const v = parseNodeView(JSON.stringify(stage2()));
  assert.deepEqual(v.slots[0], {
    allocation: 1,
    slot: 1,
    epoch: 1,
    ipv4: '185.69.166.123',
    candidates: ['n1', 'n2'],
    priority: 250,
    stepDown: true,
  });
  assert.deepEqual(v.sealTo, [{ node: 'n2', key: KEY }]);
  assert.equal(v.networks[0]!.resources[0]!.sealedKey, SEALED);
  assert.equal(v.networks[0]!.resources[1]!.learnedEndpoint, '[2001:db8::9]:51820');
  assert.equal(parseNodeView(good()).sealTo, undefined);
});

const stage2Cases: [string, (v: NodeView) => void, RegExp][] = [
  ['candidates without this node', (v) => void (v.slots[0]!.candidates = ['n2']), /slots\[0\]\.candidates.*this node/],
  ['a candidate twice', (v) => void (v.slots[0]!.candidates = ['n1', 'n1']), /slots\[0\]\.candidates.*twice/],
  ['a bad candidate name', (v) => void (v.slots[0]!.candidates = ['n1', 'n 2']), /slots\[0\]\.candidates\[1\]/],
  ['priority 0', (v) => void (v.slots[0]!.priority = 0), /slots\[0\]\.priority/],
  ['stepDown not boolean', (v) => ((v.slots[0] as Record<string, unknown>).stepDown = 'yes'), /slots\[0\]\.stepDown/],
  ['sealTo this node', (v) => void (v.sealTo = [{ node: 'n1', key: KEY }]), /sealTo\[0\]\.node.*itself/],
  ['sealTo a bad key', (v) => void (v.sealTo = [{ node: 'n2', key: 'abc' }]), /sealTo\[0\]\.key/],
  [
    'a sealed key of the wrong size',
    (v) => void (v.networks[0]!.resources[0]!.sealedKey = Buffer.alloc(48).toString('base64')),
    /resources\[0\]\.sealedKey.*48 bytes/,
  ],
  [
    'a learned endpoint without a port',
    (v) => void (v.networks[0]!.resources[1]!.learnedEndpoint = '203.0.113.1'),
    /resources\[1\]\.learnedEndpoint/,
  ],
];
for (const [name, mutate, re] of stage2Cases) {
  test(`refused (stage 2): ${name}`, () => {
    const v = stage2();
    mutate(v);
    assert.throws(
      () => parseNodeView(v),
      (e: unknown) => e instanceof ExitnodeError && e.code === 'VIEW_INVALID' && re.test(e.message),
    );
  });
}
