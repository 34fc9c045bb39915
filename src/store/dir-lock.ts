// One PGlite data directory, one process. PGlite takes no lock of its own: two servers on one
// directory both answered, handed out the same ids, and lost each other's writes. The lock is a
// file beside the directory (DIR.lock) made with an exclusive link(2), holding the owner's PID,
// the start time of that PID (from /proc, so that a PID reused by another program is not taken
// for the owner) and the host name. It is taken in the thread that opens the store, whether
// PGlite then runs on that thread or in a worker, and released when the store closes or the
// process exits. After a crash (kill -9, power loss) the lock names a process that is gone: the
// next opener takes it over and says so.
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ExitnodeError, q } from '../core/errors.js';
import { StoreErrors } from './errors.js';

interface Owner {
  pid: number;
  /** Field 22 of /proc/PID/stat (start time in clock ticks since boot), when known. */
  start?: string;
  host: string;
  /** ISO time the lock was taken (for the message). */
  since: string;
}

export interface DirLock {
  readonly path: string;
  /** A stale lock of a process that is gone, taken over (for the log), or undefined. */
  readonly tookOver: Owner | undefined;
  release(): void;
}

function procStart(pid: number): string | undefined {
  try {
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function alive(o: Owner): boolean {
  if (o.host !== hostname()) return true; // another machine (a shared file system): we cannot tell
  try {
    process.kill(o.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: a process of another user lives under that PID
  }
  // The PID lives; is it still the same process?
  const start = procStart(o.pid);
  return !(o.start && start && o.start !== start);
}

function readOwner(path: string): Owner | undefined {
  try {
    const o = JSON.parse(readFileSync(path, 'utf8')) as Owner;
    return typeof o?.pid === 'number' ? o : undefined;
  } catch {
    return undefined;
  }
}

/** Locks this process holds, released at exit. */
const held = new Set<string>();
let exitHook = false;

/** The lock path of a data directory: DIR.lock beside it (PGlite owns what is inside DIR). */
export function lockPathOf(dataDir: string): string {
  return join(dirname(dataDir), `${basename(dataDir)}.lock`);
}

/**
 * Takes the lock of `dataDir` or throws DATA_DIR_LOCKED naming the owner; a lock left by a
 * process that is gone is taken over (tookOver says whose).
 */
export function lockDataDir(dataDir: string): DirLock {
  const path = lockPathOf(dataDir);
  ensureDir(dirname(path), 'directory of the database');
  const me: Owner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const start = procStart(process.pid);
  if (start) me.start = start;
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(tmp, `${JSON.stringify(me)}\n`, { mode: 0o600 });
  } catch (e) {
    throw new ExitnodeError(
      StoreErrors.DATA_DIR,
      `cannot write in ${q(dirname(path))}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  let tookOver: Owner | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path); // atomic: fails with EEXIST if anyone holds the lock
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw e;
      }
      const owner = readOwner(path);
      if (owner && alive(owner)) throw lockedBy(owner, dataDir, path, me.host);
      // Stale (its process is gone) or unreadable (a crash while writing it). Move it aside
      // atomically and judge what was moved: another starter may have taken over in between,
      // and its fresh lock goes back.
      const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
      try {
        renameSync(path, aside);
      } catch {
        continue; // gone meanwhile: link again
      }
      const moved = readOwner(aside);
      if (moved && alive(moved)) {
        try {
          linkSync(aside, path);
        } catch {
          /* a third starter holds it now: judged on the next round */
        }
        rmSync(aside, { force: true });
        continue;
      }
      rmSync(aside, { force: true });
      tookOver = moved ?? { pid: 0, host: me.host, since: 'unknown (an unreadable lock file)' };
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  held.add(path);
  if (!exitHook) {
    exitHook = true;
    // A crash that still runs exit handlers (an uncaught exception) leaves no lock behind.
    process.on('exit', () => {
      for (const p of held) releaseIfMine(p);
    });
  }
  let released = false;
  return {
    path,
    tookOver,
    release: () => {
      if (released) return;
      released = true;
      held.delete(path);
      releaseIfMine(path);
    },
  };
}

function lockedBy(owner: Owner, dataDir: string, path: string, host: string): ExitnodeError {
  const who = owner.pid === process.pid ? 'this process already' : `process ${owner.pid}`;
  const where = owner.host !== host ? ` on host ${q(owner.host)}` : '';
  return new ExitnodeError(
    StoreErrors.DATA_DIR_LOCKED,
    `the data directory ${q(dataDir)} is in use by ${who}${where} (since ${owner.since}): one PGlite data directory serves one server; stop that one or use another directory${where ? ` (if it is gone, remove ${q(path)})` : ''}`,
  );
}

function releaseIfMine(path: string): void {
  const o = readOwner(path);
  if (o?.pid === process.pid && o.host === hostname()) {
    try {
      unlinkSync(path);
    } catch {
      /* gone already */
    }
  }
}

/**
 * Makes directory `dir` and its missing parents, one level at a time (mode 0700 for the new
 * ones), or throws DATA_DIR naming the level that failed and why. Not mkdirSync's recursive
 * mode: on Node 20 it loops forever under /proc (`--data /proc/self/nope` hung at 77% CPU).
 */
export function ensureDir(dir: string, what = 'data directory'): void {
  const fail = (path: string, why: string): ExitnodeError =>
    new ExitnodeError(
      StoreErrors.DATA_DIR,
      path === dir ? `the ${what} ${q(dir)} ${why}` : `the ${what} ${q(dir)} cannot be made: ${q(path)} ${why}`,
    );
  const missing: string[] = [];
  for (let p = resolve(dir); ; p = dirname(p)) {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw fail(p, `cannot be read (${code})`);
      if (dirname(p) === p) throw fail(p, 'does not exist');
      missing.push(p);
      continue;
    }
    if (!st.isDirectory()) throw fail(p, 'is a file, not a directory');
    break;
  }
  for (const p of missing.reverse()) {
    try {
      mkdirSync(p, { mode: 0o700 });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw fail(p, `cannot be created (${code ?? (e as Error).message})`);
    }
  }
}
