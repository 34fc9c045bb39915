// The TNoDB server process: opens the store (PGlite in DATA_DIR, or a PostgreSQL server), makes
// the admin token on first start, serves the API, sweeps lapsed leases, shuts down gracefully.
// Tests and the simulated farm start it in-process with startServer().
import { chmodSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import { ExitnodeError, CoreErrors, q } from '../core/errors.js';
import { ensureDir, openStore, type Store, type SlotMove } from '../store/index.js';
import { buildApp, type App, type RateLimit } from '../api/app.js';
import { renderMetrics } from '../api/metrics.js';
import { hashToken, newToken } from '../api/auth.js';

export interface ServerOptions {
  /** postgres://… — a PostgreSQL server (several instances may share it). */
  db?: string;
  /** Data directory: PGlite's database (unless `db`) and admin.token. Default: defaultDataDir(). */
  data?: string;
  /** HOST:PORT to listen on; port 0 picks a free one. Default 127.0.0.1:8440. */
  listen?: string;
  clock?: () => number;
  leaseTtlMs?: number;
  fenceMarginMs?: number;
  quarantineMs?: number;
  /** Event retention (src/store/events.ts): age and row count. */
  eventRetentionMs?: number;
  eventMaxRows?: number;
  /** How often lapsed leases are looked for (views and heartbeats also check on read). Default min(1000, TTL/5). */
  sweepIntervalMs?: number;
  /** Use this admin token (tests) instead of generating one; it is stored hashed like any other. */
  adminToken?: string;
  /** Do not write admin.token (tests that pass adminToken). */
  noTokenFile?: boolean;
  logger?: boolean | object;
  /** PGlite in a worker thread. Default false: on this 2-core machine the event loop measured
   *  faster (bench:alloc, 1106/s against 935/s), the worker being a third busy thread. */
  pgliteWorker?: boolean;
  /** Concurrent view long-polls per token and in all (see src/api/polls.ts for the defaults). */
  maxPollsPerToken?: number;
  maxPolls?: number;
  /** Requests per token and window; false: no rate limit. Default RATE_LIMIT (src/api/app.ts). */
  rateLimit?: RateLimit | false;
  /** HOST:PORT serving GET /metrics without a token (keep it on loopback); the API's /metrics needs the admin token. */
  metricsListen?: string;
}

export interface RunningServer {
  url: string;
  /** The admin token when this start created it (or it was given), else undefined: see adminTokenFile. */
  adminToken: string | undefined;
  adminTokenFile: string | undefined;
  dataDir: string;
  /** The --metrics-listen URL when there is one. */
  metricsUrl: string | undefined;
  /** What the start did that an operator should read (a stale lock taken over). */
  notes: string[];
  app: App;
  store: Store;
  /** Runs one lease sweep now (tests with a hand-moved clock). */
  sweep(): Promise<SlotMove[]>;
  close(): Promise<void>;
}

export const DEFAULT_LISTEN = '127.0.0.1:8440';

/** /var/lib/exitnode for root (a system service), ./.exitnode otherwise (a developer's checkout). */
export function defaultDataDir(): string {
  return process.getuid?.() === 0 ? '/var/lib/exitnode' : resolve('.exitnode');
}

export function parseListen(text: string, option = '--listen'): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535)
    throw new ExitnodeError(
      CoreErrors.USAGE,
      `${option} ${q(text)} must be HOST:PORT (e.g. 127.0.0.1:8440 or [::]:8440), port 0-65535`,
    );
  return { host: m[1] ?? m[2]!, port };
}

const urlOf = (host: string, port: number): string => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

/** GET /metrics without a token, on its own address (the API's /metrics needs the admin token). */
async function serveMetrics(app: App, at: { host: string; port: number }): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'this address serves GET /metrics only' } }));
      return;
    }
    renderMetrics(app.tnodb).then(
      (text) => {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(text);
      },
      () => {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'STORE_UNAVAILABLE', message: 'the database did not answer' } }));
      },
    );
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(at.port, at.host, () => ok());
  });
  const a = server.address();
  return { server, url: urlOf(at.host, typeof a === 'object' && a ? a.port : at.port) };
}

export async function startServer(o: ServerOptions = {}): Promise<RunningServer> {
  const dataDir = resolve(o.data ?? defaultDataDir());
  const { host, port } = parseListen(o.listen ?? DEFAULT_LISTEN);
  const metricsAt = o.metricsListen !== undefined ? parseListen(o.metricsListen, '--metrics-listen') : undefined;
  ensureDir(dataDir);
  const notes: string[] = [];
  // On PGlite the data directory is locked (src/store/dir-lock.ts): a second server refuses to start.
  const store = await openStore({
    ...(o.db ? { url: o.db } : { dataDir: join(dataDir, 'pgdata'), pgliteWorker: o.pgliteWorker ?? false }),
    onStaleLock: (m) => notes.push(m),
    clock: o.clock,
    leaseTtlMs: o.leaseTtlMs,
    fenceMarginMs: o.fenceMarginMs,
    quarantineMs: o.quarantineMs,
    eventRetentionMs: o.eventRetentionMs,
    eventMaxRows: o.eventMaxRows,
  });
  let app: App | undefined;
  let metrics: { server: Server; url: string } | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    let adminToken: string | undefined;
    let adminTokenFile: string | undefined;
    if (o.adminToken) {
      await store.createToken(hashToken(o.adminToken), 'admin', null);
      adminToken = o.adminToken;
    } else {
      const t = newToken();
      if (await store.bootstrapAdmin(hashToken(t))) adminToken = t;
    }
    if (adminToken && !o.noTokenFile) {
      adminTokenFile = join(dataDir, 'admin.token');
      writeFileSync(adminTokenFile, `${adminToken}\n`, { mode: 0o600 });
      chmodSync(adminTokenFile, 0o600);
    } else if (!adminToken) {
      adminTokenFile = join(dataDir, 'admin.token');
    }
    app = await buildApp({
      store,
      logger: o.logger,
      ...(o.maxPollsPerToken !== undefined ? { maxPollsPerToken: o.maxPollsPerToken } : {}),
      ...(o.maxPolls !== undefined ? { maxPolls: o.maxPolls } : {}),
      ...(o.rateLimit !== undefined ? { rateLimit: o.rateLimit } : {}),
    });
    await app.listen({ host, port });
    const addr = app.server.address();
    const url = urlOf(host, typeof addr === 'object' && addr ? addr.port : port);
    if (metricsAt) metrics = await serveMetrics(app, metricsAt);
    const sweepMs = o.sweepIntervalMs ?? Math.max(50, Math.min(1000, Math.floor(store.options.leaseTtlMs / 5)));
    let sweeping = false;
    timer = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      store
        .sweep()
        .catch((e: unknown) => app?.log.error({ err: e }, 'lease sweep failed'))
        // The farm's history: nodes gone silent, and the retention (src/store/events.ts).
        .then(() => store.events.tick())
        .catch((e: unknown) => app?.log.error({ err: e }, 'event watch failed'))
        .finally(() => {
          sweeping = false;
        });
    }, sweepMs);
    timer.unref();
    let closing: Promise<void> | undefined;
    const running: RunningServer = {
      url,
      adminToken,
      adminTokenFile,
      dataDir,
      metricsUrl: metrics?.url,
      notes,
      app,
      store,
      sweep: () => store.sweep(),
      close: () =>
        (closing ??= (async () => {
          clearInterval(timer);
          metrics?.server.close();
          await app!.close();
          await store.close();
        })()),
    };
    return running;
  } catch (e) {
    clearInterval(timer);
    metrics?.server.close();
    await app?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw e;
  }
}
