// keepalived on this host (stage 2, DESIGN.md 8.2): one instance per candidate gateway, its files
// in STATE/vrrp/NS/ (src/compile/keepalived.ts names them). Started detached in the gateway
// namespace like wireguard-go, so that it outlives the agent; found again by its pid file and
// its command line; reloaded with SIGHUP, stopped with SIGTERM. Its state comes from the file its
// notify FIFO reader rewrites on every transition.

import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  watch,
  writeFileSync,
  type FSWatcher,
} from 'node:fs';
import { join } from 'node:path';
import { VRRP_FILES, vrrpDir, vrrpHash, type VrrpStateName } from '../compile/keepalived.js';
import type { VrrpSpec } from '../compile/desired.js';
import type { ActualVrrp } from '../reconcile/actual.js';
import { inNs, NETNS_DIR } from './exec.js';

export interface VrrpStatus {
  state: VrrpStateName;
  priority: number;
  /** Unix ms of the last transition. */
  since: number;
}

function vrrpRoot(stateDir: string): string {
  return join(stateDir, 'vrrp');
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** A live keepalived started on DIR's configuration (a PID can be reused: its command line says). */
export function isKeepalived(pid: number, dir: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return (
      argv.some((a) => a === 'keepalived' || a.endsWith('/keepalived')) && argv.includes(join(dir, VRRP_FILES.config))
    );
  } catch {
    return false;
  }
}

function pidOf(dir: string, file: string): number | undefined {
  const pid = Number(readText(join(dir, file))?.trim());
  return Number.isInteger(pid) && pid > 1 && isKeepalived(pid, dir) ? pid : undefined;
}

function instanceDirs(stateDir: string): string[] {
  try {
    return readdirSync(vrrpRoot(stateDir), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

/** Every keepalived directory of the state directory: its running parent process and its configuration's hash. */
export function observeVrrp(stateDir: string): Map<string, ActualVrrp> {
  const out = new Map<string, ActualVrrp>();
  for (const ns of instanceDirs(stateDir)) {
    const dir = vrrpDir(stateDir, ns);
    const v: ActualVrrp = { ns };
    const pid = pidOf(dir, VRRP_FILES.pid);
    if (pid !== undefined) v.pid = pid;
    const config = readText(join(dir, VRRP_FILES.config));
    if (config !== undefined) v.hash = vrrpHash(config);
    out.set(ns, v);
  }
  return out;
}

/** Parses the state file: "STATE PRIORITY UNIX-MS". */
export function parseVrrpState(text: string | undefined): VrrpStatus | undefined {
  const m = /^(MASTER|BACKUP|FAULT|STOPPED) (\d+) (\d+)\s*$/.exec(text ?? '');
  return m ? { state: m[1] as VrrpStateName, priority: Number(m[2]), since: Number(m[3]) } : undefined;
}

/** The state of every keepalived of the state directory; one that is not running is STOPPED. */
export function vrrpStates(stateDir: string): Map<string, VrrpStatus> {
  const out = new Map<string, VrrpStatus>();
  for (const ns of instanceDirs(stateDir)) {
    const dir = vrrpDir(stateDir, ns);
    const file = parseVrrpState(readText(join(dir, VRRP_FILES.state)));
    const running = pidOf(dir, VRRP_FILES.pid) !== undefined;
    const configured = Number(/^\s*priority (\d+)$/m.exec(readText(join(dir, VRRP_FILES.config)) ?? '')?.[1] ?? 0);
    if (!running) out.set(ns, { state: 'STOPPED', priority: file?.priority ?? configured, since: file?.since ?? 0 });
    // A reload with a new priority is no transition: the configuration says what it runs with.
    else if (file) out.set(ns, { ...file, priority: configured || file.priority });
    else {
      // Started, no transition yet: keepalived starts every instance in BACKUP.
      let since = 0;
      try {
        since = Math.round(statSync(join(dir, VRRP_FILES.pid)).mtimeMs);
      } catch {
        /* gone meanwhile */
      }
      out.set(ns, { state: 'BACKUP', priority: configured, since });
    }
  }
  return out;
}

function statesKey(m: Map<string, VrrpStatus>): string {
  return [...m].map(([ns, s]) => `${ns} ${s.state} ${s.priority} ${s.since}`).join('\n');
}

/**
 * Calls ONCHANGE with every instance's state whenever one changes: inotify on the state
 * directories (the notify reader renames a new state file in), and a poll every POLLMS for what
 * inotify cannot tell (a keepalived that died). Returns the function that stops watching.
 */
export function watchVrrp(
  stateDir: string,
  onChange: (states: Map<string, VrrpStatus>) => void,
  pollMs = 1000,
): () => void {
  let last = statesKey(vrrpStates(stateDir));
  const watchers = new Map<string, FSWatcher>();
  let closed = false;
  const check = (): void => {
    if (closed) return;
    watchDirs();
    const now = vrrpStates(stateDir);
    const key = statesKey(now);
    if (key !== last) {
      last = key;
      onChange(now);
    }
  };
  const watchOne = (dir: string): void => {
    if (watchers.has(dir)) return;
    try {
      const w = watch(dir, { persistent: false }, () => check());
      w.on('error', () => {
        w.close();
        watchers.delete(dir);
      });
      watchers.set(dir, w);
    } catch {
      /* not there (yet): the poll looks again */
    }
  };
  const watchDirs = (): void => {
    watchOne(vrrpRoot(stateDir));
    for (const ns of instanceDirs(stateDir)) watchOne(vrrpDir(stateDir, ns));
  };
  watchDirs();
  const timer = setInterval(check, pollMs);
  timer.unref();
  return () => {
    closed = true;
    clearInterval(timer);
    for (const w of watchers.values()) w.close();
    watchers.clear();
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(10);
  }
  return cond();
}

/** The configuration and the notify reader, written before a start or a reload. */
function writeFiles(dir: string, v: VrrpSpec, notifyScript: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // enable_script_security: a script keepalived runs must be writable by root only.
  writeFileSync(join(dir, VRRP_FILES.notify), notifyScript, { mode: 0o700 });
  writeFileSync(join(dir, VRRP_FILES.config), v.config, { mode: 0o600 });
}

/** Starts keepalived for V in its namespace, detached; undefined, or why it did not come up. */
export async function startKeepalived(
  stateDir: string,
  v: VrrpSpec,
  notifyScript: string,
): Promise<string | undefined> {
  if (!existsSync(join(NETNS_DIR, v.ns))) return `namespace ${v.ns} does not exist`;
  const dir = vrrpDir(stateDir, v.ns);
  writeFiles(dir, v, notifyScript);
  // A state file of an earlier run would stand for this one until its first transition.
  rmSync(join(dir, VRRP_FILES.state), { force: true });
  rmSync(join(dir, VRRP_FILES.pid), { force: true });
  rmSync(join(dir, VRRP_FILES.vrrpPid), { force: true });
  const argv = keepalivedArgv(stateDir, v.ns);
  const log = openSync(join(dir, VRRP_FILES.log), 'a', 0o600);
  // -n: keepalived stays in the foreground (nsenter execs it, so the PID is its own); detached
  // puts it in a session of its own, so that it outlives the agent.
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  let exited: number | null = null;
  child.on('exit', (c) => (exited = c ?? 1));
  child.on('error', () => (exited = 127));
  child.unref();
  // Up once its VRRP child has written its pid file (the parent's comes before it).
  const ok = await waitFor(() => exited !== null || pidOf(dir, VRRP_FILES.vrrpPid) !== undefined, 5000);
  if (ok && exited === null) return undefined;
  const tail = (readText(join(dir, VRRP_FILES.log)) ?? '').trim().split('\n').slice(-2).join('; ');
  return `keepalived ${exited !== null ? `exited with status ${exited}` : 'did not start its VRRP process within 5 s'}${tail ? `: ${tail}` : ''}`;
}

/** The command line that runs the keepalived of gateway NS (planText prints it too). */
export function keepalivedArgv(stateDir: string, ns: string): string[] {
  const dir = vrrpDir(stateDir, ns);
  return inNs(ns, [
    'keepalived',
    '--dont-fork',
    '--log-console',
    '--vrrp',
    '--use-file',
    join(dir, VRRP_FILES.config),
    '--pid',
    join(dir, VRRP_FILES.pid),
    '--vrrp_pid',
    join(dir, VRRP_FILES.vrrpPid),
  ]);
}

/** Rewrites the configuration and sends SIGHUP; undefined, or why not. */
export function reloadKeepalived(stateDir: string, v: VrrpSpec, pid: number, notifyScript: string): string | undefined {
  const dir = vrrpDir(stateDir, v.ns);
  if (!isKeepalived(pid, dir)) return `keepalived (pid ${pid}) is not running`;
  writeFiles(dir, v, notifyScript);
  try {
    process.kill(pid, 'SIGHUP');
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

/**
 * Stops the keepalived of NS (SIGTERM: it gives up mastership with a priority-0 advert and
 * removes its addresses), waits for it and its VRRP child, then removes STATE/vrrp/NS/.
 */
export async function stopKeepalived(
  stateDir: string,
  ns: string,
  pid: number | undefined,
): Promise<string | undefined> {
  const dir = vrrpDir(stateDir, ns);
  const child = pidOf(dir, VRRP_FILES.vrrpPid);
  const procs = [pid, child].filter((p): p is number => p !== undefined && isKeepalived(p, dir));
  if (pid !== undefined && isKeepalived(pid, dir)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone meanwhile */
    }
  } else if (child !== undefined) {
    try {
      process.kill(child, 'SIGTERM');
    } catch {
      /* gone meanwhile */
    }
  }
  if (!(await waitFor(() => procs.every((p) => !isKeepalived(p, dir)), 5000))) {
    for (const p of procs)
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    if (!(await waitFor(() => procs.every((p) => !isKeepalived(p, dir)), 2000)))
      return `keepalived (pid ${procs.join(', ')}) did not stop`;
  }
  rmSync(dir, { recursive: true, force: true });
  return undefined;
}

/**
 * Planned handover: the instance of NS goes to FAULT through its drain file, which makes a
 * master send a priority-0 advert (the backup takes over after its skew time), holds it there
 * for HOLDMS, then lets it back as a backup (nopreempt keeps it there while the other answers).
 * Nothing to do when keepalived is not running.
 */
export async function vrrpDrain(stateDir: string, ns: string, holdMs = 500): Promise<void> {
  const dir = vrrpDir(stateDir, ns);
  if (pidOf(dir, VRRP_FILES.pid) === undefined) return;
  const state = (): VrrpStateName | undefined => vrrpStates(stateDir).get(ns)?.state;
  // Written in place (keepalived follows the file with inotify, IN_CLOSE_WRITE).
  writeFileSync(join(dir, VRRP_FILES.drain), '1\n');
  try {
    await waitFor(() => state() === 'FAULT' || state() === 'STOPPED', 3000);
    await sleep(holdMs);
  } finally {
    writeFileSync(join(dir, VRRP_FILES.drain), '0\n');
  }
  await waitFor(() => state() !== 'FAULT', 3000);
}
