// The farm's history: reading the events the database's triggers record (migrations/005_events.sql),
// the watch that finds silent nodes, and the retention that bounds the table.
//
// Tailing by id needs care on a PostgreSQL server shared by several instances: ids come from a
// sequence when a row is inserted, not when its transaction commits, so id 41 may become visible
// after id 42. A reader that moved its cursor to 42 would never see 41. So every reader only gets
// events up to the "settled" id: the highest id below which every id is either visible or a hole
// older than HOLE_MS (a rolled-back insert; no transaction of this store runs that long). The
// holes that a rollback leaves delay the events after them by HOLE_MS at most.
import type { StoreContext } from './context.js';
import { eventText } from './event-kinds.js';
import type { EventFilter, EventLog, EventPage, EventRecord } from './types.js';
import { nrIdText } from '../core/index.js';
import type { Row } from './rows.js';

export type { EventFilter, EventLog, EventPage, EventRecord } from './types.js';

/** A sequence hole younger than this may still be filled by a transaction in flight. */
export const HOLE_MS = 2000;
/** Retention runs at most this often. */
const PRUNE_EVERY_MS = 60_000;
export const MAX_EVENTS_PAGE = 1000;

function eventRecord(r: Row): EventRecord {
  const num = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));
  const str = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));
  const data = (typeof r.data === 'string' ? JSON.parse(r.data) : (r.data ?? {})) as Record<string, unknown>;
  const nr = num(r.nr_id);
  const e = {
    id: Number(r.id),
    at: Number(r.at),
    kind: String(r.kind),
    ...(str(r.farm_id) ? { farm: str(r.farm_id) } : {}),
    ...(str(r.tenant_id) ? { tenant: str(r.tenant_id) } : {}),
    ...(num(r.allocation) !== undefined ? { allocation: num(r.allocation) } : {}),
    ...(num(r.slot) !== undefined ? { slot: num(r.slot) } : {}),
    ...(str(r.node_id) ? { node: str(r.node_id) } : {}),
    ...(str(r.network_id) ? { network: str(r.network_id) } : {}),
    ...(nr !== undefined ? { nr: nrIdText(nr) } : {}),
    data,
  };
  return { ...e, text: eventText(e) };
}

export class Events implements EventLog {
  private settled = -1;
  private advancing: Promise<number> | undefined;
  private readonly startedAt: number;
  private prunedAt = 0;

  constructor(private readonly ctx: StoreContext) {
    this.startedAt = ctx.now();
  }

  head(): Promise<number> {
    // One walk at a time; callers arriving meanwhile share it.
    return (this.advancing ??= this.advance().finally(() => {
      this.advancing = undefined;
    }));
  }

  private async advance(): Promise<number> {
    const { db } = this.ctx;
    if (this.settled < 0) {
      // At start: everything logged before HOLE_MS ago is settled (holes there never fill), and so
      // is everything below the oldest event kept (the retention's holes).
      const [r] = await db.query<{ old: string | null; first: string | null }>(
        'SELECT (SELECT max(id) FROM events WHERE logged_at < xn_db_now() - $1) AS old, (SELECT min(id) - 1 FROM events) AS first',
        [HOLE_MS],
      );
      this.settled = Math.max(Number(r?.old ?? 0), Number(r?.first ?? 0));
    }
    for (;;) {
      const rows = await db.query<{ id: string; logged_at: string; now: string }>(
        'SELECT id, logged_at, xn_db_now() AS now FROM events WHERE id > $1 ORDER BY id LIMIT 5000',
        [this.settled],
      );
      let s = this.settled;
      for (const r of rows) {
        const id = Number(r.id);
        // A hole before this id: wait for it unless this row (inserted after the hole's id was
        // taken) is older than HOLE_MS.
        if (id !== s + 1 && Number(r.now) - Number(r.logged_at) < HOLE_MS) break;
        s = id;
      }
      const moved = s !== this.settled;
      this.settled = s;
      if (!moved || rows.length < 5000) return this.settled;
    }
  }

  async list(f: EventFilter): Promise<EventPage> {
    const head = await this.head();
    const limit = Math.max(1, Math.min(f.limit ?? 200, MAX_EVENTS_PAGE));
    const where: string[] = ['id <= $1'];
    const params: unknown[] = [head];
    const add = (sql: string, v: unknown): void => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (f.farm !== undefined) add('farm_id = ?', f.farm);
    if (f.tenant !== undefined) add('tenant_id = ?', f.tenant);
    if (f.allocation !== undefined) add('allocation = ?', f.allocation);
    if (f.slot !== undefined) add('slot = ?', f.slot);
    if (f.node !== undefined) add('node_id = ?', f.node);
    if (f.network !== undefined) add('network_id = ?', f.network);
    if (f.since !== undefined) add('at >= ?', f.since);
    if (f.until !== undefined) add('at <= ?', f.until);
    if (f.kinds?.length) {
      const exact = f.kinds.filter((k) => !k.endsWith('*'));
      const prefixes = f.kinds.filter((k) => k.endsWith('*')).map((k) => k.slice(0, -1));
      const parts: string[] = [];
      if (exact.length) {
        params.push(exact);
        parts.push(`kind = ANY($${params.length})`);
      }
      for (const p of prefixes) {
        params.push(`${p.replace(/[\\%_]/g, '\\$&')}%`);
        parts.push(`kind LIKE $${params.length}`);
      }
      where.push(`(${parts.join(' OR ')})`);
    }
    const tail = f.after !== undefined;
    if (tail) add('id > ?', f.after);
    if (f.before !== undefined) add('id < ?', f.before);
    params.push(limit + 1);
    const rows = await this.ctx.db.query(
      `SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY id ${tail ? 'ASC' : 'DESC'} LIMIT $${params.length}`,
      params,
    );
    const more = rows.length > limit;
    const page = rows.slice(0, limit).map(eventRecord);
    if (!tail) page.reverse();
    const next = tail && more ? page[page.length - 1]!.id : head;
    return { events: page, next, more };
  }

  async tick(): Promise<{ silent: number; pruned: number }> {
    const { db, options } = this.ctx;
    const now = this.ctx.now();
    let silent = 0;
    // As the lease sweep: right after a start every node looks silent until it has heartbeated.
    if (now >= this.startedAt + options.leaseTtlMs + options.fenceMarginMs) {
      const [r] = await this.ctx.retry(() =>
        db.query<{ n: number }>('SELECT xn_ev_watch_nodes($1, $2) AS n', [now, options.leaseTtlMs]),
      );
      silent = Number(r?.n ?? 0);
    }
    let pruned = 0;
    if (now - this.prunedAt >= PRUNE_EVERY_MS) {
      this.prunedAt = now;
      pruned = await this.prune(now);
    }
    return { silent, pruned };
  }

  /** Drops events older than the retention, and the oldest beyond the row limit. */
  async prune(now = this.ctx.now()): Promise<number> {
    const { db, options } = this.ctx;
    let n = 0;
    for (const [sql, v] of [
      ['DELETE FROM events WHERE at < $1', now - options.eventRetentionMs],
      ['DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - $1', options.eventMaxRows],
    ] as const) {
      const [r] = await db.query<{ n: number; top: string | null }>(
        `WITH d AS (${sql} RETURNING id) SELECT count(*)::int AS n, max(id) AS top FROM d`,
        [v],
      );
      n += Number(r?.n ?? 0);
      // The ids dropped are holes that never fill: a tail need not wait at them.
      if (r?.top !== null && r?.top !== undefined) this.settled = Math.max(this.settled, Number(r.top));
    }
    return n;
  }
}
