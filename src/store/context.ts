// What every part of the store shares: the database, the options with the clock, retries of the
// transactions the database refuses under contention, and the change signal to this instance's
// view listeners. PgStore (pg-store.ts) is the one implementation; the parts take it as this.
import { ExitnodeError } from '../core/index.js';
import { StoreErrors } from './errors.js';
import type { SqlClient } from './sql.js';
import { quotaRefusal } from './quotas.js';
import type { StoreOptions } from './types.js';

export const DEFAULTS: Required<StoreOptions> = {
  clock: () => Date.now(),
  leaseTtlMs: 5000,
  fenceMarginMs: 0,
  quarantineMs: 600_000,
  forwardQuota: 64,
  inboundRuleQuota: 64,
  eventRetentionMs: 30 * 24 * 3600_000,
  eventMaxRows: 200_000,
};

export interface StoreContext {
  readonly db: SqlClient;
  readonly options: Required<StoreOptions>;
  /** The store's clock (options.clock). */
  now(): number;
  /** Runs fn again on serialisation failures and deadlocks (see retry below). */
  retry<T>(fn: () => Promise<T>): Promise<T>;
  /** Tells this instance's listeners that views may have changed (after a committed write); returns v. */
  changed<T>(v: T): T;
}

interface PgError {
  code?: string;
  constraint?: string;
  message?: string;
}

/** The SQLSTATE of a database error (23505: unique violation, 40001/40P01: serialisation/deadlock). */
export const pgCode = (e: unknown): string | undefined => (e as PgError)?.code;

/** Retries serialisation failures and deadlocks, which the database may answer under contention.
 *  A quota trigger's refusal comes out as QUOTA_EXCEEDED. */
export async function retry<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const quota = quotaRefusal(e);
      if (quota) throw quota;
      const c = pgCode(e);
      if ((c === '40001' || c === '40P01') && attempt < 8) {
        await new Promise((r) => setTimeout(r, 2 + Math.random() * 10 * (attempt + 1)));
        continue;
      }
      if (c === '40001' || c === '40P01')
        throw new ExitnodeError(
          StoreErrors.STORE_BUSY,
          `the database refused the transaction ${attempt + 1} times (${c}); retry`,
        );
      throw e;
    }
  }
}
