#!/usr/bin/env node
// `npm run build`: compiles src/ to dist/ (ES2022 modules with source maps that carry the
// TypeScript, so stack traces under `node --enable-source-maps` name the .ts lines), then copies
// the files the code reads beside itself at run time (SQL migrations, the PGlite worker .mjs):
// every file of src/ that is not TypeScript, a test or a golden file. The installed `exitnode`
// runs dist/ with plain node; development and tests run src/ through tsx.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'src');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

let copied = 0;
function walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'golden') walk(p);
    } else if (!/\.(ts|tsx)$/.test(e.name) && !e.name.includes('.test.')) {
      const to = join(dist, relative(src, p));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(p, to);
      copied++;
    }
  }
}
walk(src);
console.log(`build: dist/ compiled from src/ (+${copied} files copied as they are)`);
