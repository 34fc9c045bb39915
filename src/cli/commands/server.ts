// exitnode server: runs TNoDB (the API over PGlite in a data directory, or a PostgreSQL server).
import { q } from '../../core/errors.js';
import { flag, opt, parse, positionals, usageError } from '../args.js';
import type { Io } from '../io.js';

export const summary = 'run the TNoDB server (embedded PostgreSQL in a data directory, or --db postgres://…)';
export const usage =
  'exitnode server [--db URL | --data DIR] [--listen HOST:PORT] [--lease-ttl S (5)] [--fence-margin S (1)] [--quarantine S] [--max-polls-per-token N (32)] [--max-polls N (4096)] [--rate-limit N/S (1000/10) | off] [--metrics-listen HOST:PORT] [--events-keep DAYS (30)] [--events-max N (200000)] [--log]\n  the dashboard is served at /ui/ (sign in with a farm or tenant token)';

function seconds(p: ReturnType<typeof parse>, name: string): number | undefined {
  const v = opt(p, name);
  if (v === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(v) || (Number(v) <= 0 && name !== 'fence-margin' && name !== 'quarantine'))
    throw usageError(`--${name} ${JSON.stringify(v)} must be a number of seconds`, usage);
  return Math.round(Number(v) * 1000);
}

function count(p: ReturnType<typeof parse>, name: string): number | undefined {
  const v = opt(p, name);
  if (v === undefined) return undefined;
  if (!/^[1-9][0-9]{0,6}$/.test(v))
    throw usageError(`--${name} ${q(v)} must be a whole number from 1 to 9999999`, usage);
  return Number(v);
}

function rateLimit(v: string | undefined): { max: number; windowMs: number } | false | undefined {
  if (v === undefined) return undefined;
  if (v === 'off') return false;
  const m = /^([1-9][0-9]{0,6})\/([0-9]{1,4}(?:\.[0-9]{1,3})?)$/.exec(v);
  if (!m || Number(m[2]) <= 0)
    throw usageError(`--rate-limit ${q(v)} must be REQUESTS/SECONDS per token (e.g. 1000/10) or off`, usage);
  return { max: Number(m[1]), windowMs: Math.round(Number(m[2]) * 1000) };
}

function days(p: ReturnType<typeof parse>, name: string): number | undefined {
  const v = opt(p, name);
  if (v === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0)
    throw usageError(`--${name} ${JSON.stringify(v)} must be a number of days above 0`, usage);
  return Math.round(Number(v) * 86_400_000);
}

function whole(p: ReturnType<typeof parse>, name: string): number | undefined {
  const v = opt(p, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,9}$/.test(v) || Number(v) < 100)
    throw usageError(`--${name} ${JSON.stringify(v)} must be a whole number of at least 100`, usage);
  return Number(v);
}

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(
    argv,
    {
      db: { type: 'string' },
      data: { type: 'string' },
      listen: { type: 'string' },
      'lease-ttl': { type: 'string' },
      'fence-margin': { type: 'string' },
      quarantine: { type: 'string' },
      'max-polls-per-token': { type: 'string' },
      'max-polls': { type: 'string' },
      'rate-limit': { type: 'string' },
      'metrics-listen': { type: 'string' },
      'events-keep': { type: 'string' },
      'events-max': { type: 'string' },
      log: { type: 'boolean' },
    },
    usage,
  );
  positionals(p, [], usage);
  const db = opt(p, 'db') ?? process.env.EXITNODE_DB;
  if (db !== undefined && !/^postgres(ql)?:\/\//.test(db))
    throw usageError(
      `--db ${JSON.stringify(db)} must be a postgres:// or postgresql:// URL (for the embedded database use --data DIR)`,
      usage,
    );
  const { startServer, defaultDataDir } = await import('../../server/index.js');
  const { redact } = await import('../../store/index.js');
  const data = opt(p, 'data') ?? defaultDataDir();
  const maxPollsPerToken = count(p, 'max-polls-per-token');
  const maxPolls = count(p, 'max-polls');
  const limit = rateLimit(opt(p, 'rate-limit'));
  const metricsListen = opt(p, 'metrics-listen');
  const srv = await startServer({
    ...(maxPollsPerToken !== undefined ? { maxPollsPerToken } : {}),
    ...(maxPolls !== undefined ? { maxPolls } : {}),
    ...(limit !== undefined ? { rateLimit: limit } : {}),
    ...(metricsListen !== undefined ? { metricsListen } : {}),
    ...(db ? { db } : {}),
    data,
    listen: opt(p, 'listen'),
    // A slot moves only its TTL plus 1 s after its last renewal; the agent gives up 1 s before the
    // TTL (docs/failover.md): together 2 s for a node to take its gateway down in time.
    leaseTtlMs: seconds(p, 'lease-ttl'),
    fenceMarginMs: seconds(p, 'fence-margin') ?? 1000,
    quarantineMs: seconds(p, 'quarantine'),
    eventRetentionMs: days(p, 'events-keep'),
    eventMaxRows: whole(p, 'events-max'),
    logger: flag(p, 'log') ? { level: 'info' } : false,
    // EXITNODE_PGLITE_WORKER=1 runs PGlite in a worker thread (compared in bench:alloc).
    pgliteWorker: process.env.EXITNODE_PGLITE_WORKER === '1',
  });
  // One write: whoever reads the first line (a supervisor, a test) sees the token line with it.
  io.out(
    [
      `exitnode server listening on ${srv.url} (database: ${db ? redact(db) : `PGlite in ${srv.dataDir}/pgdata`}; lease TTL ${srv.store.options.leaseTtlMs / 1000} s, quarantine ${srv.store.options.quarantineMs / 1000} s)`,
      ...srv.notes,
      ...(srv.metricsUrl ? [`metrics (no token) at ${srv.metricsUrl}/metrics`] : []),
      srv.adminToken
        ? `admin token created and written to ${srv.adminTokenFile} (mode 0600); it is not shown anywhere else`
        : `admin token: made on the first start, in ${srv.adminTokenFile}`,
      `dashboard: ${srv.url}/ui/ (sign in with a farm or tenant token)`,
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      io.out(`${sig}: shutting down (finishing requests in flight)`);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      resolve();
    };
    const onTerm = (): void => stop('SIGTERM');
    const onInt = (): void => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
  await srv.close();
  return 0;
}
