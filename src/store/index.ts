// Opening the store: a PostgreSQL URL selects the `pg` driver, anything else is a PGlite data
// directory (or in memory when omitted).
import { ExitnodeError, q } from '../core/errors.js';
import { StoreErrors } from './errors.js';
import { lockDataDir, type DirLock } from './dir-lock.js';
import { PgStore } from './pg-store.js';
import { openPg, openPglite, openPgliteWorker, type SqlClient } from './sql.js';
import type { Store, StoreOptions } from './types.js';

export * from './types.js';
export { StoreErrors } from './errors.js';
export { PgStore } from './pg-store.js';
export { migrate } from './migrate.js';
export { checkWgKey, checkName } from './validate.js';
export { DEFAULTS } from './context.js';
export { ensureDir, lockPathOf } from './dir-lock.js';
export { EVENT_KINDS, eventText, type EventRecord, type EventKind } from './event-kinds.js';
export { MAX_EVENTS_PAGE, type EventFilter, type EventPage, type EventLog } from './events.js';
export type {
  AgentReport,
  Dashboard,
  FarmOverview,
  NetworkSummary,
  NodeStatus,
  SlotResource,
  SlotStatus,
  SlotCandidate,
  ResourceOwner,
} from './dashboard.js';

export interface OpenOptions extends StoreOptions {
  /** postgres://… (a PostgreSQL server) */
  url?: string;
  /** A PGlite data directory; neither url nor dataDir: PGlite in memory. */
  dataDir?: string;
  /** pg pool size. */
  poolSize?: number;
  /** Run PGlite in a worker thread (the server does; default false). */
  pgliteWorker?: boolean;
  /** Told when a PGlite data directory's lock was left by a process that is gone and is taken over. */
  onStaleLock?: (message: string) => void;
}

export async function openStore(o: OpenOptions = {}): Promise<Store> {
  // A PGlite data directory serves one store at a time, on this thread or in a worker (dir-lock.ts).
  let lock: DirLock | undefined;
  if (!o.url && o.dataDir) {
    lock = lockDataDir(o.dataDir);
    if (lock.tookOver)
      o.onStaleLock?.(
        `took over the lock ${lock.path} of process ${lock.tookOver.pid} (since ${lock.tookOver.since}), which is gone: it did not shut down cleanly`,
      );
  }
  let db: SqlClient;
  try {
    db = o.url
      ? await openPg(o.url, { max: o.poolSize })
      : o.pgliteWorker
        ? await openPgliteWorker(o.dataDir)
        : await openPglite(o.dataDir);
  } catch (e) {
    lock?.release();
    const where = o.url ? redact(o.url) : (o.dataDir ?? 'memory');
    throw new ExitnodeError(
      StoreErrors.STORE_UNAVAILABLE,
      `cannot open the database at ${q(where)}: ${(e as Error).message?.split('\n')[0]}`,
    );
  }
  if (lock) {
    const close = db.close.bind(db);
    const l = lock;
    db = {
      ...db,
      close: async () => {
        try {
          await close();
        } finally {
          l.release();
        }
      },
    };
  }
  try {
    return await PgStore.open(db, o);
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
}

/** A URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
