import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderErrorsDoc } from '../../scripts/docs-errors.js';
import { catalog } from './errors.js';

it('every error code is documented, and docs/errors.md is up to date (npm run docs:errors)', async () => {
  const fresh = await renderErrorsDoc();
  for (const [code, spec] of catalog()) {
    assert.match(code, /^[A-Z][A-Z0-9_]+$/);
    assert.ok(spec.summary.length >= 15, `${code} has no real summary`);
    assert.ok(spec.status >= 400 && spec.status <= 599, `${code} status ${spec.status}`);
    assert.ok(spec.kind !== 'input' || spec.status < 500, `${code}: input errors are 4xx`);
  }
  const onDisk = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  assert.equal(onDisk, fresh, 'docs/errors.md is stale: run npm run docs:errors');
});
