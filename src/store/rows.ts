// Row mapping: the database's rows (snake_case, numbers that may arrive as strings or bigints,
// JSON that may arrive as text) into the Store's records.
import type {
  AllocationRecord,
  CandidateRecord,
  Ipv4Pool,
  LeaseRecord,
  NodeRecord,
  SlotMove,
  SlotRecord,
  VrrpState,
} from './types.js';

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
    failover: r.failover === 'vrrp' ? 'vrrp' : 'lease',
    candidates: r.candidates === undefined || r.candidates === null ? 2 : Number(r.candidates),
  };
}

/** VRRP priority of a candidate by its rank (DESIGN.md 8.2; the first highest). */
export const candidatePriority = (rank: number): number => Math.max(1, 250 - 50 * rank);

/** A slot_candidates row joined with its node's last_heartbeat. */
export function candidateRecord(r: Row, now: number, leaseTtlMs: number): CandidateRecord {
  const num = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));
  const hb = num(r.last_heartbeat);
  const rank = Number(r.rank);
  return {
    node: String(r.node_id),
    rank,
    priority: candidatePriority(rank),
    healthy: hb !== undefined && hb + leaseTtlMs > now,
    ...(hb !== undefined ? { lastHeartbeat: hb } : {}),
    ...(r.vrrp_state ? { vrrpState: String(r.vrrp_state) as VrrpState } : {}),
    ...(num(r.vrrp_priority) !== undefined ? { vrrpPriority: num(r.vrrp_priority) } : {}),
    ...(num(r.vrrp_since) !== undefined ? { vrrpSince: num(r.vrrp_since) } : {}),
    ...(num(r.reported_at) !== undefined ? { reportedAt: num(r.reported_at) } : {}),
    ...(num(r.changed_at) !== undefined ? { changedAt: num(r.changed_at) } : {}),
    stepDown: Boolean(r.step_down),
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
    ...(r.handover_to ? { handoverTo: String(r.handover_to) } : {}),
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
