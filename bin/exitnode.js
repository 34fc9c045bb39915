#!/usr/bin/env node
// The `exitnode` executable. An installed package (`npm pack`, `npm install -g`) runs the
// JavaScript that `npm run build` compiled into dist/, with plain node. A checkout (src/ beside
// bin/) runs the TypeScript through tsx's loader, so that `npx exitnode` works straight after
// `npm ci` with no build step; EXITNODE_BUILT=1 makes a checkout run its dist/ instead.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/main.ts', import.meta.url);
let main;
if (process.env.EXITNODE_BUILT !== '1' && existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(sources.href));
} else {
  // --debug prints stacks: name the TypeScript lines (the source maps carry the sources).
  if (process.argv.includes('--debug')) process.setSourceMapsEnabled(true);
  // A URL, not a literal specifier: dist/ exists only after a build (checkers resolve literals).
  ({ main } = await import(new URL('../dist/cli/main.js', import.meta.url).href));
}
process.exitCode = await main(process.argv.slice(2));
