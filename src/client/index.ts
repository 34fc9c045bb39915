// A small typed client of the TNoDB API for the CLI, the node agent and the simulated farm.
// Errors: ExitnodeError SERVER_UNREACHABLE (exit 1), SERVER_REFUSED (4xx, exit 2, the server's
// message, details {status, code}), SERVER_FAILED (5xx).
import { ExitnodeError } from '../core/errors.js';
import { ClientErrors } from './errors.js';
import { VERSION, VERSION_HEADER } from '../core/version.js';
import type {
  AllocationRecord,
  CandidateRecord,
  ForwardRecord,
  InboundPolicyRecord,
  InboundRuleRecord,
  FarmQuota,
  Ipv4Pool,
  HeartbeatReport,
  LeaseRecord,
  NetworkRecord,
  NodeRecord,
  NodeView,
  ResourceRecord,
  SlotRecord,
  TenantQuota,
  EventRecord,
} from '../store/types.js';

export { ClientErrors } from './errors.js';
export type {
  AllocationRecord,
  CandidateRecord,
  ForwardRecord,
  InboundPolicyRecord,
  InboundRuleRecord,
  FarmQuota,
  Ipv4Pool,
  LeaseRecord,
  NetworkRecord,
  NodeRecord,
  NodeView,
  ResourceRecord,
  SlotRecord,
  TenantQuota,
  EventRecord,
};

const defined = (o: Record<string, number | undefined>): Record<string, number> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Record<string, number>;

/** GET /v1/events: filters (as the API's query) and the cursor. */
export interface EventQuery {
  farm?: string;
  kind?: string;
  slot?: string;
  allocation?: number;
  node?: string;
  network?: string;
  since?: number;
  until?: number;
  after?: number;
  before?: number;
  limit?: number;
  /** Seconds to wait for an event after `after` (a long-poll). */
  wait?: number;
}

export interface ClientOptions {
  /** Base URL, e.g. http://127.0.0.1:8440 */
  server: string;
  token?: string;
  /** Per-request timeout in ms (a long-poll adds its wait). Default 10 s. */
  timeoutMs?: number;
}

export class TnodbClient {
  readonly server: string;
  private token: string | undefined;
  private timeoutMs: number;
  /** The server's version, from its last answer (x-exitnode-version); undefined before one. */
  serverVersion: string | undefined;

  constructor(o: ClientOptions) {
    this.server = o.server.replace(/\/+$/, '');
    this.token = o.token;
    this.timeoutMs = o.timeoutMs ?? 10_000;
  }

  /** The same server with another token. */
  as(token: string): TnodbClient {
    return new TnodbClient({ server: this.server, token, timeoutMs: this.timeoutMs });
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    o: { headers?: Record<string, string>; timeoutMs?: number; signal?: AbortSignal; text?: boolean } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { [VERSION_HEADER]: VERSION, ...o.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const signals = [AbortSignal.timeout(o.timeoutMs ?? this.timeoutMs)];
    if (o.signal) signals.push(o.signal);
    let res: Response;
    try {
      res = await fetch(`${this.server}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.any(signals),
      });
    } catch (e) {
      if (o.signal?.aborted) throw e;
      // fetch refuses a header value with a newline or a non-Latin-1 character before sending:
      // the caller's value, not the server, is at fault.
      if (e instanceof TypeError && !e.cause && /header/i.test(e.message))
        throw new ExitnodeError(
          ClientErrors.REQUEST_INVALID,
          `${method} ${path} cannot be sent: ${e.message.replace(/[\r\n]+/g, ' ')}`,
        );
      const c = (e as { cause?: { code?: string; message?: string } }).cause;
      const cause = c?.code ?? c?.message ?? (e as Error).message;
      throw new ExitnodeError(ClientErrors.SERVER_UNREACHABLE, `cannot reach server at ${this.server} (${cause})`, {
        cause,
      });
    }
    this.serverVersion = res.headers.get(VERSION_HEADER) ?? this.serverVersion;
    const text = await res.text();
    if (res.ok) {
      if (res.status === 204 || text === '') return undefined as T;
      if (o.text) return text as T;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new ExitnodeError(
          ClientErrors.SERVER_FAILED,
          `server at ${this.server} answered ${method} ${path} with something that is not JSON`,
        );
      }
    }
    let err: { code?: string; message?: string } | undefined;
    try {
      err = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
    } catch {
      /* not our API */
    }
    const message = err?.message ?? `${method} ${path}: HTTP ${res.status}`;
    throw new ExitnodeError(res.status < 500 ? ClientErrors.SERVER_REFUSED : ClientErrors.SERVER_FAILED, message, {
      status: res.status,
      code: err?.code,
    });
  }

  // ---- admin ----
  createFarm(name: string): Promise<{ id: string; token: string }> {
    return this.request('POST', '/v1/farms', { name });
  }
  createTenant(name: string): Promise<{ id: string; token: string }> {
    return this.request('POST', '/v1/tenants', { name });
  }
  tenantQuota(tenant: string): Promise<TenantQuota> {
    return this.request('GET', `/v1/tenants/${encodeURIComponent(tenant)}/quota`);
  }
  /** Admin: sets some of a tenant's quotas (networks, nrs); returns them all with their use. */
  setTenantQuota(tenant: string, limits: { networks?: number; nrs?: number }): Promise<TenantQuota> {
    return this.request('PUT', `/v1/tenants/${encodeURIComponent(tenant)}/quota`, defined(limits));
  }
  farmQuota(farm: string): Promise<FarmQuota> {
    return this.request('GET', `/v1/farms/${encodeURIComponent(farm)}/quota`);
  }
  /** Admin: sets some of a farm's quotas (allocations, nodes); returns them all with their use. */
  setFarmQuota(farm: string, limits: { allocations?: number; nodes?: number }): Promise<FarmQuota> {
    return this.request('PUT', `/v1/farms/${encodeURIComponent(farm)}/quota`, defined(limits));
  }

  // ---- farm ----
  addAllocation(a: {
    farm: string;
    prefix: string;
    number?: number;
    ipv4?: Ipv4Pool;
    upstream?: { ll?: string; ip6?: string };
    /** Stage 2: 'vrrp' (candidates per slot); default 'lease'. */
    failover?: 'lease' | 'vrrp';
    /** Stage 2: candidates per slot (1-8, default 2). */
    candidates?: number;
  }): Promise<AllocationRecord> {
    return this.request('POST', '/v1/allocations', a);
  }
  getAllocation(number: number): Promise<AllocationRecord & { slots: SlotRecord[] }> {
    return this.request('GET', `/v1/allocations/${number}`);
  }
  listAllocations(): Promise<AllocationRecord[]> {
    return this.request('GET', '/v1/allocations');
  }
  addNode(n: {
    farm: string;
    id: string;
    publicIPv4?: string;
    publicIPv6?: string;
    exitCapable: boolean;
  }): Promise<{ id: string; token: string }> {
    return this.request('POST', '/v1/nodes', n);
  }
  getNode(id: string): Promise<NodeRecord> {
    return this.request('GET', `/v1/nodes/${encodeURIComponent(id)}`);
  }
  /** A node, or (stage 2, 'vrrp' allocations) the slot's ordered candidates, the first one holding it. */
  assignSlot(allocation: number, slot: number, node: string | string[]): Promise<SlotRecord> {
    return this.request(
      'PUT',
      `/v1/allocations/${allocation}/slots/${slot}`,
      Array.isArray(node) ? { nodes: node } : { node },
    );
  }
  farmStatus(farm: string): Promise<{
    id: string;
    allocations: (AllocationRecord & { slots: (SlotRecord & { warning?: string })[] })[];
    nodes: NodeRecord[];
    warnings: string[];
  }> {
    return this.request('GET', `/v1/farms/${encodeURIComponent(farm)}`);
  }
  upstream(allocation: number, router: string, iface: string, via?: 'll' | 'global'): Promise<string> {
    const qs = new URLSearchParams({ router, iface, ...(via ? { via } : {}) });
    return this.request('GET', `/v1/allocations/${allocation}/upstream?${qs}`, undefined, { text: true });
  }

  // ---- tenant ----
  createNetwork(
    name: string,
    allocation?: number,
    idempotencyKey?: string,
  ): Promise<NetworkRecord & { warning?: string }> {
    return this.request(
      'POST',
      '/v1/networks',
      { name, ...(allocation !== undefined ? { allocation } : {}) },
      idempotencyKey ? { headers: { 'idempotency-key': idempotencyKey } } : {},
    );
  }
  addResource(network: string, node: string, idempotencyKey?: string): Promise<ResourceRecord & { warning?: string }> {
    return this.request(
      'POST',
      `/v1/networks/${encodeURIComponent(network)}/resources`,
      { node },
      idempotencyKey ? { headers: { 'idempotency-key': idempotencyKey } } : {},
    );
  }
  removeResource(network: string, nr: string): Promise<void> {
    return this.request('DELETE', `/v1/networks/${encodeURIComponent(network)}/resources/${encodeURIComponent(nr)}`);
  }
  deleteNetwork(network: string): Promise<void> {
    return this.request('DELETE', `/v1/networks/${encodeURIComponent(network)}`);
  }
  getNetwork(network: string): Promise<NetworkRecord> {
    return this.request('GET', `/v1/networks/${encodeURIComponent(network)}`);
  }
  listNetworks(): Promise<NetworkRecord[]> {
    return this.request('GET', '/v1/networks');
  }

  // ---- forwards and the inbound policy (tenant) ----
  addForward(
    network: string,
    f: { protocol: string; port?: number; target: string; targetPort: number },
    idempotencyKey?: string,
  ): Promise<ForwardRecord> {
    return this.request(
      'POST',
      `/v1/networks/${encodeURIComponent(network)}/forwards`,
      f,
      idempotencyKey ? { headers: { 'idempotency-key': idempotencyKey } } : {},
    );
  }
  removeForward(network: string, protocol: string, port: number): Promise<void> {
    return this.request(
      'DELETE',
      `/v1/networks/${encodeURIComponent(network)}/forwards/${encodeURIComponent(protocol)}/${port}`,
    );
  }
  findForward(address: string, port: number): Promise<(ForwardRecord & { exit: string; prefix: string })[]> {
    return this.request(
      'GET',
      `/v1/forwards?address=${encodeURIComponent(address)}&port=${encodeURIComponent(String(port))}`,
    );
  }
  listForwards(network: string): Promise<ForwardRecord[]> {
    return this.request('GET', `/v1/networks/${encodeURIComponent(network)}/forwards`);
  }
  getInbound(network: string): Promise<InboundPolicyRecord> {
    return this.request('GET', `/v1/networks/${encodeURIComponent(network)}/inbound`);
  }
  setInbound(network: string, policy: string): Promise<InboundPolicyRecord> {
    return this.request('PUT', `/v1/networks/${encodeURIComponent(network)}/inbound`, { policy });
  }
  addInboundRule(network: string, r: { protocol: string; ports: string; source?: string }): Promise<InboundRuleRecord> {
    return this.request('POST', `/v1/networks/${encodeURIComponent(network)}/inbound/rules`, r);
  }
  removeInboundRule(network: string, id: number): Promise<void> {
    return this.request('DELETE', `/v1/networks/${encodeURIComponent(network)}/inbound/rules/${id}`);
  }

  // ---- node (the agent) ----
  /** Renews the leases of the slots this node holds; the answer lists them with their epochs. */
  heartbeat(
    node: string,
    report?: HeartbeatReport,
  ): Promise<{ slots: LeaseRecord[]; now?: number; leaseTtlMs?: number; fenceMarginMs?: number }> {
    return this.request('POST', `/v1/nodes/${encodeURIComponent(node)}/heartbeat`, report);
  }
  /** Planned move of a slot (farm): the holder fences and releases it, then NODE builds it. */
  moveSlot(allocation: number, slot: number, to: string): Promise<SlotRecord> {
    return this.request('POST', `/v1/allocations/${allocation}/slots/${slot}/move`, { to });
  }
  /** The node's view; with `after`, waits up to `waitS` seconds (default 30) for a version newer than `after`. */
  view(node: string, o: { after?: number; waitS?: number; signal?: AbortSignal } = {}): Promise<NodeView> {
    const qs = new URLSearchParams();
    if (o.after !== undefined) qs.set('after', String(o.after));
    if (o.waitS !== undefined) qs.set('wait', String(o.waitS));
    const s = qs.toString();
    return this.request('GET', `/v1/nodes/${encodeURIComponent(node)}/view${s ? `?${s}` : ''}`, undefined, {
      timeoutMs: this.timeoutMs + (o.after !== undefined ? (o.waitS ?? 30) * 1000 : 0),
      ...(o.signal ? { signal: o.signal } : {}),
    });
  }
  /** Publishes the WireGuard public key of an NR this node hosts. */
  publishKey(network: string, nr: string, publicKey: string): Promise<void> {
    return this.request('PUT', `/v1/networks/${encodeURIComponent(network)}/resources/${encodeURIComponent(nr)}/key`, {
      publicKey,
    });
  }
  /** Stage 2: publishes this node's own X25519 public key (base64), to which ExitPoint keys are sealed. */
  publishNodeKey(node: string, publicKey: string): Promise<void> {
    return this.request('PUT', `/v1/nodes/${encodeURIComponent(node)}/node-key`, { publicKey });
  }
  /** Stage 2: stores an ExitPoint's private key this node hosts, sealed to other nodes (src/core/seal.ts). */
  publishSealedKeys(network: string, nr: string, keys: { node: string; sealed: string }[]): Promise<void> {
    return this.request(
      'PUT',
      `/v1/networks/${encodeURIComponent(network)}/resources/${encodeURIComponent(nr)}/sealed`,
      { keys },
    );
  }
  /** The farm's events (issue 12): a page of history, or with `after` and `wait` a long-poll tail. */
  events(
    qy: EventQuery = {},
    o: { signal?: AbortSignal } = {},
  ): Promise<{ events: EventRecord[]; next: number; more: boolean }> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(qy)) if (v !== undefined) qs.set(k, String(v));
    const s = qs.toString();
    return this.request('GET', `/v1/events${s ? `?${s}` : ''}`, undefined, {
      timeoutMs: this.timeoutMs + (qy.wait ?? 0) * 1000,
      ...(o.signal ? { signal: o.signal } : {}),
    });
  }
  health(): Promise<{ status: string; driver: string }> {
    return this.request('GET', '/healthz');
  }
}
