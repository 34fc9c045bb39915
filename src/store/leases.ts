// Leases and the sweep: a node's heartbeat renews the leases of the slots it holds (but not of a
// slot it reports unhealthy or releases), and the sweep moves every slot whose lease lapsed to
// another node (xn_sweep, 002_failover.sql, under the slot's row lock).
import { ExitnodeError, q, slotKey, type SlotRef } from '../core/index.js';
import type { StoreContext } from './context.js';
import { StoreErrors } from './errors.js';
import { checkEndpointsReport, checkVrrpReport } from './validate.js';
import { leaseRecord, slotMove, type LeaseRow, type SweepRow } from './rows.js';
import type { HeartbeatReport, LeaseRecord, SlotMove } from './types.js';

export class Leases {
  /** Store clock at start: no slot moves for one TTL plus the margin after it (see sweep()). */
  private readonly startedAt: number;

  constructor(private readonly ctx: StoreContext) {
    this.startedAt = ctx.now();
  }

  async heartbeat(node: string, report: HeartbeatReport = {}): Promise<LeaseRecord[]> {
    const { db, options } = this.ctx;
    // A late heartbeat must not win back a slot the sweep has already moved: sweep first.
    await this.sweep();
    const now = this.ctx.now();
    const unhealthy = (report.slots ?? []).filter((x) => !x.healthy);
    const release = report.release ?? [];
    // Stage 2: the node's VRRP states and the endpoints its ExitPoints learned (checked first).
    const vrrp = report.vrrp !== undefined ? checkVrrpReport(report.vrrp) : [];
    const endpoints = report.endpoints !== undefined ? checkEndpointsReport(report.endpoints) : [];
    const rows = await this.ctx.retry(() =>
      db.transaction(async (tx) => {
        const hit = await tx.query('UPDATE nodes SET last_heartbeat = $2 WHERE id = $1 RETURNING id', [node, now]);
        if (!hit.length) throw new ExitnodeError(StoreErrors.NODE_UNKNOWN, `node ${q(node)} does not exist`);
        for (const h of report.slots ?? []) {
          await tx.query(
            'UPDATE slots SET health = $4, health_at = $5 WHERE node_id = $1 AND allocation = $2 AND slot = $3',
            [node, h.allocation, h.slot, h.healthy ? 'ok' : String(h.reason ?? 'unhealthy').slice(0, 200), now],
          );
        }
        // A released slot (fenced by its holder) is made lapsed beyond the margin: the sweep below moves it now.
        for (const r of release) {
          await tx.query(
            'UPDATE slots SET lease_expires_at = $5 WHERE node_id = $1 AND allocation = $2 AND slot = $3 AND epoch = $4',
            [node, r.allocation, r.slot, r.epoch, now - options.fenceMarginMs - 1],
          );
        }
        // Stored for the slots this node is a candidate of; step-downs checked (xn_vrrp_check).
        if (vrrp.length)
          await tx.query('SELECT xn_vrrp_report($1, $2, $3, $4, $5, $6, $7, $8)', [
            node,
            vrrp.map((v) => v.allocation),
            vrrp.map((v) => v.slot),
            vrrp.map((v) => v.state),
            vrrp.map((v) => v.priority),
            vrrp.map((v) => v.since),
            now,
            options.leaseTtlMs,
          ]);
        if (endpoints.length)
          await tx.query('SELECT xn_endpoints_report($1, $2, $3, $4)', [
            node,
            endpoints.map((e) => e.network),
            endpoints.map((e) => e.nr),
            endpoints.map((e) => e.endpoint),
          ]);
        // Not renewed: the slots reported unhealthy and the ones released.
        const skip: SlotRef[] = [...unhealthy, ...release];
        const skipped = '(allocation, slot) IN (SELECT * FROM unnest($4::int[], $5::int[]))';
        return tx.query<LeaseRow>(
          `UPDATE slots SET lease_expires_at = CASE WHEN ${skipped} THEN lease_expires_at ELSE $2 END,
                renewed_at = CASE WHEN ${skipped} THEN renewed_at ELSE $3 END
          WHERE node_id = $1 RETURNING allocation, slot, epoch, lease_expires_at, moving_to`,
          [node, now + options.leaseTtlMs, now, skip.map((s) => s.allocation), skip.map((s) => s.slot)],
        );
      }),
    );
    if (release.length) await this.sweep(true);
    // A step-down or a learned endpoint may have moved views.
    if (vrrp.length || endpoints.length) this.ctx.changed(null);
    const gone = new Set(release.map(slotKey));
    return rows
      .map(leaseRecord)
      .filter((l) => !gone.has(slotKey(l)))
      .sort((x, y) => x.allocation - y.allocation || x.slot - y.slot);
  }

  /**
   * Moves every slot whose lease lapsed (plus the fencing margin). Not during the first TTL plus
   * margin after this store started: after a TNoDB outage longer than the TTL every lease has
   * lapsed, and the first node back would otherwise take the slots of nodes that simply have not
   * heartbeated yet. One TTL gives every live node time to renew. `released` skips the grace: a
   * slot its holder gave up explicitly moves at once.
   */
  async sweep(released = false): Promise<SlotMove[]> {
    const { db, options } = this.ctx;
    const now = this.ctx.now();
    if (!released && now < this.startedAt + options.leaseTtlMs + options.fenceMarginMs) return [];
    const rows = await this.ctx.retry(() =>
      db.query<SweepRow>('SELECT * FROM xn_sweep($1, $2, $3)', [now, options.leaseTtlMs, options.fenceMarginMs]),
    );
    if (rows.length) this.ctx.changed(rows);
    return rows.map(slotMove);
  }
}
