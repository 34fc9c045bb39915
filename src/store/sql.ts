// The one narrow SQL interface the store runs on, with two drivers: PGlite (embedded PostgreSQL in
// a data directory, one process) and `pg` (a PostgreSQL server, any number of instances). The
// store's SQL is the same on both; only connecting, transactions and LISTEN differ.
import type { Client as PgClient } from 'pg';

export interface Queryable {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Several statements in one string, no parameters (migrations). */
  exec(text: string): Promise<void>;
}

export interface SqlClient extends Queryable {
  readonly driver: 'pglite' | 'pg';
  /** Runs `fn` in one transaction (BEGIN … COMMIT, ROLLBACK on a throw). */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, opts?: { readOnly?: boolean; repeatableRead?: boolean }): Promise<T>;
  /** Subscribes to NOTIFY on `channel`; returns the unsubscribe function. */
  listen(channel: string, cb: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export async function openPglite(dataDir: string | undefined): Promise<SqlClient> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create(dataDir ?? 'memory://');
  // PGlite is one connection: transactions must not interleave with other queries, so every
  // statement goes through one queue (PGlite queues too, but a transaction spans several awaits).
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn, fn);
    chain = p.catch(() => undefined);
    return p;
  };
  const q = async <T>(text: string, params?: unknown[]): Promise<T[]> => (await db.query<T>(text, params ?? [])).rows;
  return {
    driver: 'pglite',
    query: <T>(text: string, params?: unknown[]) => serial(() => q<T>(text, params)),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>, opts?: { readOnly?: boolean; repeatableRead?: boolean }) =>
      serial(async () => {
        await db.exec(`BEGIN${opts?.repeatableRead ? ' ISOLATION LEVEL REPEATABLE READ' : ''}${opts?.readOnly ? ' READ ONLY' : ''}`);
        try {
          const r = await fn({ query: q, exec: async (t) => { await db.exec(t); } });
          await db.exec('COMMIT');
          return r;
        } catch (e) {
          await db.exec('ROLLBACK').catch(() => undefined);
          throw e;
        }
      }),
    exec: (text) => serial(async () => { await db.exec(text); }),
    listen: async (channel, cb) => {
      const un = await db.listen(channel, cb);
      return async () => { await un(); };
    },
    close: () => serial(() => db.close()),
  };
}

export async function openPg(url: string, opts: { max?: number } = {}): Promise<SqlClient> {
  const pg = (await import('pg')).default;
  // Integers come back as numbers: every bigint here is a millisecond time or a version, far
  // below 2^53.
  pg.types.setTypeParser(20, (v: string) => Number(v));
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10 });
  pool.on('error', () => undefined); // an idle client lost: the pool replaces it
  await (await pool.connect()).release();
  const listeners: PgClient[] = [];
  return {
    driver: 'pg',
    query: async <T>(text: string, params?: unknown[]) => (await pool.query(text, params)).rows as T[],
    transaction: async <T>(fn: (tx: Queryable) => Promise<T>, o?: { readOnly?: boolean; repeatableRead?: boolean }) => {
      const c = await pool.connect();
      try {
        await c.query(`BEGIN${o?.repeatableRead ? ' ISOLATION LEVEL REPEATABLE READ' : ''}${o?.readOnly ? ' READ ONLY' : ''}`);
        const r = await fn({ query: async <U>(text: string, params?: unknown[]) => (await c.query(text, params)).rows as U[], exec: async (t) => { await c.query(t); } });
        await c.query('COMMIT');
        return r;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        c.release();
      }
    },
    exec: async (text) => { await pool.query(text); },
    listen: async (channel, cb) => {
      // A dedicated connection: LISTEN belongs to a session, and pooled sessions come and go.
      let client: PgClient | undefined;
      let closed = false;
      const connect = async (): Promise<void> => {
        const c = new pg.Client({ connectionString: url });
        c.on('notification', (m) => { if (m.channel === channel) cb(m.payload ?? ''); });
        c.on('error', () => {
          // Reconnect; the caller's periodic re-read covers what was missed meanwhile.
          listeners.splice(listeners.indexOf(c), 1);
          if (!closed) setTimeout(() => { connect().catch(() => undefined); }, 500);
        });
        await c.connect();
        await c.query(`LISTEN ${channel}`);
        client = c;
        listeners.push(c);
      };
      await connect();
      return async () => {
        closed = true;
        if (client) { listeners.splice(listeners.indexOf(client), 1); await client.end().catch(() => undefined); }
      };
    },
    close: async () => {
      await Promise.all(listeners.splice(0).map((c) => c.end().catch(() => undefined)));
      await pool.end();
    },
  };
}
