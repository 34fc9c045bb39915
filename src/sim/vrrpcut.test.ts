// Pure parts of the stage-2 sim: the nft rules of `sim cut-vrrp`, the pairs it keeps in the state, and
// the argv that gives a command a node's own wireguard-go socket directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { vrrpCutRules, vrrpCuts } from './failover.js';
import { withWgDir } from './procs.js';
import type { SimState } from './state.js';

test('sim cut-vrrp: VRRP (IPv4 and IPv6) dropped both ways between the two trunks only; no cut, no table', () => {
  const rules = vrrpCutRules([['n1', 'n2']]);
  assert.match(rules, /^table bridge sim-vrrp-cut \{/);
  for (const [a, b] of [
    ['n1', 'n2'],
    ['n2', 'n1'],
  ])
    for (const m of ['ip protocol 112', 'ip6 nexthdr 112'])
      assert.ok(rules.includes(`iifname "sg-${a}" oifname "sg-${b}" ${m} counter drop`), `${a}→${b} ${m}`);
  assert.equal(rules.match(/drop/g)!.length, 4);
  assert.equal(vrrpCutRules([]), '');
});

test('sim cut-vrrp: the pairs come from the state, each once', () => {
  const s = {
    nodes: [
      { id: 'n1', vrrpCut: ['n2', 'n3'] },
      { id: 'n2', vrrpCut: ['n1'] },
      { id: 'n3', vrrpCut: ['n1'] },
    ],
  } as unknown as SimState;
  assert.deepEqual(vrrpCuts(s), [
    ['n1', 'n2'],
    ['n1', 'n3'],
  ]);
});

test("a node's socket directory: bound on /var/run/wireguard in a mount namespace of its own, the command exec'd", () => {
  const argv = withWgDir('/run/x/wg/n1', ['wg', 'show']);
  assert.deepEqual(argv.slice(0, 5), ['unshare', '--mount', '--propagation', 'unchanged', '--']);
  assert.deepEqual(argv.slice(-4), ['sh', '/run/x/wg/n1', 'wg', 'show']);
  assert.match(argv[7]!, /mount --bind "\$d" \/var\/run\/wireguard/);
  assert.match(argv[7]!, /exec "\$@"$/);
});
