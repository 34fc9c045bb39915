// Quotas: per tenant (networks, NRs) and per farm (allocations, nodes). The limits are columns of
// tenants and farms (defaults in migrations/004_quotas.sql), set by the admin; triggers enforce
// them inside the database, so that no number of concurrent requests or instances passes one.
// This file reads and sets them, and turns the triggers' refusal (SQLSTATE XNQ01) into an error
// that names the limit.
import { ExitnodeError, q } from '../core/index.js';
import { StoreErrors } from './errors.js';
import type { Queryable } from './sql.js';
import type { FarmQuota, TenantQuota } from './types.js';

/** The largest value a quota takes (a limit, not a count: 4096 NRs fill a slot). */
export const MAX_QUOTA = 1_000_000;

const LIMITS = {
  tenant: { networks: 'max_networks', nrs: 'max_nrs' },
  farm: { allocations: 'max_allocations', nodes: 'max_nodes' },
} as const;

const WHAT: Record<string, string> = {
  networks: 'networks',
  nrs: 'NRs',
  allocations: 'allocations (/48s)',
  nodes: 'nodes',
};

const pgMessage = (e: unknown): string => String((e as { message?: unknown })?.message ?? '');

/** The QUOTA_EXCEEDED error for a trigger's refusal, or undefined when `e` is something else. */
export function quotaRefusal(e: unknown): ExitnodeError | undefined {
  if ((e as { code?: string })?.code !== 'XNQ01') return undefined;
  const m = /xn_quota (\w+) (\d+) (tenant|farm) (\S+)/.exec(pgMessage(e));
  if (!m) return new ExitnodeError(StoreErrors.QUOTA_EXCEEDED, 'a quota is reached');
  const [, limit, max, kind, subject] = m;
  const path = kind === 'tenant' ? 'tenants' : 'farms';
  return new ExitnodeError(
    StoreErrors.QUOTA_EXCEEDED,
    `${kind} ${q(subject)} has reached its quota of ${max} ${WHAT[limit!] ?? limit} (quota "${limit}"); the admin can raise it: PUT /v1/${path}/${subject}/quota {"${limit}": N}, or exitnode ${kind} quota ${subject} --${limit} N`,
    { limit, max: Number(max) },
  );
}

function checkValue(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_QUOTA)
    throw new ExitnodeError(
      StoreErrors.QUOTA_VALUE,
      `quota ${name} ${q(v)} must be a whole number from 0 to ${MAX_QUOTA}`,
    );
  return v;
}

export async function getTenantQuota(db: Queryable, tenant: string): Promise<TenantQuota | undefined> {
  const [r] = await db.query<{ max_networks: number; max_nrs: number; nr_count: number; networks: number }>(
    'SELECT max_networks, max_nrs, nr_count, (SELECT count(*) FROM networks WHERE tenant_id = $1)::int AS networks FROM tenants WHERE id = $1',
    [tenant],
  );
  if (!r) return undefined;
  return {
    networks: { limit: Number(r.max_networks), used: Number(r.networks) },
    nrs: { limit: Number(r.max_nrs), used: Number(r.nr_count) },
  };
}

export async function getFarmQuota(db: Queryable, farm: string): Promise<FarmQuota | undefined> {
  const [r] = await db.query<{ max_allocations: number; max_nodes: number; allocations: number; nodes: number }>(
    `SELECT max_allocations, max_nodes, (SELECT count(*) FROM allocations WHERE farm_id = $1)::int AS allocations,
            (SELECT count(*) FROM nodes WHERE farm_id = $1)::int AS nodes FROM farms WHERE id = $1`,
    [farm],
  );
  if (!r) return undefined;
  return {
    allocations: { limit: Number(r.max_allocations), used: Number(r.allocations) },
    nodes: { limit: Number(r.max_nodes), used: Number(r.nodes) },
  };
}

/** Sets the given limits of a tenant or farm (a limit below what is used refuses only new ones). Returns false if there is no such subject. */
export async function setQuota(
  db: Queryable,
  kind: 'tenant' | 'farm',
  subject: string,
  limits: Partial<Record<string, number>>,
): Promise<boolean> {
  const cols = LIMITS[kind] as Record<string, string>;
  const sets: string[] = [];
  const params: unknown[] = [subject];
  for (const [name, v] of Object.entries(limits)) {
    if (v === undefined) continue;
    const col = cols[name];
    if (!col)
      throw new ExitnodeError(
        StoreErrors.QUOTA_VALUE,
        `${kind}s have no quota ${q(name)}; they have ${Object.keys(cols).join(' and ')}`,
      );
    params.push(checkValue(name, v));
    sets.push(`${col} = $${params.length}`);
  }
  const table = kind === 'tenant' ? 'tenants' : 'farms';
  if (!sets.length) return (await db.query(`SELECT 1 FROM ${table} WHERE id = $1`, [subject])).length > 0;
  return (await db.query(`UPDATE ${table} SET ${sets.join(', ')} WHERE id = $1 RETURNING 1`, params)).length > 0;
}
