// Forwards and the inbound policy in incremental passes: against the state a previous pass left
// (assumeApplied), one removed forward or rule is one delete line, an unchanged view nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { compile } from '../compile/index.js';
import { parseNodeView, type NodeView } from '../core/view.js';
import { parseNodeConfig } from '../agent/config.js';
import { assumeApplied } from './assume.js';
import { diff } from './diff.js';

const fixture = JSON.parse(
  readFileSync(new URL('../../test/fixtures/views/forwards.json', import.meta.url), 'utf8'),
) as { config: unknown; view: NodeView };
const config = parseNodeConfig(fixture.config);
const KEYS = new Map([
  ['wg-1abc-1', 'KEYC'],
  ['wg-1abe-1', 'KEYE'],
]);
const files = { wgProcesses: new Map(), keyFiles: new Set(['wg-1abc-1', 'wg-1abe-1']), pidFiles: new Set<string>() };
const plan = (from: NodeView, to: NodeView): string[] =>
  diff(compile(parseNodeView(to), config), assumeApplied(compile(parseNodeView(from), config), KEYS, files), {
    kernelWireguard: false,
    privateKeys: KEYS,
  }).steps.flatMap((s) => ('lines' in s ? s.lines : []));

test('against the previous pass: a removed forward and rule are delete lines, an unchanged view is nothing', () => {
  const v = fixture.view;
  assert.deepEqual(plan(v, v), []);
  const fewer = structuredClone(v);
  fewer.networks[0]!.forwards = fewer.networks[0]!.forwards!.slice(1);
  fewer.networks[0]!.inbound!.rules = fewer.networks[0]!.inbound!.rules.slice(1);
  assert.deepEqual(plan(v, fewer), [
    'delete element ip exitnode-nat fwd4 { tcp . 8080 : 10.26.189.100 . 80 }',
    'delete element inet exitnode-filter allow6 { 2a02:1802:5e:1235::/64 . tcp . 443 . ::/0, 2a02:1802:5e:1abc::/64 . tcp . 443 . ::/0, 2a02:1802:5e:1abd::/64 . tcp . 443 . ::/0 }',
  ]);
  const open = structuredClone(v);
  delete open.networks[0]!.inbound;
  assert.equal(plan(v, open).filter((l) => l.startsWith('delete element inet exitnode-filter closed6')).length, 1);
  assert.deepEqual(
    plan(open, v).filter((l) => !l.startsWith('add element')),
    [],
    'closing adds elements only',
  );
});
