// The version rule (same major talks) and VERSION kept equal to package.json's version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { VERSION, compatible, majorOf } from './version.js';

test('VERSION is the version in package.json', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version, 'bump src/core/version.ts with package.json');
});

test('majorOf reads MAJOR.MINOR.PATCH with an optional pre-release or build, nothing else', () => {
  const cases: [string, number | undefined][] = [
    ['0.1.0', 0],
    ['1.2.3', 1],
    ['12.0.0-rc.1', 12],
    ['2.0.0+build.5', 2],
    ['1.2', undefined],
    ['v1.2.3', undefined],
    ['', undefined],
    ['1.2.3 ', undefined],
    ['x.y.z', undefined],
    ['1.2.3-' + 'a'.repeat(65), undefined],
  ];
  for (const [v, want] of cases) assert.equal(majorOf(v), want, JSON.stringify(v));
});

test('the same major version talks, another major or a non-version does not', () => {
  const cases: [string, string, boolean][] = [
    ['0.1.0', '0.1.0', true],
    ['0.9.3', '0.1.0', true],
    ['1.0.0', '1.7.2-rc.1', true],
    ['1.0.0', '0.1.0', false],
    ['0.1.0', '1.0.0', false],
    ['garbage', '0.1.0', false],
    ['', '0.1.0', false],
  ];
  for (const [c, s, want] of cases) assert.equal(compatible(c, s), want, `${c} → ${s}`);
});
