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
  transaction<T>(
    fn: (tx: Queryable) => Promise<T>,
    opts?: { readOnly?: boolean; repeatableRead?: boolean },
  ): Promise<T>;
  /** Subscribes to NOTIFY on `channel`; returns the unsubscribe function. */
  listen(channel: string, cb: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** PGlite in a worker thread (see pglite-worker.mjs): same interface, the database off the event loop. */
export async function openPgliteWorker(dataDir: string | undefined): Promise<SqlClient> {
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker(new URL('./pglite-worker.mjs', import.meta.url));
  worker.unref();
  let seq = 0;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  const listeners = new Map<string, (payload: string) => void>();
  worker.on(
    'message',
    (m: {
      id?: number;
      result?: unknown;
      error?: { message: string; code?: string };
      notify?: string;
      payload?: string;
    }) => {
      if (m.notify !== undefined) {
        listeners.get(m.notify)?.(m.payload ?? '');
        return;
      }
      const p = pending.get(m.id!);
      if (!p) return;
      pending.delete(m.id!);
      if (m.error) p.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
      else p.resolve(m.result);
    },
  );
  const failAll = (e: unknown): void => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  worker.on('error', failAll);
  worker.on('exit', () => failAll(new Error('the PGlite worker exited')));
  const call = <T>(msg: Record<string, unknown>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = ++seq;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.ref();
      worker.postMessage({ ...msg, id });
    }).finally(() => {
      if (!pending.size) worker.unref();
    });
  await call({ op: 'open', dataDir });
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn, fn);
    chain = p.catch(() => undefined);
    return p;
  };
  const q = <T>(text: string, params?: unknown[]): Promise<T[]> =>
    call<T[]>({ op: 'query', text, params: params ?? [] });
  const ex = async (text: string): Promise<void> => {
    await call({ op: 'exec', text });
  };
  return {
    driver: 'pglite',
    // Only transactions need the queue; single statements go straight to the worker, whose
    // PGlite runs them one at a time anyway — unless a transaction is open, hence the queue.
    query: <T>(text: string, params?: unknown[]) => serial(() => q<T>(text, params)),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>, opts?: { readOnly?: boolean; repeatableRead?: boolean }) =>
      serial(async () => {
        await ex(
          `BEGIN${opts?.repeatableRead ? ' ISOLATION LEVEL REPEATABLE READ' : ''}${opts?.readOnly ? ' READ ONLY' : ''}`,
        );
        try {
          const r = await fn({ query: q, exec: ex });
          await ex('COMMIT');
          return r;
        } catch (e) {
          await ex('ROLLBACK').catch(() => undefined);
          throw e;
        }
      }),
    exec: (text) => serial(() => ex(text)),
    listen: async (channel, cb) => {
      listeners.set(channel, cb);
      await call({ op: 'listen', channel });
      return async () => {
        listeners.delete(channel);
      };
    },
    close: () =>
      serial(async () => {
        await call({ op: 'close' }).catch(() => undefined);
        await worker.terminate();
      }),
  };
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
        await db.exec(
          `BEGIN${opts?.repeatableRead ? ' ISOLATION LEVEL REPEATABLE READ' : ''}${opts?.readOnly ? ' READ ONLY' : ''}`,
        );
        try {
          const r = await fn({
            query: q,
            exec: async (t) => {
              await db.exec(t);
            },
          });
          await db.exec('COMMIT');
          return r;
        } catch (e) {
          await db.exec('ROLLBACK').catch(() => undefined);
          throw e;
        }
      }),
    exec: (text) =>
      serial(async () => {
        await db.exec(text);
      }),
    listen: async (channel, cb) => {
      const un = await db.listen(channel, cb);
      return async () => {
        await un();
      };
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
        await c.query(
          `BEGIN${o?.repeatableRead ? ' ISOLATION LEVEL REPEATABLE READ' : ''}${o?.readOnly ? ' READ ONLY' : ''}`,
        );
        const r = await fn({
          query: async <U>(text: string, params?: unknown[]) => (await c.query(text, params)).rows as U[],
          exec: async (t) => {
            await c.query(t);
          },
        });
        await c.query('COMMIT');
        return r;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        c.release();
      }
    },
    exec: async (text) => {
      await pool.query(text);
    },
    listen: async (channel, cb) => {
      // A dedicated connection: LISTEN belongs to a session, and pooled sessions come and go.
      let client: PgClient | undefined;
      let closed = false;
      const connect = async (): Promise<void> => {
        const c = new pg.Client({ connectionString: url });
        c.on('notification', (m) => {
          if (m.channel === channel) cb(m.payload ?? '');
        });
        c.on('error', () => {
          // Reconnect; the caller's periodic re-read covers what was missed meanwhile.
          listeners.splice(listeners.indexOf(c), 1);
          if (!closed)
            setTimeout(() => {
              connect().catch(() => undefined);
            }, 500);
        });
        await c.connect();
        await c.query(`LISTEN ${channel}`);
        client = c;
        listeners.push(c);
      };
      await connect();
      return async () => {
        closed = true;
        if (client) {
          listeners.splice(listeners.indexOf(client), 1);
          await client.end().catch(() => undefined);
        }
      };
    },
    close: async () => {
      await Promise.all(listeners.splice(0).map((c) => c.end().catch(() => undefined)));
      await pool.end();
    },
  };
}
