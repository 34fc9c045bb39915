// Processes of the simulated farm: the TNoDB server and one agent per node, started detached with
// their output in a log file (so they outlive `sim up`), stopped by the PID recorded in the state,
// after checking that the PID still runs what we started (PIDs are reused).

import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ExitnodeError, q } from '../core/errors.js';
import { NETNS_DIR } from '../kernel/exec.js';
import { SimErrors } from './errors.js';

export const EXITNODE_BIN = fileURLToPath(new URL('../../bin/exitnode.js', import.meta.url));

export function startDetached(args: string[], logFile: string): number {
  const log = openSync(logFile, 'a', 0o600);
  const child = spawn(process.execPath, [EXITNODE_BIN, ...args], { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  if (!child.pid) throw new ExitnodeError(SimErrors.SIM_PROCESS, `cannot start exitnode ${args.join(' ')}`);
  return child.pid;
}

/** Whether PID runs exitnode with MARKER (e.g. the state directory or the config file) on its command line. */
export function isOurs(pid: number | undefined, marker: string): boolean {
  if (!pid) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.endsWith('exitnode.js')) && argv.some((a) => a.includes(marker));
  } catch {
    return false;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
}

export async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

/** SIGTERM (or SIGKILL), then SIGKILL after `graceMs`; true when it was running. */
export async function stopPid(
  pid: number | undefined,
  marker: string,
  signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM',
  graceMs = 5000,
): Promise<boolean> {
  if (!pid || !isOurs(pid, marker)) return false;
  try {
    process.kill(pid, signal);
  } catch {
    return false;
  }
  if (!(await waitGone(pid, graceMs))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    await waitGone(pid, 2000);
  }
  return true;
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

/** Namespaces whose name starts with PREFIX. */
export function namespacesWith(prefix: string): string[] {
  try {
    return readdirSync(NETNS_DIR).filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

/**
 * PIDs of processes whose network namespace is one of NAMESPACES (wireguard-go, pings and
 * listeners of `sim exec`): matched by the namespace's inode, so nothing else is ever touched.
 */
export function processesIn(namespaces: string[]): { pid: number; ns: string; comm: string }[] {
  const inodes = new Map<number, string>();
  for (const n of namespaces) {
    try {
      inodes.set(statSync(`${NETNS_DIR}/${n}`).ino, n);
    } catch {
      /* gone */
    }
  }
  const out: { pid: number; ns: string; comm: string }[] = [];
  if (!inodes.size) return out;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const m = /net:\[(\d+)\]/.exec(readlinkSync(`/proc/${d}/ns/net`));
      const ns = m ? inodes.get(Number(m[1])) : undefined;
      if (ns) out.push({ pid: Number(d), ns, comm: readFileSync(`/proc/${d}/comm`, 'utf8').trim() });
    } catch {
      /* exited or not ours to read */
    }
  }
  return out;
}

export async function waitFor<T>(
  what: string,
  ms: number,
  fn: () => Promise<T | undefined> | T | undefined,
  everyMs = 100,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end)
      throw new ExitnodeError(SimErrors.SIM_TIMEOUT, `${what}: not done after ${Math.round(ms / 1000)} s`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function tail(file: string, lines = 5): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
}

export { q };
