// A failure on one namespace does not stop the others: one NR namespace of the node cannot be
// read (its /run/netns entry is a plain file, not a namespace), and the pass still builds the
// other TN completely, reports that one object with the reason, and converges once it is fixed.
// Namespaces "xa-f", allocation 404.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireRoot } from '../support/root.js';
import { applyView, down } from '../../src/agent/index.js';
import type { NodeConfig } from '../../src/agent/config.js';
import { parseNodeView } from '../../src/core/view.js';
import { run, inNs } from '../../src/kernel/exec.js';
import { objectsText } from '../../src/reconcile/objects.js';
import { namespacesWith } from '../../src/sim/procs.js';

const A = 404;
const ROOT = 'xa-froot';
const SEG = 'xa-fseg';
const BROKEN = `/run/netns/xa-f-net-1abe-${A}`;
const state = mkdtempSync(join(tmpdir(), 'exitnode-xa-fail-'));
const config: NodeConfig = {
  node: 'f1',
  namespacePrefix: 'xa-f-',
  rootNamespace: ROOT,
  publicNamespace: ROOT,
  stateDir: state,
  uplink: { kind: 'veth', peerNamespace: SEG, bridge: 'pz0' },
  wireguard: 'none',
};

after(async () => {
  rmSync(BROKEN, { force: true });
  const names = namespacesWith('xa-f');
  if (names.length) await run(['ip', '-force', '-batch', '-'], names.map((n) => `netns del ${n}`).join('\n') + '\n');
  rmSync(state, { recursive: true, force: true });
});

const view = parseNodeView({
  version: 1,
  node: { id: 'f1' },
  allocations: [
    {
      number: A,
      prefix: '2001:db8:5e::/48',
      upstream: { ll: 'fe80::1', ipv4Gateway: '198.51.100.1', ipv4PrefixLength: 24 },
    },
  ],
  slots: [{ allocation: A, slot: 1, epoch: 1, ipv4: '198.51.100.10' }],
  networks: [
    {
      id: 'a',
      allocation: A,
      exit: '1abc',
      resources: [
        { id: '1abc', node: 'f1' },
        { id: '1abd', node: 'far' },
      ],
    },
    { id: 'b', allocation: A, exit: '1abe', resources: [{ id: '1abe', node: 'f1' }] },
  ],
});

test(
  'one unreadable NR namespace: the other TN is built, the failure names the namespace, the next pass converges',
  { timeout: 60_000 },
  async (t) => {
    if (!requireRoot(t, ['nft', 'nsenter'])) return;
    await run(['ip', '-batch', '-'], `netns add ${ROOT}\nnetns add ${SEG}\n`);
    await run(inNs(SEG, ['ip', 'link', 'add', 'pz0', 'type', 'bridge']));
    writeFileSync(BROKEN, '');

    const r = await applyView(view, config);
    assert.equal(r.failures.length, 1, JSON.stringify(r.failures));
    assert.deepEqual(r.failures[0]!.objects, [{ kind: 'netns', name: `xa-f-net-1abe-${A}` }]);
    assert.equal(objectsText(r.failures[0]!.objects), `namespace xa-f-net-1abe-${A}`);
    assert.match(r.failures[0]!.reason, /cannot be read/);
    const gw = `xa-f-gw-1-${A}`;
    const routes = (await run(inNs(gw, ['ip', '-6', 'route', 'show', 'proto', '77']))).stdout;
    assert.match(routes, new RegExp(`2001:db8:5e:1abd::/64 via fe80::1abc:1 dev to-1abc-${A}`), 'TN a is complete');
    assert.doesNotMatch(routes, /1abe/, 'nothing of TN b was attempted');
    const ep = (await run(inNs(`xa-f-net-1abc-${A}`, ['ip', '-6', 'route', 'show', 'proto', '77']))).stdout;
    assert.match(ep, new RegExp(`default via fe80::1:1abc dev pub-1abc-${A}`));

    rmSync(BROKEN);
    const again = await applyView(view, config);
    assert.deepEqual(again.failures, []);
    assert.match(
      (await run(inNs(gw, ['ip', '-6', 'route', 'show', 'proto', '77']))).stdout,
      new RegExp(`2001:db8:5e:1abe::/64 via fe80::1abe:1 dev to-1abe-${A}`),
    );
    assert.equal((await applyView(view, config)).size, 0);
    assert.deepEqual((await down(config)).failures, []);
    assert.deepEqual(namespacesWith('xa-f-'), []);
  },
);
