// The Store: TNoDB's lists (farms, tenants, tokens, allocations, nodes, slot leases, networks and
// their NRs, keys) and the NR id allocator. One implementation (PgStore) on PGlite or a
// PostgreSQL server; the contract tests run against both.
import type { InboundPolicyName, Protocol } from '../core/forward.js';
import type { NodeView } from '../core/view.js';

export type { NodeView } from '../core/view.js';

export type Scope = 'admin' | 'farm' | 'tenant' | 'node';

export interface Principal {
  scope: Scope;
  /** The farm, tenant or node the token belongs to (none for admin). */
  subject: string | null;
}

export interface Ipv4Pool {
  /** One public IPv4 address per slot, in slot order: addresses[E-1] is GWPubIP4 of slot E. */
  addresses: string[];
  prefixLength: number;
  gateway: string;
}

/** Stage 1 ('lease': one holder per slot, fenced by its lease) or stage 2 ('vrrp': candidates). */
export type FailoverMode = 'lease' | 'vrrp';

export interface AllocationRecord {
  number: number;
  farm: string;
  prefix: string;
  ipv4?: Ipv4Pool;
  upstream: { ll: string; ip6: string };
  failover: FailoverMode;
  /** 'vrrp': how many candidates TNoDB keeps per slot (where the farm has that many exit-capable nodes). */
  candidates: number;
}

/** Stage 2: a candidate of a slot, first (rank 0) = the slot's node, with its last VRRP report. */
export interface CandidateRecord {
  node: string;
  rank: number;
  /** The VRRP priority TNoDB gives it: 250 - 50 * rank, at least 1. */
  priority: number;
  /** Its node heartbeats (within the lease TTL). */
  healthy: boolean;
  lastHeartbeat?: number;
  /** keepalived's state as the agent last reported it. */
  vrrpState?: VrrpState;
  vrrpPriority?: number;
  /** When it entered that state, the agent's clock (ms since the epoch). */
  vrrpSince?: number;
  /** Store clock: the last report, and the last change of state TNoDB saw. */
  reportedAt?: number;
  changedAt?: number;
  /** TNoDB asks it to give up mastership (dual master, or a planned handover). */
  stepDown: boolean;
}

export interface NodeRecord {
  id: string;
  farm: string;
  publicIPv4?: string;
  publicIPv6?: string;
  exitCapable: boolean;
  lastHeartbeat?: number;
  healthy: boolean;
}

export interface SlotRecord {
  allocation: number;
  slot: number;
  node: string | null;
  epoch: number;
  leaseExpiresAt: number | null;
  nrs: number;
  /** GWPubIP4 with the pool's prefix length, when the pool has an address for this slot. */
  ipv4?: string;
  /** Server time of the last renewal. */
  renewedAt?: number;
  /** Target of a planned move (exitnode slot move) not done yet. */
  movingTo?: string;
  /** The holder's last report on its gateway: "ok" or why it cannot forward. */
  health?: string;
  healthAt?: number;
  /** Stage 2 ('vrrp' allocations): the candidates in order, with their VRRP state. */
  candidates?: CandidateRecord[];
  /** Stage 2: a planned handover (slot move) waits for this node to take over. */
  handoverTo?: string;
  /** Stage 2: VRRP state changes the candidates reported (a counter). */
  vrrpTransitions?: number;
}

export interface ResourceRecord {
  id: string;
  node: string;
  prefix: string;
  publicKey?: string;
}

export interface NetworkRecord {
  id: string;
  name: string;
  tenant: string;
  allocation: number;
  slot: number;
  exit: string;
  resources: ResourceRecord[];
}

/** An IPv4 port forward: GWPubIP4:port (protocol) of the network's slot → target:targetPort. */
export interface ForwardRecord {
  network: string;
  allocation: number;
  slot: number;
  protocol: Protocol;
  port: number;
  /** GWPubIP4 of the slot (without length). */
  address: string;
  target: string;
  targetPort: number;
}

export interface InboundRuleRecord {
  id: number;
  protocol: Protocol;
  /** "80" or "8000-8100". */
  ports: string;
  /** Canonical IPv6 prefix; absent: any source. */
  source?: string;
}

export interface InboundPolicyRecord {
  network: string;
  policy: InboundPolicyName;
  /** Enforced while the policy is closed. */
  rules: InboundRuleRecord[];
}

export interface StoreStats {
  slots: SlotRecord[];
  networks: number;
  resources: number;
  /** Stage 2: every candidate of a 'vrrp' slot with its last reported state. */
  candidates: { allocation: number; slot: number; node: string; rank: number; state?: VrrpState; priority?: number }[];
}

export interface SlotMove {
  allocation: number;
  slot: number;
  previous: string | null;
  node: string;
  epoch: number;
}

export interface LeaseRecord {
  allocation: number;
  slot: number;
  epoch: number;
  leaseExpiresAt: number;
  /** Set when an operator asked the slot to move: the holder fences and releases it. */
  movingTo?: string;
}

/** What a node says with its heartbeat (all optional: a bare heartbeat renews every lease). */
export interface HeartbeatReport {
  /** Gateway health per slot; a slot reported unhealthy is not renewed, so it moves. */
  slots?: { allocation: number; slot: number; healthy: boolean; reason?: string }[];
  /** Slots the node has fenced and gives up now (a planned move, or lost health). */
  release?: { allocation: number; slot: number; epoch: number }[];
  /** Stage 2: keepalived's state of each candidate gateway of this node. */
  vrrp?: { allocation: number; slot: number; state: VrrpState; priority: number; since: number }[];
  /** Stage 2: endpoints the master's ExitPoints learned from their peers' packets (NAT). */
  endpoints?: { network: string; nr: string; endpoint: string }[];
}

/** A candidate gateway's VRRP state as keepalived reports it (STOPPED: no keepalived running). */
export type VrrpState = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOPPED';

/** A quota: its limit and how much of it is used. */
export interface Quota {
  limit: number;
  used: number;
}

export interface TenantQuota {
  networks: Quota;
  nrs: Quota;
}

export interface FarmQuota {
  allocations: Quota;
  nodes: Quota;
}

export interface StoreOptions {
  /** Milliseconds since the epoch; injectable so that tests move time by hand. */
  clock?: () => number;
  /** Lease lifetime; a heartbeat renews it. Default 5 s. */
  leaseTtlMs?: number;
  /** Extra wait after a lease lapses before the slot moves (fencing). Default 0. */
  fenceMarginMs?: number;
  /** How long a removed NR id stays unused. Default 10 minutes. */
  quarantineMs?: number;
  /** Port forwards per network. Default 64. */
  forwardQuota?: number;
  /** Inbound allow rules per network. Default 64. */
  inboundRuleQuota?: number;
  /** Events older than this are dropped (src/store/events.ts). Default 30 days. */
  eventRetentionMs?: number;
  /** At most this many events are kept, the oldest dropped first. Default 200,000. */
  eventMaxRows?: number;
}

export interface Store {
  readonly driver: 'pglite' | 'pg';
  readonly options: Required<StoreOptions>;

  /** Cheap round trip to the database (health check). */
  ping(): Promise<void>;
  createFarm(id: string): Promise<void>;
  hasFarm(id: string): Promise<boolean>;
  createTenant(id: string): Promise<void>;
  createToken(hash: string, scope: Scope, subject: string | null): Promise<void>;
  /** A tenant's quotas with their use; undefined if there is no such tenant. */
  getTenantQuota(tenant: string): Promise<TenantQuota | undefined>;
  /** Sets some of a tenant's quotas (TENANT_UNKNOWN if there is none); returns them all. */
  setTenantQuota(tenant: string, limits: { networks?: number; nrs?: number }): Promise<TenantQuota>;
  getFarmQuota(farm: string): Promise<FarmQuota | undefined>;
  setFarmQuota(farm: string, limits: { allocations?: number; nodes?: number }): Promise<FarmQuota>;
  findToken(hash: string): Promise<Principal | undefined>;
  hasAdminToken(): Promise<boolean>;
  /** Stores `hash` as the admin token if there is none yet (under a lock); true when it did. */
  bootstrapAdmin(hash: string): Promise<boolean>;

  createAllocation(a: {
    farm: string;
    prefix: string;
    number?: number;
    ipv4?: Ipv4Pool;
    upstream?: { ll?: string; ip6?: string };
    failover?: FailoverMode;
    candidates?: number;
  }): Promise<AllocationRecord>;
  getAllocation(number: number): Promise<AllocationRecord | undefined>;
  listAllocations(farm?: string): Promise<AllocationRecord[]>;
  listSlots(allocation: number): Promise<SlotRecord[]>;

  createNode(n: {
    farm: string;
    id: string;
    publicIPv4?: string;
    publicIPv6?: string;
    exitCapable: boolean;
  }): Promise<NodeRecord>;
  getNode(id: string): Promise<NodeRecord | undefined>;
  listNodes(farm: string): Promise<NodeRecord[]>;

  /**
   * Gives a slot to a node (epoch + 1 when the holder changes; the ExitPoint NRs move with it).
   * A list (stage 2, 'vrrp'): the slot's candidates in order, the first one its node; in 'lease'
   * mode a list has one node.
   */
  assignSlot(allocation: number, slot: number, node: string | string[]): Promise<SlotRecord>;
  /** Records a heartbeat and renews the leases of every slot the node holds. */
  heartbeat(node: string, report?: HeartbeatReport): Promise<LeaseRecord[]>;
  /** Plans a move of a held slot to NODE: the holder fences and releases it (or, if the holder
   *  is silent, the slot goes there when its lease lapses). A slot without a holder moves at once. */
  moveSlot(allocation: number, slot: number, node: string): Promise<SlotRecord>;
  /** Moves every slot whose lease lapsed to another healthy exit-capable node of its farm. */
  sweep(): Promise<SlotMove[]>;

  /** With idempotencyKey, a retry returns the network the first request made (replay: true). */
  createNetwork(n: {
    tenant: string;
    name: string;
    allocation?: number;
    idempotencyKey?: string;
  }): Promise<{ network: NetworkRecord; slotNrs: number; replay?: boolean }>;
  addResource(r: {
    tenant: string;
    network: string;
    node: string;
    idempotencyKey?: string;
  }): Promise<{ resource: ResourceRecord; replay: boolean; slotNrs: number; allocation: number; slot: number }>;
  removeResource(tenant: string, network: string, nr: string): Promise<void>;
  deleteNetwork(tenant: string, network: string): Promise<void>;
  /** A network, or undefined; with `tenant`, only that tenant's. */
  getNetwork(id: string, tenant?: string): Promise<NetworkRecord | undefined>;
  listNetworks(tenant?: string): Promise<NetworkRecord[]>;
  setKey(node: string, network: string, nr: string, publicKey: string): Promise<void>;
  /** Stage 2: a node's own X25519 public key (base64), to which ExitPoint keys are sealed. */
  setNodeKey(node: string, publicKey: string): Promise<void>;
  /**
   * Stage 2: the private key of an ExitPoint NR that `node` hosts, sealed to other exit-capable
   * nodes of the farm (ciphertext only, src/core/seal.ts). Returns how many were stored.
   */
  setSealedKeys(node: string, network: string, nr: string, keys: { node: string; sealed: string }[]): Promise<number>;

  /** A forward on the slot's GWPubIP4: PORT if free (and not reserved), else the lowest free one. */
  addForward(f: {
    tenant: string;
    network: string;
    protocol: string;
    port?: number;
    target: string;
    targetPort: number;
    idempotencyKey?: string;
  }): Promise<{ forward: ForwardRecord; replay: boolean }>;
  removeForward(tenant: string, network: string, protocol: string, port: number | string): Promise<void>;
  /** The forwards of a network (with tenant: only if it is that tenant's). */
  listForwards(network: string, tenant?: string): Promise<ForwardRecord[]>;
  /** The forward on ADDRESS:PORT (any allocation's GWPubIP4), for explain. */
  findForward(address: string, port: number): Promise<ForwardRecord[]>;
  getInbound(network: string, tenant?: string): Promise<InboundPolicyRecord>;
  setInbound(tenant: string, network: string, policy: string): Promise<InboundPolicyRecord>;
  addInboundRule(r: {
    tenant: string;
    network: string;
    protocol: string;
    ports: string | number;
    source?: string;
  }): Promise<InboundRuleRecord>;
  removeInboundRule(tenant: string, network: string, id: number | string): Promise<void>;

  view(node: string): Promise<NodeView>;
  viewVersion(node: string): Promise<number>;
  /** The current view versions of these nodes (unknown nodes are left out). */
  versions(nodes: string[]): Promise<Map<string, number>>;
  /** Called after a write through THIS instance may have changed views (['*'] or node ids).
   *  Writes through other instances are seen by polling versions() (src/api/watch.ts). */
  onViewChange(cb: (nodes: string[]) => void): () => void;

  stats(): Promise<StoreStats>;
  /** The farm's history (src/store/events.ts). */
  readonly events: EventLog;
  /** The reads of the dashboard and the agents' reports (src/store/dashboard.ts). */
  readonly dashboard: Dashboard;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- the farm's events (events.ts)

export interface EventRecord {
  id: number;
  /** Milliseconds since the epoch (the store's clock where the change carries it). */
  at: number;
  kind: string;
  farm?: string;
  tenant?: string;
  allocation?: number;
  slot?: number;
  node?: string;
  network?: string;
  /** NR id, 4 hex digits. */
  nr?: string;
  data: Record<string, unknown>;
  /** One line for a person. */
  text: string;
}

export interface EventFilter {
  /** Scope: only this farm's events. */
  farm?: string;
  /** Scope: only this tenant's events (its networks and NRs). */
  tenant?: string;
  /** Kinds; "slot.*" matches every kind that starts with "slot.". */
  kinds?: string[];
  allocation?: number;
  slot?: number;
  node?: string;
  network?: string;
  /** Times (ms since the epoch), inclusive. */
  since?: number;
  until?: number;
  /** Tail: events after this id, oldest first. */
  after?: number;
  /** History: the newest events before this id (default: the newest of all), returned oldest first. */
  before?: number;
  /** At most this many (default 200, at most MAX_EVENTS_PAGE). */
  limit?: number;
}

export interface EventPage {
  events: EventRecord[];
  /** The cursor to tail from (after=next): every event up to it that matches has been returned or is older. */
  next: number;
  /** True when the limit cut the page (more events match: after=next, or before=events[0].id for history). */
  more: boolean;
}

export interface EventLog {
  list(f: EventFilter): Promise<EventPage>;
  /** The settled id now (see the top of events.ts): a tail started from it misses nothing. */
  head(): Promise<number>;
  /** Finds silent nodes (after the start-up grace) and applies the retention. The server calls it with its sweep. */
  tick(): Promise<{ silent: number; pruned: number }>;
}

// ---------------------------------------------------------------- the dashboard's reads (dashboard.ts)

/** What a node's agent says about itself. Times are relative (ms ago when sent): agent clocks may differ. */
export interface AgentReport {
  status: 'ok' | 'degraded';
  appliedVersion: number | null;
  viewVersion: number | null;
  viewSource?: 'saved' | 'server' | null;
  /** Whether its last request to TNoDB (view long-poll or heartbeat) succeeded. */
  serverReachable: boolean;
  lastServerContactAgoMs?: number | null;
  lastPass?: {
    agoMs: number;
    ms: number;
    full: boolean;
    size: number;
    failures: number;
    version?: number;
  } | null;
  /** The last drift repair since the agent started; seq changes with each. */
  drift?: { seq: string; objects: string[]; version?: number; agoMs: number } | null;
  /** Slots whose gateway this node has built ("A/E"). */
  served: string[];
  uptimeS?: number;
}

export interface SlotCandidate extends Partial<Omit<CandidateRecord, 'node'>> {
  node: string;
  /**
   * Stage 1: "holder" (answers now) or "moving-to". Stage 2: the VRRP role the candidate reports
   * ("master", "backup", "fault", "stopped"), or "candidate" before its first report.
   */
  role: string;
}

export interface SlotStatus extends Omit<SlotRecord, 'candidates'> {
  /** NR ids the slot can hold: 4096, or 3840 in slot 15. */
  capacity: number;
  candidates: SlotCandidate[];
  /** The last change of hands: from whom, when (server clock) and why (see 005_events.sql). */
  lastMove?: { from: string | null; at: number; cause: string };
}

export interface NodeStatus extends NodeRecord {
  viewVersion: number;
  /** Slots this node holds ("A/E"). */
  slots: string[];
  agent?: AgentReport;
  /** Server time of the agent's last report. */
  agentReportAt?: number;
  /** Set while the node is silent (its last heartbeat). */
  silentSince?: number;
}

export interface FarmOverview {
  farm: string;
  /** Server clock, for ages. */
  now: number;
  leaseTtlMs: number;
  allocations: (AllocationRecord & { slots: SlotStatus[] })[];
  nodes: NodeStatus[];
  networks: number;
  resources: number;
}

export interface NetworkSummary {
  id: string;
  name: string;
  tenant: string;
  allocation: number;
  slot: number;
  exit: string;
  exitNode: string | null;
  nrs: number;
}

export interface SlotResource {
  id: string;
  network: string;
  name: string;
  tenant: string;
  node: string;
  prefix: string;
  exit: boolean;
  key: boolean;
}

export interface Dashboard {
  overview(farm: string): Promise<FarmOverview>;
  /** Network summaries of a farm (or, with tenant, of a tenant), ordered by allocation, slot, ExitPoint. */
  networks(
    scope: { farm?: string; tenant?: string },
    f?: { allocation?: number; slot?: number },
  ): Promise<NetworkSummary[]>;
  /** Every NR of a slot (or of one network of it), in id order. */
  slotResources(allocation: number, slot: number, network?: string): Promise<SlotResource[]>;
  /** Who holds an NR: its network, tenant, node and its network's ExitPoint (for explain). */
  findResource(allocation: number, nr: number): Promise<ResourceOwner | undefined>;
  /** Stores the agent's report about itself (the triggers record drift repairs and status changes). */
  report(node: string, r: AgentReport): Promise<boolean>;
}

export interface ResourceOwner {
  network: string;
  name: string;
  tenant: string;
  node: string;
  /** The network's ExitPoint NR and the node that hosts it. */
  exit: string;
  exitNode: string | null;
}
