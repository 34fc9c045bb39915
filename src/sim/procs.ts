// The simulated farm's own processes, in one place: the only module of the sim that starts or
// signals a program (the kernel's `run` stays the way to run a short command and read its output).
//
//   detached   the TNoDB server, the agents and the relays: started detached with their output in
//              a log file (so they outlive `sim up`), stopped by the PID recorded in the state after
//              checking that the PID still runs what we started (PIDs are reused)
//   streams    long-running programs in a namespace whose output is read line by line (the ping
//              streams of a failover measurement, the UDP listener of sim check)
//   attached   `sim exec`: a command in a namespace on the user's terminal
//   ending     processes found in the sim's namespaces (wireguard-go, pings, listeners) or by the
//              PID files the agents write: signalled by PID and waited for until /proc says they
//              are gone (a zombie counts as gone: it holds no namespace, socket or device)

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitnodeError, q } from '../core/errors.js';
import { parsePidFileName, WG_SOCKET_DIR } from '../core/ownership.js';
import { NETNS_DIR, inNs } from '../kernel/exec.js';
import { SimErrors } from './errors.js';

export const EXITNODE_BIN = fileURLToPath(new URL('../../bin/exitnode.js', import.meta.url));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * argv that runs ARGV in a mount namespace of its own in which DIR is bound on wireguard-go's socket
 * directory (/var/run/wireguard): a simulated node's own view of its UAPI sockets, which are named
 * by interface only (two candidates of a slot on one host both have wg-h-A). Everything else stays
 * shared with the host: the propagation is left as it is (/run/netns is a shared mount, so the
 * namespaces an agent adds or deletes are the host's), and only the mount that holds the socket
 * directory is made private in the copy, so that the bind stays in it. Processes started inside
 * (wireguard-go, keepalived, `wg`) inherit it; a later process binds the same DIR and sees the
 * same sockets, so the directory outlives any one agent.
 */
export function withWgDir(dir: string, argv: string[]): string[] {
  const script = [
    'set -e',
    'd=$1; shift',
    `mkdir -p ${WG_SOCKET_DIR}`,
    `mount --make-private "$(findmnt -n -o TARGET -T ${WG_SOCKET_DIR})"`,
    `mount --bind "$d" ${WG_SOCKET_DIR}`,
    'exec "$@"',
  ].join('\n');
  return ['unshare', '--mount', '--propagation', 'unchanged', '--', 'sh', '-c', script, 'sh', dir, ...argv];
}

export function startDetached(args: string[], logFile: string, o: { wgDir?: string } = {}): number {
  const log = openSync(logFile, 'a', 0o600);
  const argv = [process.execPath, EXITNODE_BIN, ...args];
  const full = o.wgDir ? withWgDir(o.wgDir, argv) : argv;
  const child = spawn(full[0]!, full.slice(1), { detached: true, stdio: ['ignore', log, log] });
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

/** Whether PID exists and is not a zombie (a zombie has released its namespaces, files and devices). */
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
    await sleep(25);
  }
  return true;
}

/** Sends SIGNAL to every PID; returns those it reached. */
export function signal(pids: number[], sig: NodeJS.Signals): number[] {
  return pids.filter((pid) => {
    try {
      process.kill(pid, sig);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Ends PIDS and returns only when every one is gone: SIG (default SIGTERM) to each, then, for those
 * still there after GRACEMS, SIGKILL and up to KILLWAITMS more. `alive` lists any that outlived
 * even that (a process stuck in the kernel); `ended` the ones that were running.
 */
export async function endProcesses(
  pids: number[],
  o: { signal?: NodeJS.Signals; graceMs?: number; killWaitMs?: number } = {},
): Promise<{ ended: number[]; alive: number[] }> {
  const sig = o.signal ?? 'SIGTERM';
  const ended = signal([...new Set(pids)].filter(alive), sig);
  const waitAll = async (list: number[], ms: number): Promise<number[]> => {
    const end = Date.now() + ms;
    let left = list.filter(alive);
    while (left.length && Date.now() < end) {
      await sleep(25);
      left = left.filter(alive);
    }
    return left;
  };
  let left = await waitAll(ended, o.graceMs ?? 5000);
  if (left.length && sig !== 'SIGKILL') {
    signal(left, 'SIGKILL');
    left = await waitAll(left, o.killWaitMs ?? 5000);
  }
  return { ended, alive: left };
}

/** SIGTERM (or SIGKILL), then SIGKILL after `graceMs`; true when it was running. */
export async function stopPid(
  pid: number | undefined,
  marker: string,
  sig: 'SIGTERM' | 'SIGKILL' = 'SIGTERM',
  graceMs = 5000,
): Promise<boolean> {
  if (!pid || !isOurs(pid, marker)) return false;
  const r = await endProcesses([pid], { signal: sig, graceMs, killWaitMs: 2000 });
  return r.ended.length > 0;
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

/** Namespaces whose name starts with PREFIX (none when /run/netns does not exist yet). */
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

/** The command line of PID as its arguments ([] when it is gone or a zombie). */
export function argvOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * The wireguard-go processes an agent recorded in STATEDIR/run/NAME.pid that still run
 * wireguard-go for NAME (a PID reused by something else is left alone).
 */
export function wireguardFromPidFiles(stateDir: string): { pid: number; name: string }[] {
  const dir = join(stateDir, 'run');
  let files: string[] = [];
  try {
    files = readdirSync(dir);
  } catch {
    return [];
  }
  return files.flatMap((f) => {
    const name = parsePidFileName(f);
    if (!name) return [];
    let pid: number;
    try {
      pid = Number(readFileSync(join(dir, f), 'utf8').trim());
    } catch {
      return [];
    }
    const argv = argvOf(pid);
    return argv.some((a) => a.endsWith('wireguard-go')) && argv.includes(name) ? [{ pid, name }] : [];
  });
}

/**
 * The processes recorded in the *.pid files anywhere under DIR that still run COMM (by its
 * command line: a PID reused by something else is left alone).
 */
export function pidsFromFilesUnder(dir: string, comm: string): { pid: number; file: string }[] {
  let files: string[] = [];
  try {
    files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.pid'));
  } catch {
    return [];
  }
  return files.flatMap((f) => {
    let pid: number;
    try {
      pid = Number(readFileSync(join(dir, f), 'utf8').trim());
    } catch {
      return [];
    }
    if (!(pid > 1) || !alive(pid)) return [];
    return argvOf(pid).some((a) => a === comm || a.endsWith(`/${comm}`)) ? [{ pid, file: f }] : [];
  });
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
    await sleep(everyMs);
  }
}

export function tail(file: string, lines = 5): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
}

/** How a streamed program ended: its status, or the signal that ended it, and its last words on stderr. */
export interface StreamExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  at: number;
}

/** A long-running program in a namespace whose stdout is read line by line. */
export class LineStream {
  /** Set once the program has exited (whether by `stop` or on its own). */
  exit: StreamExit | undefined;
  readonly exited: Promise<StreamExit>;
  private readonly child: ChildProcess;
  private stopped = false;

  constructor(ns: string, argv: string[], onLine: (line: string) => void) {
    const full = inNs(ns, argv);
    this.child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let err = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) onLine(l);
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-2000);
    });
    this.exited = new Promise((res) => {
      const done = (code: number | null, sig: NodeJS.Signals | null): void => {
        if (this.exit) return;
        if (buf) onLine(buf);
        buf = '';
        this.exit = { code, signal: sig, stderr: err.trim().split('\n').slice(-3).join('; '), at: Date.now() };
        res(this.exit);
      };
      this.child.on('close', done);
      this.child.on('error', (e) => {
        err += e.message;
        done(127, null);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether it exited before anyone asked it to stop. */
  get died(): boolean {
    return !!this.exit && !this.stopped;
  }

  stop(sig: NodeJS.Signals = 'SIGINT'): Promise<StreamExit> {
    this.stopped = true;
    if (!this.exit) this.child.kill(sig);
    return this.exited;
  }
}

/**
 * Runs COMMAND in namespace NS on this terminal (`sim exec`), with WGDIR as its wireguard-go
 * socket directory when given (a node's: `wg show` there sees that node's interfaces); its exit
 * status, 127 when it cannot start.
 */
export function runAttached(
  ns: string,
  command: string[],
  o: { wgDir?: string } = {},
): Promise<{ code: number; error?: string }> {
  return new Promise((res) => {
    const argv = ['nsenter', `--net=${NETNS_DIR}/${ns}`, ...command];
    const full = o.wgDir ? withWgDir(o.wgDir, argv) : argv;
    const c = spawn(full[0]!, full.slice(1), { stdio: 'inherit' });
    c.on('error', (e) => res({ code: 127, error: e.message }));
    c.on('close', (code) => res({ code: code ?? 1 }));
  });
}

export { q };
