// The schema: migrations/NNN_*.sql applied in order, once, and the advisory lock keys the store
// takes for the decisions that need one writer across instances.
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SqlClient } from './sql.js';

const MIGRATIONS = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

/** pg_advisory_xact_lock keys: migrations ("xnmg"), allocation registration, the first admin token. */
export const LOCKS = {
  migrations: 0x786e6d67,
  registration: 0x786e6d67 + 1,
  adminToken: 0x786e6d67 + 2,
} as const;

/** Applies the migrations not yet applied, in order, under an advisory lock (safe when several instances start at once). */
export async function migrate(db: SqlClient): Promise<number[]> {
  const files = readdirSync(MIGRATIONS)
    .filter((f) => /^\d{3}_.*\.sql$/.test(f))
    .sort();
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCKS.migrations]);
    await tx.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set(
      (await tx.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => Number(r.version)),
    );
    const applied: number[] = [];
    for (const f of files) {
      const v = Number(f.slice(0, 3));
      if (done.has(v)) continue;
      await tx.exec(readFileSync(join(MIGRATIONS, f), 'utf8'));
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [v, f]);
      applied.push(v);
    }
    return applied;
  });
}
