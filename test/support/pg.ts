// A throwaway PostgreSQL cluster for tests: Debian's binaries, its own data directory and unix
// socket directory (no TCP port), started once per test file and removed at exit. initdb refuses
// to run as root, so as root the cluster runs as the `postgres` user.
// EXITNODE_TEST_PG_URL points at an existing server instead (each test gets a fresh database).
// Outside CI a missing PostgreSQL skips the tests with the reason; under CI=true it fails them.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface PgCluster {
  /** A new, empty database on the cluster; returns its URL. */
  createDb(prefix?: string): Promise<string>;
  /** The URL of the maintenance database. */
  readonly adminUrl: string;
  stop(): void;
}

function findBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(base, versions[0], 'bin') : undefined;
}

let probed: string | undefined | null = null;

/** Why the PostgreSQL tests cannot run here, or undefined when they can. */
export function pgUnavailable(): string | undefined {
  if (probed !== null) return probed;
  if (process.env.EXITNODE_TEST_PG_URL) return (probed = undefined);
  const bin = findBin();
  if (!bin) probed = 'PostgreSQL is not installed (apt-get install postgresql) and EXITNODE_TEST_PG_URL is not set';
  else if (process.getuid?.() === 0 && spawnSync('id', ['postgres']).status !== 0)
    probed = 'running as root and there is no postgres user to run initdb as';
  else probed = undefined;
  return probed;
}

/** For describe({ skip }): the reason to skip, or undefined; throws under CI=true. */
export function pgSkipReason(): string | undefined {
  const why = pgUnavailable();
  if (why && process.env.CI === 'true') throw new Error(`PostgreSQL tests cannot run under CI: ${why}`);
  return why;
}

let cluster: PgCluster | undefined;

/** The cluster of this test process, started on first use. */
export async function pgCluster(opts: { fast?: boolean } = {}): Promise<PgCluster> {
  if (cluster) return cluster;
  const why = pgUnavailable();
  if (why) throw new Error(why);
  const external = process.env.EXITNODE_TEST_PG_URL;
  if (external) {
    cluster = clusterAt(external, () => undefined);
    return cluster;
  }
  const bin = findBin()!;
  const dir = mkdtempSync(join(tmpdir(), 'xts-pg-'));
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]): void => {
    const argv = asRoot ? ['-u', 'postgres', '--', join(bin, cmd), ...args] : args;
    execFileSync(asRoot ? 'runuser' : join(bin, cmd), argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
  };
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  const settings = ['-k', dir, '-c', 'listen_addresses=', '-c', 'max_connections=200'];
  if (opts.fast !== false)
    settings.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      /* already down */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', stop);
  try {
    run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-o', settings.join(' '), 'start']);
  } catch (e) {
    stop();
    throw e;
  }
  // A test process killed by a signal runs no exit handler: a detached watchdog stops the cluster
  // and removes its directory within a second of this process's end, however it ends.
  const pgCtl = asRoot ? `runuser -u postgres -- ${join(bin, 'pg_ctl')}` : join(bin, 'pg_ctl');
  spawn(
    'sh',
    [
      '-c',
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ${pgCtl} -D "$1" -m immediate -w stop >/dev/null 2>&1; rm -rf "$2"`,
      'watchdog',
      data,
      dir,
    ],
    { detached: true, stdio: 'ignore' },
  ).unref();
  cluster = clusterAt(`postgresql://postgres@localhost/postgres?host=${encodeURIComponent(dir)}`, stop);
  return cluster;
}

function clusterAt(adminUrl: string, stop: () => void): PgCluster {
  return {
    adminUrl,
    stop,
    async createDb(prefix = 'xts') {
      const pg = (await import('pg')).default;
      const name = `${prefix}_${randomBytes(5).toString('hex')}`;
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      const u = new URL(adminUrl);
      u.pathname = `/${name}`;
      return u.toString();
    },
  };
}
