#!/usr/bin/env node
// Runs the test suites on node:test through tsx and closes with one line "tests: N passed, N failed".
//   node scripts/test.mjs            unit tests, then root/namespace tests (*.root.test.ts)
//   node scripts/test.mjs --unit     unit tests only
//   node scripts/test.mjs --root     root tests only
//   node scripts/test.mjs FILE...    just these files
// Root tests run one file at a time: they build network namespaces and share the host's
// neighbour table and /var/run/wireguard. Under CI=true they fail (never skip) without root.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tmpdir } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const only = args.filter((a) => !a.startsWith('--'));
const want = args.includes('--unit') ? 'unit' : args.includes('--root') ? 'root' : 'all';

function walk(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out.sort();
}

const all = only.length ? only : [...walk(join(root, 'src')), ...walk(join(root, 'test'))];
const unit = all.filter((f) => !f.endsWith('.root.test.ts'));
const rootTests = all.filter((f) => f.endsWith('.root.test.ts'));
const groups = [];
if (want !== 'root' && unit.length) groups.push({ name: 'unit', files: unit, concurrency: 2 });
if (want !== 'unit' && rootTests.length) groups.push({ name: 'root', files: rootTests, concurrency: 1 });

let passed = 0,
  failed = 0,
  skipped = 0,
  status = 0;
const tmp = mkdtempSync(join(tmpdir(), 'exitnode-test-'));
for (const g of groups) {
  const tap = join(tmp, `${g.name}.tap`);
  console.log(`\n== ${g.name} tests: ${g.files.length} files`);
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${g.concurrency}`,
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      '--test-reporter=tap',
      `--test-reporter-destination=${tap}`,
      ...g.files,
    ],
    { cwd: root, stdio: 'inherit', env: process.env },
  );
  let text = '';
  try {
    text = readFileSync(tap, 'utf8');
  } catch {
    /* runner died before writing */
  }
  const num = (k) => Number((text.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
  passed += num('pass');
  failed += num('fail') + num('cancelled');
  skipped += num('skipped');
  if (r.status !== 0) status = 1;
  if (!text) {
    failed += 1;
    status = 1;
    console.error(`test runner for ${g.name} exited with ${r.status} and no report`);
  }
}
rmSync(tmp, { recursive: true, force: true });
console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status || (failed ? 1 : 0));
