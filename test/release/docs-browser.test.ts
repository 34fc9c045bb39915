// /docs opened in headless Chromium (Debian's chromium through playwright-core) shows every route
// of the OpenAPI document, and the page reaches no other host. Without Chromium the test is
// skipped with the reason, under CI=true it fails (scripts/install-release.sh installs it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../src/server/index.js';
import { checkDocs, chromiumReason } from '../../scripts/docs-browser.js';

test('/docs in Chromium lists every route of /docs/json and loads nothing from elsewhere', async (t) => {
  const why = chromiumReason();
  if (why) {
    if (process.env.CI === 'true') throw new Error(`cannot run under CI: ${why}`);
    t.skip(why);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'xn-docs-'));
  const s = await startServer({ data: dir, listen: '127.0.0.1:0', noTokenFile: true });
  try {
    const r = await checkDocs(s.url);
    assert.equal(r.title, 'exitnode TNoDB');
    assert.ok(r.documented.includes('POST /v1/networks') && r.documented.includes('GET /healthz'));
    assert.deepEqual(r.missing, [], 'every documented operation is on the page');
    assert.deepEqual(r.shown, r.documented, 'and nothing else');
    assert.deepEqual(r.foreign, [], 'the page asked no other host for anything');
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
