// The API reference at /docs (Swagger UI from the package's own files, the OpenAPI document at
// /docs/json) and the version handshake: the server's version on every answer and in /healthz,
// a client of another major version refused before authentication, the real client sending its own.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, harness, type Harness } from './helpers.js';
import { VERSION, VERSION_HEADER } from '../../src/core/version.js';
import { TnodbClient } from '../../src/client/index.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

describe('the API reference at /docs', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(() => h.close());

  it('serves Swagger UI as HTML that loads its files from /docs/static on this server only', async () => {
    const r = await h.call('GET', '/docs');
    assert.equal(r.statusCode, 200);
    assert.match(r.headers['content-type'] as string, /^text\/html/);
    assert.match(r.body, /<title>exitnode TNoDB API<\/title>/);
    const urls = [...r.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(urls.length >= 4, `the page loads its scripts and styles: ${urls.join(' ')}`);
    for (const u of urls) {
      assert.match(u, /^\/docs\/static\//, `${u} comes from this server`);
      const f = await h.call('GET', u);
      assert.equal(f.statusCode, 200, `${u}: ${f.statusCode}`);
      assert.ok(f.rawPayload.length > 0, `${u} is not empty`);
    }
    const init = await h.call('GET', '/docs/static/swagger-initializer.js');
    assert.match(init.body, /validatorUrl: null/, 'no online validator badge');
    assert.match(init.body, /url: resolveUrl\('\.\/json'\)/, 'the viewer reads /docs/json of this server');
  });

  it('keeps the OpenAPI document at /docs/json, listing the routes but not the viewer', async () => {
    const doc = (await h.call('GET', '/docs/json')).json();
    assert.equal(doc.openapi.slice(0, 2), '3.');
    assert.ok(doc.paths['/v1/farms']);
    assert.ok(doc.paths['/healthz']);
    assert.ok(!Object.keys(doc.paths).some((p) => p.startsWith('/docs/static')), 'the viewer is hidden');
    const yaml = await h.call('GET', '/docs/yaml');
    assert.match(yaml.body, /^openapi: 3\./);
  });
});

describe('which versions the server talks to', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(() => h.close());

  it('answers every request with its version, and /healthz says it', async () => {
    const r = await h.call('GET', '/healthz');
    assert.equal(r.headers[VERSION_HEADER], VERSION);
    assert.equal(r.json().version, VERSION);
    const nf = await h.call('GET', '/nope');
    assert.equal(nf.headers[VERSION_HEADER], VERSION);
  });

  it('serves a client of the same major version and one that sends no version', async () => {
    const same = `${VERSION.split('.')[0]}.999.0`;
    const a = await h.call('POST', '/v1/farms', ADMIN, { name: 'xv-same' }, { [VERSION_HEADER]: same });
    assert.equal(a.statusCode, 201, a.body);
    const b = await h.call('POST', '/v1/farms', ADMIN, { name: 'xv-none' });
    assert.equal(b.statusCode, 201, b.body);
  });

  it('refuses another major version or a header that is no version, before authentication', async () => {
    const other = `${Number(VERSION.split('.')[0]) + 1}.0.0`;
    for (const v of [other, 'garbage']) {
      for (const token of [ADMIN, undefined]) {
        const r = await h.call('GET', '/v1/farms', token, undefined, { [VERSION_HEADER]: v });
        assert.equal(r.statusCode, 426, `${v}: ${r.body}`);
        assert.equal(r.json().error.code, 'VERSION_MISMATCH');
        assert.match(r.json().error.message, new RegExp(`runs exitnode ${VERSION.replace(/\./g, '\\.')}`));
        assert.equal(r.headers[VERSION_HEADER], VERSION);
      }
    }
  });

  it('the client sends its version and remembers the server’s', async () => {
    let seen: string | string[] | undefined;
    const srv = createServer((req, res) => {
      seen = req.headers[VERSION_HEADER];
      res.writeHead(200, { 'content-type': 'application/json', [VERSION_HEADER]: '0.0.7' }).end('{}');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const c = new TnodbClient({ server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, token: ADMIN });
      assert.equal(c.serverVersion, undefined);
      await c.request('GET', '/v1/farms/x');
      assert.equal(seen, VERSION);
      assert.equal(c.serverVersion, '0.0.7');
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});
