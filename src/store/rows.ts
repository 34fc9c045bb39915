// Row mapping: the database's rows (snake_case, numbers that may arrive as strings or bigints,
// JSON that may arrive as text) into the Store's records.
import type { AllocationRecord, Ipv4Pool, LeaseRecord, NodeRecord, SlotMove, SlotRecord } from './types.js';

export type Row = Record<string, unknown>;

const str = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));

function parseJson(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v;
}

export function allocationRecord(r: Row): AllocationRecord {
  const ipv4 = parseJson(r.ipv4) as Ipv4Pool | null;
  return {
    number: Number(r.number),
    farm: String(r.farm_id),
    prefix: String(r.prefix),
    ...(ipv4 ? { ipv4 } : {}),
    upstream: { ll: String(r.upstream_ll), ip6: String(r.upstream_ip6) },
  };
}

/** A slots row joined with its allocation's ipv4 pool (the slot's address is addresses[slot-1]). */
export function slotRecord(r: Row): SlotRecord {
  const ipv4 = parseJson(r.ipv4) as Ipv4Pool | null;
  const slot = Number(r.slot);
  const addr = ipv4?.addresses[slot - 1];
  return {
    allocation: Number(r.allocation),
    slot,
    node: str(r.node_id) ?? null,
    epoch: Number(r.epoch),
    leaseExpiresAt: r.lease_expires_at === null || r.lease_expires_at === undefined ? null : Number(r.lease_expires_at),
    nrs: Number(r.nr_count),
    ...(addr ? { ipv4: `${addr}/${ipv4!.prefixLength}` } : {}),
    ...(r.renewed_at !== null && r.renewed_at !== undefined ? { renewedAt: Number(r.renewed_at) } : {}),
    ...(r.moving_to ? { movingTo: String(r.moving_to) } : {}),
    ...(r.health ? { health: String(r.health), healthAt: Number(r.health_at) } : {}),
  };
}

/** A nodes row; healthy when its last heartbeat is younger than the lease TTL at `now`. */
export function nodeRecord(r: Row, now: number, leaseTtlMs: number): NodeRecord {
  const hb = r.last_heartbeat === null ? undefined : Number(r.last_heartbeat);
  return {
    id: String(r.id),
    farm: String(r.farm_id),
    ...(r.public_ipv4 ? { publicIPv4: String(r.public_ipv4) } : {}),
    ...(r.public_ipv6 ? { publicIPv6: String(r.public_ipv6) } : {}),
    exitCapable: Boolean(r.exit_capable),
    ...(hb !== undefined ? { lastHeartbeat: hb } : {}),
    healthy: hb !== undefined && hb + leaseTtlMs > now,
  };
}

export interface LeaseRow {
  allocation: number;
  slot: number;
  epoch: number;
  lease_expires_at: number;
  moving_to: string | null;
}

export function leaseRecord(r: LeaseRow): LeaseRecord {
  return {
    allocation: Number(r.allocation),
    slot: Number(r.slot),
    epoch: Number(r.epoch),
    leaseExpiresAt: Number(r.lease_expires_at),
    ...(r.moving_to ? { movingTo: String(r.moving_to) } : {}),
  };
}

export interface SweepRow {
  allocation: number;
  slot: number;
  previous: string | null;
  node: string;
  epoch: number;
}

export function slotMove(r: SweepRow): SlotMove {
  return {
    allocation: Number(r.allocation),
    slot: Number(r.slot),
    previous: r.previous,
    node: r.node,
    epoch: Number(r.epoch),
  };
}
