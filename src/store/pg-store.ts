// The Store on PostgreSQL (PGlite or a server). Every decision that must hold across instances —
// which id is free, who holds a slot, which epoch — is taken inside the database under a row lock
// (see migrations/001_init.sql); this file validates input, calls the SQL and shapes the answers.

import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import {
  ExitnodeError,
  isExitnodeError,
  q,
  allocation as planAllocation,
  nrPrefix,
  nrIdText,
  nrId,
  checkSlot,
  checkAllocationNumber,
  upstreamIP6,
  DEFAULT_UPSTREAM_LL,
  Ip4,
  Ip6,
  Ip4Prefix,
} from '../core/index.js';
import { checkUpstreamLL, checkUpstreamIP6 } from '../render/index.js';
import { StoreErrors } from './errors.js';
import type { SqlClient, Queryable } from './sql.js';
import type {
  AllocationRecord,
  Ipv4Pool,
  LeaseRecord,
  NetworkRecord,
  NodeRecord,
  NodeView,
  Principal,
  ResourceRecord,
  Scope,
  SlotMove,
  SlotRecord,
  Store,
  StoreOptions,
  HeartbeatReport,
} from './types.js';

const MIGRATIONS = join(dirname(fileURLToPath(import.meta.url)), 'migrations');
/** pg_advisory_xact_lock key for migrations: "xnmg". */
const MIGRATION_LOCK = 0x786e6d67;

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const NETWORK_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const NETWORK_ID_RE = /^tn-[0-9a-f]{12}$/;
const WG_KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export const DEFAULTS: Required<StoreOptions> = {
  clock: () => Date.now(),
  leaseTtlMs: 5000,
  fenceMarginMs: 0,
  quarantineMs: 600_000,
};

export function checkName(kind: string, v: string, re = NAME_RE): string {
  if (typeof v !== 'string' || !re.test(v)) {
    const rule =
      re === NAME_RE
        ? 'lowercase letters, digits, ".", "_" and "-", starting with a letter or digit, at most 63 characters'
        : 'letters, digits, ".", "_" and "-", starting with a letter or digit, at most 63 characters';
    throw new ExitnodeError(StoreErrors.NAME_SYNTAX, `${kind} name ${q(v)} is not allowed: use ${rule}`);
  }
  return v;
}

export function checkWgKey(v: string): string {
  if (typeof v !== 'string' || !WG_KEY_RE.test(v)) {
    throw new ExitnodeError(
      StoreErrors.KEY_SYNTAX,
      `public key ${q(v)} is not a WireGuard key: it must be 32 bytes in base64 (44 characters ending in "=")`,
    );
  }
  return v;
}

/** Applies the migrations not yet applied, in order, under an advisory lock (safe when several instances start at once). */
export async function migrate(db: SqlClient): Promise<number[]> {
  const files = readdirSync(MIGRATIONS)
    .filter((f) => /^\d{3}_.*\.sql$/.test(f))
    .sort();
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
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

interface PgError {
  code?: string;
  constraint?: string;
  message?: string;
}
const pgCode = (e: unknown): string | undefined => (e as PgError)?.code;

type Row = Record<string, unknown>;
interface AddRow {
  status: string;
  nr_id: number | null;
  nr_count: number | null;
  detail: string | null;
}
interface AllocItem {
  r: { tenant: string; network: string; node: string; idempotencyKey?: string };
  resolve(row: AddRow | undefined): void;
  reject(e: unknown): void;
}
/** Items per xn_add_resources call: past this a batch holds the slot lock long enough to hurt the other instance. */
const MAX_ALLOC_BATCH = 64;
const str = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));

export class PgStore implements Store {
  readonly options: Required<StoreOptions>;
  private listeners = new Set<(nodes: string[]) => void>();
  /** Store clock at start: no slot moves for one TTL plus the margin after it (see sweep()). */
  private readonly startedAt: number;

  private constructor(
    private db: SqlClient,
    options: StoreOptions,
  ) {
    this.options = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
    this.startedAt = this.options.clock();
  }

  get driver(): 'pglite' | 'pg' {
    return this.db.driver;
  }

  static async open(db: SqlClient, options: StoreOptions = {}): Promise<PgStore> {
    await migrate(db);
    return new PgStore(db, options);
  }

  private plans = new Map<string, ReturnType<typeof planAllocation>>();
  /** Allocations never change once registered, so their parsed plan is kept. */
  private plan(number: number, prefix: string): ReturnType<typeof planAllocation> {
    const k = `${number} ${prefix}`;
    let p = this.plans.get(k);
    if (!p) this.plans.set(k, (p = planAllocation(prefix, number)));
    return p;
  }

  private now(): number {
    return this.options.clock();
  }

  /** Retries serialisation failures and deadlocks, which the database may answer under contention. */
  private async retry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
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

  // ---- farms, tenants, tokens ----

  async createFarm(id: string): Promise<void> {
    checkName('farm', id);
    await this.insertUnique(
      'INSERT INTO farms (id, created_at) VALUES ($1, $2)',
      [id, this.now()],
      `farm ${q(id)} exists already`,
    );
  }

  async hasFarm(id: string): Promise<boolean> {
    return (await this.db.query('SELECT 1 FROM farms WHERE id = $1', [id])).length > 0;
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1');
  }

  async createTenant(id: string): Promise<void> {
    checkName('tenant', id);
    await this.insertUnique(
      'INSERT INTO tenants (id, created_at) VALUES ($1, $2)',
      [id, this.now()],
      `tenant ${q(id)} exists already`,
    );
  }

  private async insertUnique(sql: string, params: unknown[], message: string): Promise<void> {
    try {
      await this.db.query(sql, params);
    } catch (e) {
      if (pgCode(e) === '23505') throw new ExitnodeError(StoreErrors.NAME_TAKEN, message);
      throw e;
    }
  }

  async createToken(hash: string, scope: Scope, subject: string | null): Promise<void> {
    // ON CONFLICT: only the same token (a given admin token, two instances starting) can collide.
    await this.db.query(
      'INSERT INTO tokens (hash, scope, subject, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING',
      [hash, scope, subject, this.now()],
    );
  }

  async bootstrapAdmin(hash: string): Promise<boolean> {
    // Several instances may start at once on one database: only one of them makes the admin token.
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK + 2]);
      if ((await tx.query("SELECT 1 FROM tokens WHERE scope = 'admin' LIMIT 1")).length) return false;
      await tx.query("INSERT INTO tokens (hash, scope, subject, created_at) VALUES ($1, 'admin', NULL, $2)", [
        hash,
        this.now(),
      ]);
      return true;
    });
  }

  async findToken(hash: string): Promise<Principal | undefined> {
    const [r] = await this.db.query<{ scope: Scope; subject: string | null }>(
      'SELECT scope, subject FROM tokens WHERE hash = $1',
      [hash],
    );
    return r ? { scope: r.scope, subject: r.subject } : undefined;
  }

  async hasAdminToken(): Promise<boolean> {
    return (await this.db.query("SELECT 1 FROM tokens WHERE scope = 'admin' LIMIT 1")).length > 0;
  }

  // ---- allocations ----

  async createAllocation(a: {
    farm: string;
    prefix: string;
    number?: number;
    ipv4?: Ipv4Pool;
    upstream?: { ll?: string; ip6?: string };
  }): Promise<AllocationRecord> {
    // The /48 rules of the plan (exactly a /48, no host bits, not link-local); number checked below.
    const plan = planAllocation(a.prefix, a.number ?? 1);
    const prefix = plan.prefix.toString();
    const ipv4 = a.ipv4 ? checkPool(a.ipv4) : undefined;
    // The renderer's rules (fe80::/64 and P::/64, not a gateway's address): what is stored here
    // must render at GET /v1/allocations/{n}/upstream.
    const ll = Ip6.parse(
      a.upstream?.ll !== undefined ? upstreamRule(() => checkUpstreamLL(String(a.upstream!.ll))) : DEFAULT_UPSTREAM_LL,
    );
    const ip6 =
      a.upstream?.ip6 !== undefined
        ? Ip6.parse(upstreamRule(() => checkUpstreamIP6(plan, String(a.upstream!.ip6))))
        : upstreamIP6(plan);
    if (a.number !== undefined) checkAllocationNumber(a.number);
    return this.retry(() =>
      this.db.transaction(async (tx) => {
        // Registration is rare: one lock for all of it keeps "lowest free number" simple and exact.
        await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK + 1]);
        if (!(await tx.query('SELECT 1 FROM farms WHERE id = $1', [a.farm])).length)
          throw new ExitnodeError(StoreErrors.FARM_UNKNOWN, `farm ${q(a.farm)} does not exist`);
        const [taken] = await tx.query<{ number: number }>('SELECT number FROM allocations WHERE prefix = $1', [
          prefix,
        ]);
        if (taken)
          throw new ExitnodeError(
            StoreErrors.ALLOCATION_TAKEN,
            `${prefix} is registered already (allocation ${taken.number}); a /48 can be registered once in the whole grid`,
          );
        let number = a.number;
        if (number === undefined) {
          const [r] = await tx.query<{ n: number | null }>(
            'SELECT min(g)::int AS n FROM generate_series(1, 65535) g WHERE NOT EXISTS (SELECT 1 FROM allocations WHERE number = g)',
          );
          if (!r || r.n === null)
            throw new ExitnodeError(
              StoreErrors.ALLOCATION_NUMBERS_EXHAUSTED,
              'every allocation number from 1 to 65535 is in use',
            );
          number = Number(r.n);
        } else if ((await tx.query('SELECT 1 FROM allocations WHERE number = $1', [number])).length) {
          throw new ExitnodeError(
            StoreErrors.ALLOCATION_TAKEN,
            `allocation number ${number} is in use already; numbers are unique across the grid (omit it to get the lowest free one)`,
          );
        }
        await tx.query(
          'INSERT INTO allocations (number, farm_id, prefix, ipv4, upstream_ll, upstream_ip6, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
          [number, a.farm, prefix, ipv4 ? JSON.stringify(ipv4) : null, ll.toString(), ip6.toString(), this.now()],
        );
        await tx.query(
          'INSERT INTO slots (allocation, slot, high_water) SELECT $1, e, e << 12 FROM generate_series(1, 15) e',
          [number],
        );
        return {
          number,
          farm: a.farm,
          prefix,
          ...(ipv4 ? { ipv4 } : {}),
          upstream: { ll: ll.toString(), ip6: ip6.toString() },
        };
      }),
    );
  }

  async getAllocation(number: number): Promise<AllocationRecord | undefined> {
    const [r] = await this.db.query('SELECT * FROM allocations WHERE number = $1', [number]);
    return r ? allocationRecord(r) : undefined;
  }

  async listAllocations(farm?: string): Promise<AllocationRecord[]> {
    const rows = await this.db.query(
      'SELECT * FROM allocations WHERE $1::text IS NULL OR farm_id = $1 ORDER BY number',
      [farm ?? null],
    );
    return rows.map(allocationRecord);
  }

  async listSlots(allocation: number): Promise<SlotRecord[]> {
    const rows = await this.db.query(
      'SELECT s.*, a.ipv4 FROM slots s JOIN allocations a ON a.number = s.allocation WHERE s.allocation = $1 ORDER BY s.slot',
      [allocation],
    );
    return rows.map(slotRecord);
  }

  // ---- nodes and leases ----

  async createNode(n: {
    farm: string;
    id: string;
    publicIPv4?: string;
    publicIPv6?: string;
    exitCapable: boolean;
  }): Promise<NodeRecord> {
    checkName('node', n.id);
    const v4 = n.publicIPv4 !== undefined ? Ip4.parse(n.publicIPv4).toString() : null;
    const v6 = n.publicIPv6 !== undefined ? Ip6.parse(n.publicIPv6).toString() : null;
    return this.db.transaction(async (tx) => {
      if (!(await tx.query('SELECT 1 FROM farms WHERE id = $1', [n.farm])).length)
        throw new ExitnodeError(StoreErrors.FARM_UNKNOWN, `farm ${q(n.farm)} does not exist`);
      try {
        await tx.query(
          'INSERT INTO nodes (id, farm_id, public_ipv4, public_ipv6, exit_capable, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
          [n.id, n.farm, v4, v6, n.exitCapable, this.now()],
        );
      } catch (e) {
        if (pgCode(e) === '23505')
          throw new ExitnodeError(
            StoreErrors.NAME_TAKEN,
            `node ${q(n.id)} exists already (node ids are unique across the grid)`,
          );
        throw e;
      }
      await tx.query('INSERT INTO node_versions (node_id, version) VALUES ($1, 1)', [n.id]);
      return {
        id: n.id,
        farm: n.farm,
        ...(v4 ? { publicIPv4: v4 } : {}),
        ...(v6 ? { publicIPv6: v6 } : {}),
        exitCapable: n.exitCapable,
        healthy: false,
      };
    });
  }

  async getNode(id: string): Promise<NodeRecord | undefined> {
    const [r] = await this.db.query('SELECT * FROM nodes WHERE id = $1', [id]);
    return r ? this.nodeRecord(r) : undefined;
  }

  async listNodes(farm: string): Promise<NodeRecord[]> {
    return (await this.db.query('SELECT * FROM nodes WHERE farm_id = $1 ORDER BY id', [farm])).map((r) =>
      this.nodeRecord(r),
    );
  }

  private nodeRecord(r: Row): NodeRecord {
    const hb = r.last_heartbeat === null ? undefined : Number(r.last_heartbeat);
    return {
      id: String(r.id),
      farm: String(r.farm_id),
      ...(r.public_ipv4 ? { publicIPv4: String(r.public_ipv4) } : {}),
      ...(r.public_ipv6 ? { publicIPv6: String(r.public_ipv6) } : {}),
      exitCapable: Boolean(r.exit_capable),
      ...(hb !== undefined ? { lastHeartbeat: hb } : {}),
      healthy: hb !== undefined && hb + this.options.leaseTtlMs > this.now(),
    };
  }

  async assignSlot(allocation: number, slot: number, node: string): Promise<SlotRecord> {
    checkSlot(slot);
    const a = await this.getAllocation(allocation);
    if (!a) throw new ExitnodeError(StoreErrors.ALLOCATION_UNKNOWN, `allocation ${allocation} does not exist`);
    const n = await this.getNode(node);
    if (!n) throw new ExitnodeError(StoreErrors.NODE_UNKNOWN, `node ${q(node)} does not exist`);
    if (n.farm !== a.farm)
      throw new ExitnodeError(
        StoreErrors.NODE_OTHER_FARM,
        `node ${q(node)} belongs to farm ${q(n.farm)}, allocation ${allocation} to farm ${q(a.farm)}`,
      );
    if (!n.exitCapable)
      throw new ExitnodeError(
        StoreErrors.NODE_NOT_EXIT_CAPABLE,
        `node ${q(node)} is not exit-capable; register it with exitCapable: true to give it a slot`,
      );
    this.changed(
      await this.retry(() =>
        this.db.query('SELECT * FROM xn_assign_slot($1, $2, $3, $4, $5)', [
          allocation,
          slot,
          node,
          this.now(),
          this.options.leaseTtlMs,
        ]),
      ),
    );
    const s = (await this.listSlots(allocation))[slot - 1]!;
    return s;
  }

  async heartbeat(node: string, report: HeartbeatReport = {}): Promise<LeaseRecord[]> {
    // A late heartbeat must not win back a slot the sweep has already moved: sweep first.
    await this.sweep();
    const now = this.now();
    const unhealthy = (report.slots ?? []).filter((x) => !x.healthy);
    const release = report.release ?? [];
    const rows = await this.retry(() =>
      this.db.transaction(async (tx) => {
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
            [node, r.allocation, r.slot, r.epoch, now - this.options.fenceMarginMs - 1],
          );
        }
        const skip = [...unhealthy, ...release].map((x) => `${x.allocation}/${x.slot}`);
        return tx.query<{
          allocation: number;
          slot: number;
          epoch: number;
          lease_expires_at: number;
          moving_to: string | null;
        }>(
          `UPDATE slots SET lease_expires_at = CASE WHEN (allocation::text || '/' || slot::text) = ANY($3::text[]) THEN lease_expires_at ELSE $2 END,
                renewed_at = CASE WHEN (allocation::text || '/' || slot::text) = ANY($3::text[]) THEN renewed_at ELSE $4 END
          WHERE node_id = $1 RETURNING allocation, slot, epoch, lease_expires_at, moving_to`,
          [node, now + this.options.leaseTtlMs, skip, now],
        );
      }),
    );
    if (release.length) await this.sweep(true);
    const gone = new Set(release.map((r) => `${r.allocation}/${r.slot}`));
    return rows
      .filter((r) => !gone.has(`${r.allocation}/${r.slot}`))
      .map((r) => ({
        allocation: Number(r.allocation),
        slot: Number(r.slot),
        epoch: Number(r.epoch),
        leaseExpiresAt: Number(r.lease_expires_at),
        ...(r.moving_to ? { movingTo: String(r.moving_to) } : {}),
      }))
      .sort((x, y) => x.allocation - y.allocation || x.slot - y.slot);
  }

  async moveSlot(allocation: number, slot: number, node: string): Promise<SlotRecord> {
    checkSlot(slot);
    const cur = (await this.listSlots(allocation))[slot - 1];
    if (!cur?.node) return this.assignSlot(allocation, slot, node);
    if (cur.node === node)
      throw new ExitnodeError(
        StoreErrors.SLOT_MOVE_NOOP,
        `slot ${slot} of allocation ${allocation} is already held by node ${q(node)}`,
      );
    const n = await this.getNode(node);
    if (!n) throw new ExitnodeError(StoreErrors.NODE_UNKNOWN, `node ${q(node)} does not exist`);
    const a = (await this.getAllocation(allocation))!;
    if (n.farm !== a.farm)
      throw new ExitnodeError(
        StoreErrors.NODE_OTHER_FARM,
        `node ${q(node)} belongs to farm ${q(n.farm)}, allocation ${allocation} to farm ${q(a.farm)}`,
      );
    if (!n.exitCapable)
      throw new ExitnodeError(
        StoreErrors.NODE_NOT_EXIT_CAPABLE,
        `node ${q(node)} is not exit-capable; register it with exitCapable: true to give it a slot`,
      );
    if (!n.healthy)
      throw new ExitnodeError(
        StoreErrors.SLOT_MOVE_TARGET_DOWN,
        `node ${q(node)} has not sent a heartbeat within the lease TTL (${this.options.leaseTtlMs} ms): a slot moved there would have no gateway`,
      );
    // A new view version wakes the holder's long-poll; its agent heartbeats at once and reads the move.
    this.changed(
      await this.retry(() =>
        this.db.transaction(async (tx) => {
          await tx.query('UPDATE slots SET moving_to = $3 WHERE allocation = $1 AND slot = $2', [
            allocation,
            slot,
            node,
          ]);
          return tx.query('SELECT xn_touch($1)', [[cur.node]]);
        }),
      ),
    );
    return (await this.listSlots(allocation))[slot - 1]!;
  }

  /**
   * Moves every slot whose lease lapsed (plus the fencing margin). Not during the first TTL plus
   * margin after this store started: after a TNoDB outage longer than the TTL every lease has
   * lapsed, and the first node back would otherwise take the slots of nodes that simply have not
   * heartbeated yet. One TTL gives every live node time to renew. `released` skips the grace: a
   * slot its holder gave up explicitly moves at once.
   */
  async sweep(released = false): Promise<SlotMove[]> {
    const now = this.now();
    if (!released && now < this.startedAt + this.options.leaseTtlMs + this.options.fenceMarginMs) return [];
    const rows = await this.retry(() =>
      this.db.query<{ allocation: number; slot: number; previous: string | null; node: string; epoch: number }>(
        'SELECT * FROM xn_sweep($1, $2, $3)',
        [now, this.options.leaseTtlMs, this.options.fenceMarginMs],
      ),
    );
    if (rows.length) this.changed(rows);
    return rows.map((r) => ({
      allocation: Number(r.allocation),
      slot: Number(r.slot),
      previous: r.previous,
      node: r.node,
      epoch: Number(r.epoch),
    }));
  }

  // ---- networks and NRs ----

  async createNetwork(n: {
    tenant: string;
    name: string;
    allocation?: number;
    idempotencyKey?: string;
  }): Promise<{ network: NetworkRecord; slotNrs: number; replay?: boolean }> {
    checkName('network', n.name, NETWORK_NAME_RE);
    const key = n.idempotencyKey;
    if (key !== undefined) {
      const replay = await this.networkReplay(n.tenant, key, n.name);
      if (replay) return replay;
    }
    if (n.allocation !== undefined) {
      checkAllocationNumber(n.allocation);
      if (!(await this.getAllocation(n.allocation)))
        throw new ExitnodeError(StoreErrors.ALLOCATION_UNKNOWN, `allocation ${n.allocation} does not exist`);
    }
    if (!(await this.db.query('SELECT 1 FROM tenants WHERE id = $1', [n.tenant])).length)
      throw new ExitnodeError(StoreErrors.TENANT_UNKNOWN, `tenant ${q(n.tenant)} does not exist`);
    await this.sweep();
    const id = `tn-${randomBytes(6).toString('hex')}`;
    let r: { status: string; slot: number | null; nr_count: number | null } | undefined;
    try {
      [r] = await this.retry(() =>
        this.db.query<{ status: string; slot: number | null; nr_count: number | null }>(
          'SELECT * FROM xn_create_network($1, $2, $3, $4, $5, $6)',
          [n.tenant, id, n.name, n.allocation ?? null, this.now(), this.options.quarantineMs],
        ),
      );
    } catch (e) {
      if (pgCode(e) !== '23505') throw e;
      r = { status: 'name_taken', slot: null, nr_count: null };
    }
    if (r?.status === 'name_taken' && key !== undefined) {
      // The same request, sent twice at once: the other copy made it.
      const replay = await this.networkReplay(n.tenant, key, n.name);
      if (replay) return replay;
    }
    const where = n.allocation !== undefined ? `allocation ${n.allocation}` : 'any allocation';
    switch (r?.status) {
      case 'ok':
        break;
      case 'name_taken':
        throw new ExitnodeError(StoreErrors.NAME_TAKEN, `you have a network named ${q(n.name)} already`);
      case 'full':
        throw new ExitnodeError(
          StoreErrors.SLOT_FULL,
          `every slot with a node in ${where} is full; the farmer must enable another ExitNode (assign a node to a free slot)`,
        );
      case 'lapsed':
        throw new ExitnodeError(
          StoreErrors.SLOT_LEASE_LAPSED,
          `the slots of ${where} have nodes, but no lease is live: their node agents have not sent a heartbeat within the lease TTL (${this.options.leaseTtlMs / 1000} s); start the agents (exitnode agent run) or assign the slot again`,
        );
      default:
        throw new ExitnodeError(
          StoreErrors.SLOT_UNASSIGNED,
          `no slot of ${where} has a node with a live lease; the farmer must assign one (PUT /v1/allocations/{number}/slots/{slot}, or exitnode slot assign)`,
        );
    }
    this.changed(r);
    const network = (await this.getNetwork(id))!;
    if (key !== undefined) {
      const exit = network.resources.find((x) => x.id === network.exit)!;
      await this.db.query('INSERT INTO idempotency VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING', [
        n.tenant,
        key,
        network.id,
        exit.node,
        network.allocation,
        parseInt(network.exit, 16),
        this.now(),
      ]);
    }
    return { network, slotNrs: Number(r.nr_count) };
  }

  /** The network an Idempotency-Key made, if it made one (for a retried POST /v1/networks). */
  private async networkReplay(
    tenant: string,
    key: string,
    name: string,
  ): Promise<{ network: NetworkRecord; slotNrs: number; replay: true } | undefined> {
    const [i] = await this.db.query<{ network_id: string; nr_id: number }>(
      'SELECT network_id, nr_id FROM idempotency WHERE tenant_id = $1 AND key = $2',
      [tenant, key],
    );
    if (!i) return undefined;
    const net = await this.getNetwork(i.network_id, tenant);
    if (!net)
      throw new ExitnodeError(
        StoreErrors.IDEMPOTENCY_GONE,
        `Idempotency-Key ${q(key)} made network ${q(i.network_id)}, which has been deleted since; use a new key`,
      );
    if (net.name !== name || net.exit !== nrIdText(Number(i.nr_id))) {
      throw new ExitnodeError(
        StoreErrors.IDEMPOTENCY_MISMATCH,
        `Idempotency-Key ${q(key)} was used for another request (network ${q(net.name)}, NR ${nrIdText(Number(i.nr_id))}), not for creating network ${q(name)}`,
      );
    }
    const [c] = await this.db.query<{ nr_count: number }>(
      'SELECT nr_count FROM slots WHERE allocation = $1 AND slot = $2',
      [net.allocation, net.slot],
    );
    return { network: net, slotNrs: Number(c?.nr_count ?? 0), replay: true };
  }

  // ---- group commit of allocations ----
  // Requests that arrive while this instance's allocation transaction is in flight wait, and go
  // together in the next call of xn_add_resources: one plpgsql call and one commit (WAL flush) per
  // batch. The queue only groups; the database decides (see 003_batch_alloc.sql). One batch in
  // flight per instance, whatever the slots: on PostgreSQL, one queue per slot measured at half
  // the rate of one queue (bench:alloc, two instances: 1272/s against 2336-2481/s), the batches
  // of 15 queues being mostly of one request.
  private allocQueue: { items: AllocItem[]; busy: boolean } = { items: [], busy: false };

  private enqueue(item: AllocItem): void {
    const q = this.allocQueue;
    q.items.push(item);
    if (!q.busy) void this.drain(q);
  }

  private async drain(q: { items: AllocItem[]; busy: boolean }): Promise<void> {
    q.busy = true;
    try {
      for (;;) {
        // Each batch starts after the event loop's poll phase: every request read from the
        // sockets in this turn joins it. PGlite computes on this thread, so without the wait the
        // first request of a turn would run alone while the others are still unread.
        await new Promise((r) => setImmediate(r));
        if (!q.items.length) break;
        const batch = q.items.splice(0, MAX_ALLOC_BATCH);
        try {
          const rows = await this.addBatch(batch);
          batch.forEach((it, i) => it.resolve(rows[i]));
        } catch (e) {
          // One item's error (not a status: e.g. a unique key raced by another instance) must not
          // fail the others: each goes again alone and gets its own answer.
          if (batch.length === 1) {
            batch[0]!.reject(e);
            continue;
          }
          for (const it of batch) {
            try {
              it.resolve((await this.addBatch([it]))[0]);
            } catch (e1) {
              it.reject(e1);
            }
          }
        }
      }
    } finally {
      q.busy = false;
    }
  }

  private async addBatch(batch: AllocItem[]): Promise<(AddRow | undefined)[]> {
    const rows = await this.retry(() =>
      this.db.query<AddRow & { ord: number }>('SELECT * FROM xn_add_resources($1, $2, $3, $4, $5, $6)', [
        batch.map((x) => x.r.tenant),
        batch.map((x) => x.r.network),
        batch.map((x) => x.r.node),
        batch.map((x) => x.r.idempotencyKey ?? null),
        this.now(),
        this.options.quarantineMs,
      ]),
    );
    const byOrd = new Map(rows.map((x) => [Number(x.ord), x]));
    return batch.map((_, i) => byOrd.get(i + 1));
  }

  async addResource(r: {
    tenant: string;
    network: string;
    node: string;
    idempotencyKey?: string;
  }): Promise<{ resource: ResourceRecord; replay: boolean; slotNrs: number; allocation: number; slot: number }> {
    const key = r.idempotencyKey;
    const row = await new Promise<AddRow | undefined>((resolve, reject) => this.enqueue({ r, resolve, reject }));
    const id = row?.nr_id === null || row?.nr_id === undefined ? undefined : nrIdText(Number(row.nr_id));
    switch (row?.status) {
      case 'ok':
      case 'replay': {
        // detail carries the allocation's /48: no second round trip to shape the answer.
        const [number, prefix] = String(row.detail).split(' ');
        const nr = Number(row.nr_id);
        const resource = { id: id!, node: r.node, prefix: nrPrefix(this.plan(Number(number), prefix!), nr).toString() };
        if (row.status === 'ok') this.changed(row);
        return {
          resource,
          replay: row.status === 'replay',
          slotNrs: Number(row.nr_count),
          allocation: Number(number),
          slot: nr >> 12,
        };
      }
      case 'no_network':
        throw new ExitnodeError(StoreErrors.NETWORK_UNKNOWN, `network ${q(r.network)} does not exist or is not yours`);
      case 'no_node':
        throw new ExitnodeError(StoreErrors.NODE_UNKNOWN, `node ${q(r.node)} does not exist`);
      case 'node_farm':
        throw new ExitnodeError(
          StoreErrors.NODE_OTHER_FARM,
          `node ${q(r.node)} is not in farm ${q(row.detail)}, which owns the network's allocation`,
        );
      case 'node_taken':
        throw new ExitnodeError(
          StoreErrors.NR_NODE_TAKEN,
          `network ${q(r.network)} has NR ${id} on node ${q(r.node)} already; a network has one NR per node`,
        );
      case 'full':
        throw new ExitnodeError(
          StoreErrors.SLOT_FULL,
          `the slot of network ${q(r.network)} is full: every NR id is in use${Number(row.detail) ? ` or in quarantine (${row.detail} ids)` : ''}; the farmer should enable another ExitNode (assign a node to another slot) for new networks`,
        );
      case 'idem_mismatch':
        throw new ExitnodeError(
          StoreErrors.IDEMPOTENCY_MISMATCH,
          `Idempotency-Key ${q(key)} was used for NR ${id} of network/node ${q(row.detail)}, not for this request`,
        );
      case 'idem_gone':
        throw new ExitnodeError(
          StoreErrors.IDEMPOTENCY_GONE,
          `Idempotency-Key ${q(key)} made NR ${id}, which has been removed since; use a new key`,
        );
      default:
        throw new Error(`xn_add_resource returned ${q(row)}`);
    }
  }

  private async ownNetwork(tenant: string, network: string): Promise<NetworkRecord> {
    const n = await this.getNetwork(network, tenant);
    if (!n)
      throw new ExitnodeError(StoreErrors.NETWORK_UNKNOWN, `network ${q(network)} does not exist or is not yours`);
    return n;
  }

  async removeResource(tenant: string, network: string, nr: string): Promise<void> {
    const n = await this.ownNetwork(tenant, network);
    const id = nrId(nr, n.slot);
    if (nrIdText(id) === n.exit)
      throw new ExitnodeError(
        StoreErrors.NR_IS_EXIT,
        `NR ${n.exit} is the ExitPoint of network ${q(network)}; it goes only with the network (delete the network)`,
      );
    const gone = await this.retry(() =>
      this.db.query<{ n: number }>('SELECT xn_release($1, $2, $3) AS n', [network, id, this.now()]),
    );
    if (!Number(gone[0]?.n))
      throw new ExitnodeError(StoreErrors.NR_UNKNOWN, `network ${q(network)} has no NR ${nrIdText(id)}`);
    this.changed(gone);
  }

  async deleteNetwork(tenant: string, network: string): Promise<void> {
    await this.ownNetwork(tenant, network);
    this.changed(await this.retry(() => this.db.query('SELECT xn_release($1, NULL, $2)', [network, this.now()])));
  }

  async getNetwork(id: string, tenant?: string): Promise<NetworkRecord | undefined> {
    if (!NETWORK_ID_RE.test(id)) return undefined;
    return (await this.networks('n.id = $1 AND ($2::text IS NULL OR n.tenant_id = $2)', [id, tenant ?? null]))[0];
  }

  async listNetworks(tenant?: string): Promise<NetworkRecord[]> {
    return this.networks('$1::text IS NULL OR n.tenant_id = $1', [tenant ?? null]);
  }

  private async networks(where: string, params: unknown[], db: Queryable = this.db): Promise<NetworkRecord[]> {
    const nets = await db.query(
      `SELECT n.*, a.prefix FROM networks n JOIN allocations a ON a.number = n.allocation WHERE ${where} ORDER BY n.created_at, n.id`,
      params,
    );
    if (!nets.length) return [];
    const res = await db.query(
      'SELECT network_id, nr_id, node_id, public_key FROM resources WHERE network_id = ANY($1) ORDER BY nr_id',
      [nets.map((n) => n.id)],
    );
    const by = new Map<string, ResourceRecord[]>();
    const plans = new Map<number, ReturnType<typeof planAllocation>>();
    for (const n of nets) plans.set(Number(n.allocation), planAllocation(String(n.prefix), Number(n.allocation)));
    const allocOf = new Map(nets.map((n) => [String(n.id), Number(n.allocation)]));
    for (const r of res) {
      const list = by.get(String(r.network_id)) ?? [];
      const id = Number(r.nr_id);
      list.push({
        id: nrIdText(id),
        node: String(r.node_id),
        prefix: nrPrefix(plans.get(allocOf.get(String(r.network_id))!)!, id).toString(),
        ...(r.public_key ? { publicKey: String(r.public_key) } : {}),
      });
      by.set(String(r.network_id), list);
    }
    return nets.map((n) => ({
      id: String(n.id),
      name: String(n.name),
      tenant: String(n.tenant_id),
      allocation: Number(n.allocation),
      slot: Number(n.slot),
      exit: nrIdText(Number(n.exit_id)),
      resources: by.get(String(n.id)) ?? [],
    }));
  }

  async setKey(node: string, network: string, nr: string, publicKey: string): Promise<void> {
    checkWgKey(publicKey);
    const n = await this.getNetwork(network);
    if (!n) throw new ExitnodeError(StoreErrors.NETWORK_UNKNOWN, `network ${q(network)} does not exist`);
    const id = nrId(nr, n.slot);
    const r = n.resources.find((x) => x.id === nrIdText(id));
    if (!r) throw new ExitnodeError(StoreErrors.NR_UNKNOWN, `network ${q(network)} has no NR ${nrIdText(id)}`);
    if (r.node !== node)
      throw new ExitnodeError(
        StoreErrors.NOT_YOUR_NR,
        `NR ${r.id} of network ${q(network)} is hosted by another node, not ${q(node)}`,
      );
    if (r.publicKey === publicKey) return;
    await this.retry(() =>
      this.db.transaction(async (tx) => {
        // Only if it is still on this node: a failover may have moved it since the read above.
        const hit = await tx.query(
          'UPDATE resources SET public_key = $1 WHERE network_id = $2 AND nr_id = $3 AND node_id = $4 RETURNING 1',
          [publicKey, network, id, node],
        );
        if (!hit.length)
          throw new ExitnodeError(StoreErrors.NOT_YOUR_NR, `NR ${r.id} of network ${q(network)} moved to another node`);
        await tx.query('SELECT xn_touch(xn_network_nodes($1))', [network]);
      }),
    );
    this.changed(null);
  }

  // ---- views ----

  async viewVersion(node: string): Promise<number> {
    const [r] = await this.db.query<{ version: number }>('SELECT version FROM node_versions WHERE node_id = $1', [
      node,
    ]);
    if (!r) throw new ExitnodeError(StoreErrors.NODE_UNKNOWN, `node ${q(node)} does not exist`);
    return Number(r.version);
  }

  async view(node: string): Promise<NodeView> {
    // Evaluation on read: a lapsed lease moves before anyone is shown the old holder.
    await this.sweep();
    return this.db.transaction(
      async (tx) => {
        const [n] = await tx.query(
          'SELECT n.*, v.version FROM nodes n JOIN node_versions v ON v.node_id = n.id WHERE n.id = $1',
          [node],
        );
        if (!n) throw new ExitnodeError(StoreErrors.NODE_UNKNOWN, `node ${q(node)} does not exist`);
        const slots = await tx.query(
          'SELECT s.*, a.ipv4 FROM slots s JOIN allocations a ON a.number = s.allocation WHERE s.node_id = $1 ORDER BY s.allocation, s.slot',
          [node],
        );
        const nets = await tx.query<{ id: string; allocation: number; exit_id: number }>(
          `SELECT n.id, n.allocation, n.exit_id FROM networks n
          WHERE n.id IN (SELECT network_id FROM resources WHERE node_id = $1)
             OR EXISTS (SELECT 1 FROM slots s WHERE s.node_id = $1 AND s.allocation = n.allocation AND s.slot = n.slot)
          ORDER BY n.id`,
          [node],
        );
        const res = nets.length
          ? await tx.query(
              `SELECT r.network_id, r.nr_id, r.node_id, r.public_key, nd.public_ipv4, nd.public_ipv6
           FROM resources r JOIN nodes nd ON nd.id = r.node_id WHERE r.network_id = ANY($1) ORDER BY r.nr_id`,
              [nets.map((x) => x.id)],
            )
          : [];
        const numbers = [
          ...new Set([...slots.map((s) => Number(s.allocation)), ...nets.map((x) => Number(x.allocation))]),
        ];
        const allocs = numbers.length
          ? (await tx.query('SELECT * FROM allocations WHERE number = ANY($1) ORDER BY number', [numbers])).map(
              allocationRecord,
            )
          : [];
        const byNet = new Map<string, NodeView['networks'][number]['resources']>();
        for (const r of res) {
          const list = byNet.get(String(r.network_id)) ?? [];
          const id = Number(r.nr_id);
          const endpoint = r.public_ipv4
            ? `${String(r.public_ipv4)}:${id}`
            : r.public_ipv6
              ? `[${String(r.public_ipv6)}]:${id}`
              : undefined;
          list.push({
            id: nrIdText(id),
            node: String(r.node_id),
            ...(r.public_key ? { publicKey: String(r.public_key) } : {}),
            ...(endpoint ? { endpoint } : {}),
          });
          byNet.set(String(r.network_id), list);
        }
        return {
          version: Number(n.version),
          node: {
            id: String(n.id),
            ...(n.public_ipv4 ? { publicIPv4: String(n.public_ipv4) } : {}),
            ...(n.public_ipv6 ? { publicIPv6: String(n.public_ipv6) } : {}),
          },
          allocations: allocs.map((a) => ({
            number: a.number,
            prefix: a.prefix,
            upstream: {
              ll: a.upstream.ll,
              ip6: a.upstream.ip6,
              ...(a.ipv4 ? { ipv4Gateway: a.ipv4.gateway, ipv4PrefixLength: a.ipv4.prefixLength } : {}),
            },
          })),
          // The view carries GWPubIP4 as an address (DESIGN.md section 4; its length is upstream.ipv4PrefixLength).
          slots: slots.map(slotRecord).map((s) => ({
            allocation: s.allocation,
            slot: s.slot,
            epoch: s.epoch,
            ...(s.ipv4 ? { ipv4: s.ipv4.split('/')[0]! } : {}),
          })),
          networks: nets.map((x) => ({
            id: x.id,
            allocation: Number(x.allocation),
            exit: nrIdText(Number(x.exit_id)),
            resources: byNet.get(x.id) ?? [],
          })),
        };
      },
      { readOnly: true, repeatableRead: true },
    );
  }

  /** Tells this instance's listeners that views may have changed (after a committed write). */
  private changed<T>(v: T): T {
    for (const l of this.listeners) l(['*']);
    return v;
  }

  async versions(nodes: string[]): Promise<Map<string, number>> {
    if (!nodes.length) return new Map();
    const rows = await this.db.query<{ node_id: string; version: number }>(
      'SELECT node_id, version FROM node_versions WHERE node_id = ANY($1)',
      [nodes],
    );
    return new Map(rows.map((r) => [r.node_id, Number(r.version)]));
  }

  onViewChange(cb: (nodes: string[]) => void): () => void {
    this.listeners.add(cb);
    return () => {
      this.listeners.delete(cb);
    };
  }

  async stats(): Promise<{ slots: SlotRecord[]; networks: number; resources: number }> {
    const slots = (
      await this.db.query(
        'SELECT s.*, a.ipv4 FROM slots s JOIN allocations a ON a.number = s.allocation WHERE s.node_id IS NOT NULL OR s.nr_count > 0 ORDER BY s.allocation, s.slot',
      )
    ).map(slotRecord);
    const [c] = await this.db.query<{ networks: number; resources: number }>(
      'SELECT (SELECT count(*) FROM networks)::int AS networks, (SELECT count(*) FROM resources)::int AS resources',
    );
    return { slots, networks: Number(c?.networks ?? 0), resources: Number(c?.resources ?? 0) };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.db.close();
  }
}

/** The renderer's check, its message kept, under the store's code. */
function upstreamRule(check: () => string): string {
  try {
    return check();
  } catch (e) {
    if (isExitnodeError(e)) throw new ExitnodeError(StoreErrors.UPSTREAM_ADDRESS, e.message);
    throw e;
  }
}

function checkPool(p: Ipv4Pool): Ipv4Pool {
  if (!Array.isArray(p.addresses) || p.addresses.length > 15)
    throw new ExitnodeError(
      StoreErrors.IPV4_POOL,
      `the IPv4 pool lists ${q(p.addresses?.length)} addresses; at most 15 (one per slot, addresses[E-1] serves slot E)`,
    );
  if (!Number.isInteger(p.prefixLength) || p.prefixLength < 1 || p.prefixLength > 32)
    throw new ExitnodeError(
      StoreErrors.IPV4_POOL,
      `IPv4 prefixLength ${q(p.prefixLength)} must be a whole number from 1 to 32`,
    );
  const gw = Ip4.parse(p.gateway);
  const net = new Ip4Prefix(
    p.prefixLength === 32 ? gw.value : (gw.value & ~(2 ** (32 - p.prefixLength) - 1)) >>> 0,
    p.prefixLength,
  );
  const addresses = p.addresses.map((a) => {
    const ip = Ip4.parse(a);
    if (p.prefixLength < 32 && !net.contains(ip))
      throw new ExitnodeError(
        StoreErrors.IPV4_POOL,
        `IPv4 address ${q(a)} is not in the gateway's subnet ${net.toString()}`,
      );
    if (ip.equals(gw)) throw new ExitnodeError(StoreErrors.IPV4_POOL, `IPv4 address ${q(a)} is the gateway itself`);
    return ip.toString();
  });
  if (new Set(addresses).size !== addresses.length)
    throw new ExitnodeError(StoreErrors.IPV4_POOL, `the IPv4 pool lists an address twice: ${q(p.addresses)}`);
  return { addresses, prefixLength: p.prefixLength, gateway: gw.toString() };
}

function parseJson(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v;
}

function allocationRecord(r: Row): AllocationRecord {
  const ipv4 = parseJson(r.ipv4) as Ipv4Pool | null;
  return {
    number: Number(r.number),
    farm: String(r.farm_id),
    prefix: String(r.prefix),
    ...(ipv4 ? { ipv4 } : {}),
    upstream: { ll: String(r.upstream_ll), ip6: String(r.upstream_ip6) },
  };
}

function slotRecord(r: Row): SlotRecord {
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
