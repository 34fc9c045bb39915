// The dashboard's static files (web/) at /ui/, and its two small libraries (Preact and htm, npm
// dependencies) at /ui/vendor/: read once at start, served from memory with an ETag. Nothing comes
// from elsewhere, so the page works offline. The page signs in with a token that it keeps in the
// browser's sessionStorage and sends as a bearer header to /v1; these files need no token.
// The Content-Security-Policy allows this origin only; the one inline script, the import map, is
// allowed by its hash.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

const WEB = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

interface File {
  body: Buffer;
  type: string;
  etag: string;
}

function vendorFiles(): Record<string, string> {
  // Each package's CommonJS entry sits beside its ES module build (dist/NAME.js, dist/NAME.mjs).
  const require = createRequire(import.meta.url);
  const esm = (name: string, file: string): string => join(dirname(require.resolve(name)), file);
  return {
    'vendor/preact.mjs': esm('preact', 'preact.mjs'),
    'vendor/hooks.mjs': esm('preact/hooks', 'hooks.mjs'),
    'vendor/htm.mjs': esm('htm', 'htm.mjs'),
  };
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (TYPES[extname(e.name)] && !e.name.includes('.test.')) out.push(p);
  }
  return out;
}

/** The files under /ui/ by path relative to it ("" is index.html), and the page's CSP. */
export function loadUi(): { files: Map<string, File>; csp: string } {
  const files = new Map<string, File>();
  const add = (path: string, abs: string): void => {
    const body = readFileSync(abs);
    files.set(path, {
      body,
      type: TYPES[extname(abs)] ?? 'application/octet-stream',
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    });
  };
  if (statSync(WEB, { throwIfNoEntry: false })?.isDirectory())
    for (const f of walk(WEB)) add(relative(WEB, f).split('\\').join('/'), f);
  for (const [path, abs] of Object.entries(vendorFiles())) add(path, abs);
  const index = files.get('index.html');
  const hashes: string[] = [];
  if (index) {
    files.set('', index);
    for (const m of index.body.toString('utf8').matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g))
      hashes.push(`'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`);
  }
  const csp = [
    "default-src 'self'",
    `script-src 'self' ${hashes.join(' ')}`.trim(),
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { files, csp };
}

export function uiRoutes(app: FastifyInstance): void {
  const { files, csp } = loadUi();
  app.get('/ui', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/ui/', 302));
  app.get('/ui/*', { schema: { hide: true } }, async (req, reply) => {
    const path = (req.params as { '*': string })['*'];
    const f = files.get(path);
    if (!f)
      return reply.code(404).send({
        error: { code: 'NOT_FOUND', message: `no file ${JSON.stringify(path.slice(0, 100))} in the dashboard` },
      });
    void reply
      .header('content-type', f.type)
      .header('etag', f.etag)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer');
    if (f.type.startsWith('text/html'))
      void reply.header('content-security-policy', csp).header('x-frame-options', 'DENY');
    if (req.headers['if-none-match'] === f.etag) return reply.code(304).send();
    return reply.send(f.body);
  });
}
