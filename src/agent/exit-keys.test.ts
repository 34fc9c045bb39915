// Shared ExitPoint keys before a pass (stage 2), as a table of cases over the in-memory kernel: who
// may make the key, who writes it from its sealed copy, which ExitPoint links are left out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeKernel } from '../kernel/fake.js';
import { generatePrivateKey } from '../kernel/apply.js';
import { keyFileName, wgLinkName } from '../core/ownership.js';
import type { NodeView } from '../core/view.js';
import type { AgentContext } from './context.js';
import { floatingExits, prepareExitKeys } from './exit-keys.js';
import { generateNodeKey, seal } from '../core/seal.js';
import { loadNodeKey } from './node-key.js';
import { newDaemonState } from './state.js';

const A = 5;
const WG = wgLinkName('1001', A);

function view(me: string, exit: { publicKey?: string; sealedKey?: string }, candidates = ['n1', 'n2']): NodeView {
  return {
    version: 1,
    node: { id: me },
    allocations: [{ number: A, prefix: '2001:db8:70::/48', upstream: { ll: 'fe80::1' } }],
    slots: [{ allocation: A, slot: 1, epoch: 1, candidates, priority: 200 }],
    networks: [
      {
        id: 'net',
        allocation: A,
        exit: '1001',
        resources: [
          { id: '1001', node: candidates[0]!, ...exit },
          { id: '1002', node: 'n9' },
        ],
      },
    ],
  };
}

function ctx(node: string, dir: string): { c: AgentContext; kernel: FakeKernel; events: string[] } {
  const kernel = new FakeKernel();
  const events: string[] = [];
  const c = {
    config: { node, stateDir: join(dir, node), namespacePrefix: '' },
    state: newDaemonState(node, 0),
    kernel,
    log: (e: string) => events.push(e),
  } as unknown as AgentContext;
  return { c, kernel, events };
}

const key = (k: FakeKernel, node: string, dir: string): string | undefined =>
  k.privateKeys(join(dir, node), [{ name: WG, keyFile: keyFileName(WG) }]).get(WG);

test('who may make, open or must wait for an ExitPoint key (prepareExitKeys)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'exitnode-exit-keys-'));
  try {
    const exitKey = generatePrivateKey();
    const n2 = loadNodeKey(join(dir, 'n2'));
    const sealedToN2 = seal(Buffer.from(exitKey.privateKey, 'base64'), n2.publicKey);
    const sealedToOther = seal(Buffer.from(exitKey.privateKey, 'base64'), generateNodeKey().publicKey);
    const cases: [string, string, NodeView, boolean, string | undefined][] = [
      // what, node, view, left out, key file afterwards
      ['first candidate, nobody published a key: it makes one (the pass)', 'n1', view('n1', {}), false, undefined],
      [
        'first candidate, a key published, none here, none sealed: wait (a key of its own would change every peer)',
        'n1',
        view('n1', { publicKey: exitKey.publicKey }),
        true,
        undefined,
      ],
      ['second candidate without a sealed key: left out, no key made', 'n2', view('n2', {}), true, undefined],
      [
        'second candidate with its sealed key: written, built',
        'n2',
        view('n2', { publicKey: exitKey.publicKey, sealedKey: sealedToN2 }),
        false,
        exitKey.privateKey,
      ],
      [
        'promoted first candidate with its sealed key: the shared key, not a new one',
        'n2',
        view('n2', { publicKey: exitKey.publicKey, sealedKey: sealedToN2 }, ['n2', 'n1']),
        false,
        exitKey.privateKey,
      ],
      [
        'a box sealed to another node: left out',
        'n2',
        view('n2', { publicKey: exitKey.publicKey, sealedKey: sealedToOther }),
        true,
        undefined,
      ],
    ];
    for (const [what, node, v, out, want] of cases) {
      const { c, kernel } = ctx(node, dir);
      assert.equal(prepareExitKeys(c, v).has(WG), out, what);
      assert.equal(key(kernel, node, dir), want, what);
    }
    // A key file that differs from the sealed one is replaced; a box that does not open is tried once.
    const { c, kernel, events } = ctx('n2', dir);
    kernel.writePrivateKey(join(dir, 'n2'), keyFileName(WG), generatePrivateKey().privateKey);
    prepareExitKeys(c, view('n2', { publicKey: exitKey.publicKey, sealedKey: sealedToN2 }));
    assert.equal(key(kernel, 'n2', dir), exitKey.privateKey);
    const bad = view('n2', { publicKey: exitKey.publicKey, sealedKey: sealedToOther });
    prepareExitKeys(c, bad);
    prepareExitKeys(c, bad);
    assert.deepEqual(events, ['key.unsealed', 'key.unseal.failed'], 'one line per box that does not open');
    assert.equal(key(kernel, 'n2', dir), exitKey.privateKey, 'a bad box never removes a good key');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('floating exits: only networks whose exit is in a vrrp slot of the view; first = candidates[0]', () => {
  const v = view('n2', {});
  assert.deepEqual(
    floatingExits(v).map((f) => [f.network.id, f.name, f.first]),
    [['net', WG, false]],
  );
  const stage1: NodeView = { ...v, slots: [{ allocation: A, slot: 1, epoch: 1 }] };
  assert.deepEqual(floatingExits(stage1), [], 'a lease slot has no floating ExitPoint');
});
