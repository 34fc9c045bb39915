// Guard for tests that need root and network namespaces (*.root.test.ts).
// Outside CI such a test is skipped with the reason; under CI=true a missing capability is a
// failure, never a skip (the issue asks CI to fail, not to skip, when these tests cannot run).
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

let probed: string | undefined | null = null;

/** Why root/netns tests cannot run here, or undefined when they can. */
export function rootUnavailable(): string | undefined {
  if (probed !== null) return probed;
  if (process.getuid?.() !== 0) {
    probed = 'not running as root';
  } else {
    const name = `xnprobe-${process.pid}`;
    const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
    if (add.status !== 0)
      probed = `cannot create a network namespace: ${(add.stderr || add.error?.message || '').trim()}`;
    else {
      spawnSync('ip', ['netns', 'del', name]);
      probed = undefined;
    }
  }
  return probed;
}

/** Call first in a root test: skips it (or, under CI, fails it) when root/netns is unavailable. Returns true when the test may go on. */
export function requireRoot(t: TestContext, tools: string[] = []): boolean {
  let why = rootUnavailable();
  for (const tool of tools) {
    if (why) break;
    if (spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool]).status !== 0) why = `${tool} is not installed`;
  }
  if (!why) return true;
  if (process.env.CI === 'true') throw new Error(`root test cannot run under CI: ${why}`);
  t.skip(why);
  return false;
}

/** Same guard for a whole describe() block: returns the reason to skip, throws under CI. */
export function rootSkipReason(tools: string[] = []): string | undefined {
  let why = rootUnavailable();
  for (const tool of tools) {
    if (why) break;
    if (spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool]).status !== 0) why = `${tool} is not installed`;
  }
  if (why && process.env.CI === 'true') throw new Error(`root test cannot run under CI: ${why}`);
  return why;
}
