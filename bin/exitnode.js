#!/usr/bin/env node
// The `exitnode` executable. The code base is TypeScript run through tsx's loader, so that
// `npx exitnode` works straight after `npm ci` with no build step; tsx caches its output.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
