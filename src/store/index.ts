// Opening the store: a PostgreSQL URL selects the `pg` driver, anything else is a PGlite data
// directory (or in memory when omitted).
import { ExitnodeError, q } from '../core/errors.js';
import { StoreErrors } from './errors.js';
import { PgStore } from './pg-store.js';
import { openPg, openPglite, openPgliteWorker, type SqlClient } from './sql.js';
import type { Store, StoreOptions } from './types.js';

export * from './types.js';
export { StoreErrors } from './errors.js';
export { PgStore } from './pg-store.js';
export { migrate } from './migrate.js';
export { checkWgKey, checkName } from './validate.js';
export { DEFAULTS } from './context.js';

export interface OpenOptions extends StoreOptions {
  /** postgres://… (a PostgreSQL server) */
  url?: string;
  /** A PGlite data directory; neither url nor dataDir: PGlite in memory. */
  dataDir?: string;
  /** pg pool size. */
  poolSize?: number;
  /** Run PGlite in a worker thread (the server does; default false). */
  pgliteWorker?: boolean;
}

export async function openStore(o: OpenOptions = {}): Promise<Store> {
  let db: SqlClient;
  try {
    db = o.url
      ? await openPg(o.url, { max: o.poolSize })
      : o.pgliteWorker
        ? await openPgliteWorker(o.dataDir)
        : await openPglite(o.dataDir);
  } catch (e) {
    const where = o.url ? redact(o.url) : (o.dataDir ?? 'memory');
    throw new ExitnodeError(
      StoreErrors.STORE_UNAVAILABLE,
      `cannot open the database at ${q(where)}: ${(e as Error).message?.split('\n')[0]}`,
    );
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
