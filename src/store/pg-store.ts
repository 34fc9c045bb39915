// The Store on PostgreSQL (PGlite or a server). Every decision that must hold across instances —
// which id is free, who holds a slot, which epoch — is taken inside the database under a row lock
// (see migrations/001_init.sql). This class composes the store's parts and shapes the answers:
//   migrate.ts      the schema and the advisory lock keys
//   validate.ts     the input rules checked before any SQL
//   leases.ts       heartbeats renew leases; the sweep moves lapsed slots
//   alloc-queue.ts  adding NRs: the group commit of allocations and their answers
//   views.ts        a node's view and the network records, assembled from rows
//   rows.ts         row mapping into the Store's records
//   context.ts      what the parts share (database, options and clock, retries, the change signal)
//   quotas.ts       per-tenant and per-farm quotas (enforced by triggers, 004_quotas.sql)
//   events.ts       the farm's history (recorded by triggers, 005_events.sql): reading, silence watch, retention
//   dashboard.ts    the farm as the dashboard shows it, and the agents' own reports

import { randomBytes } from 'node:crypto';
import {
  ExitnodeError,
  q,
  allocation as planAllocation,
  nrIdText,
  nrId,
  checkSlot,
  checkAllocationNumber,
  nrPrefix4,
} from '../core/index.js';
import { AllocationQueue, type AddResourceResult, type AllocRequest } from './alloc-queue.js';
import { DEFAULTS, pgCode, retry, type StoreContext } from './context.js';
import { StoreErrors } from './errors.js';
import { Leases } from './leases.js';
import { Forwards } from './forwards.js';
import { Events } from './events.js';
import { DashboardQueries } from './dashboard.js';
import { LOCKS, migrate } from './migrate.js';
import { getFarmQuota, getTenantQuota, setQuota } from './quotas.js';
import { allocationRecord, candidateRecord, nodeRecord, slotRecord } from './rows.js';
import type { SqlClient } from './sql.js';
import {
  checkCandidateCount,
  checkCandidateList,
  checkFailover,
  checkName,
  checkNetworkName,
  checkSealed,
  checkNodeAddress,
  checkPool,
  checkSlotTarget,
  checkUpstream,
  checkWgKey,
  isNetworkId,
} from './validate.js';
import { assembleView, networkRecords } from './views.js';
import type {
  AllocationRecord,
  FailoverMode,
  ForwardRecord,
  InboundPolicyRecord,
  InboundRuleRecord,
  FarmQuota,
  Ipv4Pool,
  LeaseRecord,
  NetworkRecord,
  NodeRecord,
  NodeView,
  Principal,
  Scope,
  SlotMove,
  SlotRecord,
  Store,
  StoreOptions,
  StoreStats,
  HeartbeatReport,
  TenantQuota,
  VrrpState,
} from './types.js';

export class PgStore implements Store {
  readonly options: Required<StoreOptions>;
  private listeners = new Set<(nodes: string[]) => void>();
  private readonly leases: Leases;
  private readonly allocQueue: AllocationQueue;
  private readonly forwards: Forwards;
  readonly events: Events;
  readonly dashboard: DashboardQueries;

  private constructor(
    private db: SqlClient,
    options: StoreOptions,
  ) {
    this.options = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
    const ctx: StoreContext = {
      db,
      options: this.options,
      now: () => this.now(),
      retry,
      changed: (v) => this.changed(v),
    };
    // Leases starts its grace period now: no slot moves for one TTL plus the margin (see Leases.sweep).
    this.leases = new Leases(ctx);
    this.allocQueue = new AllocationQueue(ctx);
    this.forwards = new Forwards(ctx);
    this.events = new Events(ctx);
    this.dashboard = new DashboardQueries(ctx);
  }

  get driver(): 'pglite' | 'pg' {
    return this.db.driver;
  }

  static async open(db: SqlClient, options: StoreOptions = {}): Promise<PgStore> {
    await migrate(db);
    return new PgStore(db, options);
  }

  private now(): number {
    return this.options.clock();
  }

  private retry<T>(fn: () => Promise<T>): Promise<T> {
    return retry(fn);
  }

  /** Tells this instance's listeners that views may have changed (after a committed write). */
  private changed<T>(v: T): T {
    for (const l of this.listeners) l(['*']);
    return v;
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
      await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCKS.adminToken]);
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

  // ---- quotas ----

  getTenantQuota(tenant: string): Promise<TenantQuota | undefined> {
    return getTenantQuota(this.db, tenant);
  }

  async setTenantQuota(tenant: string, limits: { networks?: number; nrs?: number }): Promise<TenantQuota> {
    if (!(await setQuota(this.db, 'tenant', tenant, limits)))
      throw new ExitnodeError(StoreErrors.TENANT_UNKNOWN, `tenant ${q(tenant)} does not exist`);
    return (await getTenantQuota(this.db, tenant))!;
  }

  getFarmQuota(farm: string): Promise<FarmQuota | undefined> {
    return getFarmQuota(this.db, farm);
  }

  async setFarmQuota(farm: string, limits: { allocations?: number; nodes?: number }): Promise<FarmQuota> {
    if (!(await setQuota(this.db, 'farm', farm, limits)))
      throw new ExitnodeError(StoreErrors.FARM_UNKNOWN, `farm ${q(farm)} does not exist`);
    return (await getFarmQuota(this.db, farm))!;
  }

  // ---- allocations ----

  async createAllocation(a: {
    farm: string;
    prefix: string;
    number?: number;
    ipv4?: Ipv4Pool;
    upstream?: { ll?: string; ip6?: string };
    failover?: FailoverMode;
    candidates?: number;
  }): Promise<AllocationRecord> {
    const failover = checkFailover(a.failover ?? 'lease');
    const candidates = checkCandidateCount(a.candidates ?? 2);
    // The /48 rules of the plan (exactly a /48, no host bits, not link-local); number checked below.
    const plan = planAllocation(a.prefix, a.number ?? 1);
    const prefix = plan.prefix.toString();
    const ipv4 = a.ipv4 ? checkPool(a.ipv4) : undefined;
    const { ll, ip6 } = checkUpstream(plan, a.upstream);
    if (a.number !== undefined) checkAllocationNumber(a.number);
    return this.retry(() =>
      this.db.transaction(async (tx) => {
        // Registration is rare: one lock for all of it keeps "lowest free number" simple and exact.
        await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCKS.registration]);
        if (!(await tx.query('SELECT 1 FROM farms WHERE id = $1', [a.farm])).length)
          throw new ExitnodeError(StoreErrors.FARM_UNKNOWN, `farm ${q(a.farm)} does not exist`);
        const [taken] = await tx.query<{ number: number }>('SELECT number FROM allocations WHERE prefix = $1', [
          prefix,
        ]);
        // Not which allocation holds it: that is another farm's business.
        if (taken)
          throw new ExitnodeError(
            StoreErrors.ALLOCATION_TAKEN,
            `${prefix} is registered already; a /48 can be registered once in the whole grid`,
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
          'INSERT INTO allocations (number, farm_id, prefix, ipv4, upstream_ll, upstream_ip6, created_at, failover, candidates) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
          [
            number,
            a.farm,
            prefix,
            ipv4 ? JSON.stringify(ipv4) : null,
            ll.toString(),
            ip6.toString(),
            this.now(),
            failover,
            candidates,
          ],
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
          failover,
          candidates,
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
    return this.db.transaction(
      async (tx) => {
        const rows = await tx.query(
          'SELECT s.*, a.ipv4, a.failover FROM slots s JOIN allocations a ON a.number = s.allocation WHERE s.allocation = $1 ORDER BY s.slot',
          [allocation],
        );
        if (rows[0]?.failover !== 'vrrp') return rows.map(slotRecord);
        // Stage 2: every candidate with its VRRP report and its node's health.
        const now = this.now();
        const cands = await tx.query(
          `SELECT c.*, nd.last_heartbeat FROM slot_candidates c JOIN nodes nd ON nd.id = c.node_id
            WHERE c.allocation = $1 ORDER BY c.slot, c.rank`,
          [allocation],
        );
        return rows.map((r) => ({
          ...slotRecord(r),
          candidates: cands
            .filter((c) => Number(c.slot) === Number(r.slot))
            .map((c) => candidateRecord(c, now, this.options.leaseTtlMs)),
          vrrpTransitions: Number(r.vrrp_transitions ?? 0),
        }));
      },
      { readOnly: true, repeatableRead: true },
    );
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
    const v4 = n.publicIPv4 !== undefined ? checkNodeAddress(4, n.publicIPv4) : null;
    const v6 = n.publicIPv6 !== undefined ? checkNodeAddress(6, n.publicIPv6) : null;
    return this.retry(() =>
      this.db.transaction(async (tx) => {
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
      }),
    );
  }

  async getNode(id: string): Promise<NodeRecord | undefined> {
    const [r] = await this.db.query('SELECT * FROM nodes WHERE id = $1', [id]);
    return r ? nodeRecord(r, this.now(), this.options.leaseTtlMs) : undefined;
  }

  async listNodes(farm: string): Promise<NodeRecord[]> {
    return (await this.db.query('SELECT * FROM nodes WHERE farm_id = $1 ORDER BY id', [farm])).map((r) =>
      nodeRecord(r, this.now(), this.options.leaseTtlMs),
    );
  }

  async assignSlot(allocation: number, slot: number, node: string | string[]): Promise<SlotRecord> {
    checkSlot(slot);
    const a = await this.getAllocation(allocation);
    if (!a) throw new ExitnodeError(StoreErrors.ALLOCATION_UNKNOWN, `allocation ${allocation} does not exist`);
    const list = checkCandidateList(node, a);
    for (const n of list) checkSlotTarget(n, await this.getNode(n), allocation, a);
    const now = this.now();
    const ttl = this.options.leaseTtlMs;
    if (!Array.isArray(node) || a.failover === 'lease')
      this.changed(
        await this.retry(() =>
          this.db.query('SELECT * FROM xn_assign_slot($1, $2, $3, $4, $5)', [allocation, slot, list[0], now, ttl]),
        ),
      );
    else
      // Stage 2, the farmer's list: exactly these candidates in this order (the sweep tops it up
      // to the allocation's `candidates` from live nodes when it is shorter).
      this.changed(
        await this.retry(() =>
          this.db.transaction(async (tx) => {
            await tx.query('SELECT 1 FROM slots WHERE allocation = $1 AND slot = $2 FOR UPDATE', [allocation, slot]);
            await tx.query('SELECT * FROM xn_cand_apply($1, $2, $3, $4, $5)', [allocation, slot, list, now, ttl]);
            return tx.query(
              'UPDATE slots SET lease_expires_at = $3, renewed_at = $4 WHERE allocation = $1 AND slot = $2 RETURNING 1',
              [allocation, slot, now + ttl, now],
            );
          }),
        ),
      );
    return (await this.listSlots(allocation))[slot - 1]!;
  }

  heartbeat(node: string, report: HeartbeatReport = {}): Promise<LeaseRecord[]> {
    return this.leases.heartbeat(node, report);
  }

  async moveSlot(allocation: number, slot: number, node: string): Promise<SlotRecord> {
    checkSlot(slot);
    const cur = (await this.listSlots(allocation))[slot - 1];
    if (!cur?.node) return this.assignSlot(allocation, slot, node);
    const alloc = (await this.getAllocation(allocation))!;
    const stage2 = alloc.failover === 'vrrp';
    if (cur.node === node && !stage2)
      throw new ExitnodeError(
        StoreErrors.SLOT_MOVE_NOOP,
        `slot ${slot} of allocation ${allocation} is already held by node ${q(node)}`,
      );
    const n = checkSlotTarget(node, await this.getNode(node), allocation, alloc);
    if (!n.healthy)
      throw new ExitnodeError(
        StoreErrors.SLOT_MOVE_TARGET_DOWN,
        `node ${q(node)} has not sent a heartbeat within the lease TTL (${this.options.leaseTtlMs} ms): a slot moved there would have no gateway`,
      );
    if (stage2) {
      // Stage 2: a planned handover, never a rebuild. NODE becomes the first candidate; the
      // current master is told to step down (priority 0) once NODE reports BACKUP.
      const [r] = await this.retry(() =>
        this.db.query<{ status: string }>('SELECT xn_vrrp_move($1, $2, $3, $4, $5) AS status', [
          allocation,
          slot,
          node,
          this.now(),
          this.options.leaseTtlMs,
        ]),
      );
      if (r?.status === 'noop')
        throw new ExitnodeError(
          StoreErrors.SLOT_MOVE_NOOP,
          `slot ${slot} of allocation ${allocation} is already held by node ${q(node)}, and no other candidate reports VRRP master`,
        );
      this.changed(r);
      return (await this.listSlots(allocation))[slot - 1]!;
    }
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

  /** Moves every slot whose lease lapsed (see Leases.sweep; `released` skips the start-up grace). */
  sweep(released = false): Promise<SlotMove[]> {
    return this.leases.sweep(released);
  }

  // ---- networks and NRs ----

  async createNetwork(n: {
    tenant: string;
    name: string;
    allocation?: number;
    idempotencyKey?: string;
  }): Promise<{ network: NetworkRecord; slotNrs: number; replay?: boolean }> {
    checkNetworkName(n.name);
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

  addResource(r: AllocRequest): Promise<AddResourceResult> {
    return this.allocQueue.addResource(r);
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
    // Forwards towards the NR go with it (the views leave them out from the moment it is gone).
    await this.forwards.dropTargetsOf(network, nrPrefix4(id).toString());
  }

  // ---- forwards and the inbound policy (src/store/forwards.ts) ----

  addForward(f: Parameters<Store['addForward']>[0]): Promise<{ forward: ForwardRecord; replay: boolean }> {
    return this.forwards.add(f);
  }

  removeForward(tenant: string, network: string, protocol: string, port: number | string): Promise<void> {
    return this.forwards.remove(tenant, network, protocol, port);
  }

  listForwards(network: string, tenant?: string): Promise<ForwardRecord[]> {
    return this.forwards.list(network, tenant);
  }

  findForward(address: string, port: number): Promise<ForwardRecord[]> {
    return this.forwards.find(address, port);
  }

  getInbound(network: string, tenant?: string): Promise<InboundPolicyRecord> {
    return this.forwards.getPolicy(network, tenant);
  }

  setInbound(tenant: string, network: string, policy: string): Promise<InboundPolicyRecord> {
    return this.forwards.setPolicy(tenant, network, policy);
  }

  addInboundRule(r: Parameters<Store['addInboundRule']>[0]): Promise<InboundRuleRecord> {
    return this.forwards.addRule(r);
  }

  removeInboundRule(tenant: string, network: string, id: number | string): Promise<void> {
    return this.forwards.removeRule(tenant, network, id);
  }

  async deleteNetwork(tenant: string, network: string): Promise<void> {
    await this.ownNetwork(tenant, network);
    this.changed(await this.retry(() => this.db.query('SELECT xn_release($1, NULL, $2)', [network, this.now()])));
  }

  async getNetwork(id: string, tenant?: string): Promise<NetworkRecord | undefined> {
    if (!isNetworkId(id)) return undefined;
    return (
      await networkRecords(this.db, 'n.id = $1 AND ($2::text IS NULL OR n.tenant_id = $2)', [id, tenant ?? null])
    )[0];
  }

  async listNetworks(tenant?: string): Promise<NetworkRecord[]> {
    return networkRecords(this.db, '$1::text IS NULL OR n.tenant_id = $1', [tenant ?? null]);
  }

  async setKey(node: string, network: string, nr: string, publicKey: string): Promise<void> {
    checkWgKey(publicKey);
    // One answer whether the network does not exist, has no such NR, or hosts it on another node:
    // a node learns nothing about networks it has no NR of.
    const notHere = (): ExitnodeError =>
      new ExitnodeError(StoreErrors.NR_UNKNOWN, `node ${q(node)} hosts no NR ${q(nr)} of network ${q(network)}`);
    const n = await this.getNetwork(network);
    if (!n || !n.resources.some((x) => x.node === node)) throw notHere();
    const id = nrId(nr, n.slot);
    const r = n.resources.find((x) => x.id === nrIdText(id) && x.node === node);
    if (!r) throw notHere();
    if (r.publicKey === publicKey) return;
    try {
      await this.retry(() =>
        this.db.transaction(async (tx) => {
          // Only if it is still on this node: a failover may have moved it since the read above.
          const hit = await tx.query(
            'UPDATE resources SET public_key = $1 WHERE network_id = $2 AND nr_id = $3 AND node_id = $4 RETURNING 1',
            [publicKey, network, id, node],
          );
          if (!hit.length) throw notHere();
          await tx.query('SELECT xn_touch(xn_network_nodes($1))', [network]);
        }),
      );
    } catch (e) {
      // resources_public_key (004_quotas.sql): one key per NR. Which NR has it is not said.
      if (pgCode(e) === '23505')
        throw new ExitnodeError(
          StoreErrors.KEY_TAKEN,
          `public key ${q(publicKey)} is published for another NR already; every NR has a key of its own (the agent makes one per NR)`,
        );
      throw e;
    }
    this.changed(null);
  }

  async setNodeKey(node: string, publicKey: string): Promise<void> {
    checkWgKey(publicKey, 'node key');
    const changed = await this.retry(() =>
      this.db.transaction(async (tx) => {
        const [n] = await tx.query<{ farm_id: string; exit_capable: boolean; node_key: string | null }>(
          'SELECT farm_id, exit_capable, node_key FROM nodes WHERE id = $1 FOR UPDATE',
          [node],
        );
        if (!n) throw new ExitnodeError(StoreErrors.NODE_UNKNOWN, `node ${q(node)} does not exist`);
        if (n.node_key === publicKey) return false;
        await tx.query('UPDATE nodes SET node_key = $2 WHERE id = $1', [node, publicKey]);
        // sealTo of every candidate in the farm (but this node's own view) lists exit-capable nodes' keys.
        if (n.exit_capable)
          await tx.query(
            `SELECT xn_touch(coalesce(array_agg(DISTINCT c.node_id), '{}')) FROM slot_candidates c
               JOIN allocations a ON a.number = c.allocation WHERE a.farm_id = $1 AND c.node_id <> $2`,
            [n.farm_id, node],
          );
        return true;
      }),
    );
    if (changed) this.changed(null);
  }

  async setSealedKeys(
    node: string,
    network: string,
    nr: string,
    keys: { node: string; sealed: string }[],
  ): Promise<number> {
    const notHere = (): ExitnodeError =>
      new ExitnodeError(
        StoreErrors.NR_UNKNOWN,
        `node ${q(node)} hosts no ExitPoint NR ${q(nr)} of network ${q(network)}`,
      );
    const n = await this.getNetwork(network);
    if (!n || !n.resources.some((x) => x.node === node)) throw notHere();
    const id = nrId(nr, n.slot);
    if (nrIdText(id) !== n.exit || !n.resources.some((x) => x.id === n.exit && x.node === node)) throw notHere();
    const a = (await this.getAllocation(n.allocation))!;
    const seen = new Set<string>();
    for (const k of keys) {
      if (seen.has(k.node))
        throw new ExitnodeError(StoreErrors.SEALED_INVALID, `node ${q(k.node)} appears twice in keys`);
      seen.add(k.node);
      if (k.node === node)
        throw new ExitnodeError(
          StoreErrors.SEALED_INVALID,
          `node ${q(node)} cannot seal a key to itself: seal to the other exit-capable nodes (sealTo of its view)`,
        );
      checkSealed(k.sealed, `sealed key for node ${q(k.node)}`);
      checkSlotTarget(k.node, await this.getNode(k.node), n.allocation, a);
    }
    const stored = await this.retry(() =>
      this.db.transaction(async (tx) => {
        // Only if the ExitPoint is still on this node: a failover may have moved it since the read above.
        const hit = await tx.query(
          'SELECT 1 FROM resources WHERE allocation = $1 AND nr_id = $2 AND network_id = $3 AND node_id = $4 FOR UPDATE',
          [n.allocation, id, network, node],
        );
        if (!hit.length) throw notHere();
        const changed = await tx.query<{ node_id: string }>(
          `INSERT INTO sealed_keys (allocation, nr_id, node_id, sealed)
             SELECT $1, $2, u.node, u.sealed FROM unnest($3::text[], $4::text[]) u(node, sealed)
           ON CONFLICT (allocation, nr_id, node_id) DO UPDATE SET sealed = excluded.sealed
             WHERE sealed_keys.sealed IS DISTINCT FROM excluded.sealed
           RETURNING node_id`,
          [n.allocation, id, keys.map((k) => k.node), keys.map((k) => k.sealed)],
        );
        // Only a candidate of the slot shows its sealed key.
        if (changed.length)
          await tx.query(
            `SELECT xn_touch(coalesce(array_agg(c.node_id), '{}')) FROM slot_candidates c
              WHERE c.allocation = $1 AND c.slot = $2 AND c.node_id = ANY ($3)`,
            [n.allocation, n.slot, changed.map((c) => c.node_id)],
          );
        return changed.length;
      }),
    );
    if (stored) this.changed(null);
    return keys.length;
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
    return this.db.transaction((tx) => assembleView(tx, node), { readOnly: true, repeatableRead: true });
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

  async stats(): Promise<StoreStats> {
    const slots = (
      await this.db.query(
        'SELECT s.*, a.ipv4, a.failover FROM slots s JOIN allocations a ON a.number = s.allocation WHERE s.node_id IS NOT NULL OR s.nr_count > 0 ORDER BY s.allocation, s.slot',
      )
    ).map((r) => ({
      ...slotRecord(r),
      ...(r.failover === 'vrrp' ? { vrrpTransitions: Number(r.vrrp_transitions ?? 0) } : {}),
    }));
    const [c] = await this.db.query<{ networks: number; resources: number }>(
      'SELECT (SELECT count(*) FROM networks)::int AS networks, (SELECT count(*) FROM resources)::int AS resources',
    );
    const candidates = (
      await this.db.query(
        'SELECT allocation, slot, node_id, rank, vrrp_state, vrrp_priority FROM slot_candidates ORDER BY allocation, slot, rank',
      )
    ).map((r) => ({
      allocation: Number(r.allocation),
      slot: Number(r.slot),
      node: String(r.node_id),
      rank: Number(r.rank),
      ...(r.vrrp_state ? { state: String(r.vrrp_state) as VrrpState } : {}),
      ...(r.vrrp_priority !== null && r.vrrp_priority !== undefined ? { priority: Number(r.vrrp_priority) } : {}),
    }));
    return { slots, networks: Number(c?.networks ?? 0), resources: Number(c?.resources ?? 0), candidates };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.db.close();
  }
}
