// Every event kind is documented in docs/events.md, and has a text of its own.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { EVENT_KINDS, eventText } from './event-kinds.js';

it('documents every event kind in docs/events.md', () => {
  const doc = readFileSync(new URL('../../docs/events.md', import.meta.url), 'utf8');
  for (const k of Object.keys(EVENT_KINDS))
    assert.match(doc, new RegExp(`^\\| \`${k.replace('.', '\\.')}\` \\|`, 'm'), k);
});

it('gives every kind its own text', () => {
  const base = { at: 0, allocation: 9, slot: 3, node: 'n1', network: 'tn-000000000001', nr: '3001', data: {} };
  for (const kind of Object.keys(EVENT_KINDS)) {
    const text = eventText({ ...base, kind });
    assert.notEqual(text, `${kind} slot 9/3 node n1`, `${kind} falls to the default text`);
  }
  assert.equal(
    eventText({
      ...base,
      kind: 'failover',
      data: { from: 'n1', to: 'n2', costMs: 6400, rebuildMs: 1200, cause: 'lapsed' },
    }),
    'slot 9/3 answered by n2 again 6.4 s after n1 was last heard (rebuild 1.2 s; its holder went silent (lease lapsed))',
  );
});
