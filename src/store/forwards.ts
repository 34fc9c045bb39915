// Port forwards and the IPv6 inbound policy of networks (issue 13). A forward takes
// (protocol, port) on its slot's GWPubIP4; the primary key of `forwards` is what guarantees one
// forward per (slot, protocol, port) across instances, and an advisory lock per slot makes
// "the lowest free port" exact. Rules of one network are checked for overlap under a lock per
// network. Every write bumps the views of the network's nodes (the gateway's among them).
import {
  AUTO_PORT_FIRST,
  checkForwardTarget,
  checkNotReserved,
  checkPort,
  checkProtocol,
  checkSourcePrefix,
  ExitnodeError,
  ForwardErrors,
  INBOUND_POLICIES,
  isReservedPort,
  Ip4,
  parsePortRange,
  portRangeText,
  q,
  rulesOverlap,
  type InboundPolicyName,
  type InboundRule,
  type Protocol,
} from '../core/index.js';
import { pgCode, type StoreContext } from './context.js';
import { StoreErrors } from './errors.js';
import { isNetworkId } from './validate.js';
import { networkRecords } from './views.js';
import type { ForwardRecord, InboundPolicyRecord, InboundRuleRecord, NetworkRecord } from './types.js';

/** Advisory lock key spaces (two-key form): forwards of one slot, rules of one network. */
const LOCK_FORWARDS = 0x786e6677; // "xnfw"
const LOCK_RULES = 0x786e6672; // "xnfr"

interface ForwardRow {
  network_id: string;
  allocation: number;
  slot: number;
  protocol: Protocol;
  port: number;
  target: string;
  target_port: number;
  ipv4: unknown;
}

function forwardRecord(r: ForwardRow): ForwardRecord {
  const pool = (typeof r.ipv4 === 'string' ? JSON.parse(r.ipv4) : r.ipv4) as { addresses?: string[] } | null;
  return {
    network: String(r.network_id),
    allocation: Number(r.allocation),
    slot: Number(r.slot),
    protocol: r.protocol,
    port: Number(r.port),
    address: pool?.addresses?.[Number(r.slot) - 1] ?? '',
    target: String(r.target),
    targetPort: Number(r.target_port),
  };
}

const FORWARD_SELECT = 'SELECT f.*, a.ipv4 FROM forwards f JOIN allocations a ON a.number = f.allocation';

function ruleRecord(r: Record<string, unknown>): InboundRuleRecord {
  return {
    id: Number(r.id),
    protocol: r.protocol as Protocol,
    ports: portRangeText({ from: Number(r.port_from), to: Number(r.port_to) }),
    ...(r.source ? { source: String(r.source) } : {}),
  };
}

export class Forwards {
  constructor(private readonly ctx: StoreContext) {}

  private async own(tenant: string | undefined, network: string): Promise<NetworkRecord> {
    const n = isNetworkId(network)
      ? (
          await networkRecords(this.ctx.db, 'n.id = $1 AND ($2::text IS NULL OR n.tenant_id = $2)', [
            network,
            tenant ?? null,
          ])
        )[0]
      : undefined;
    if (!n)
      throw new ExitnodeError(StoreErrors.NETWORK_UNKNOWN, `network ${q(network)} does not exist or is not yours`);
    return n;
  }

  async add(f: {
    tenant: string;
    network: string;
    protocol: string;
    port?: number;
    target: string;
    targetPort: number;
    idempotencyKey?: string;
  }): Promise<{ forward: ForwardRecord; replay: boolean }> {
    const protocol = checkProtocol(f.protocol);
    const port = f.port === undefined ? undefined : checkPort(f.port, 'public port');
    const targetPort = checkPort(f.targetPort, 'target port');
    const net = await this.own(f.tenant, f.network);
    const target = checkForwardTarget(
      f.target,
      net.resources.map((r) => r.id),
    );
    if (port !== undefined) checkNotReserved(net.slot, protocol, port);
    const key = f.idempotencyKey;
    const want = { network: net.id, protocol, target, targetPort, port };
    if (key !== undefined) {
      const replay = await this.replay(f.tenant, key, want);
      if (replay) return { forward: replay, replay: true };
    }
    const [a] = await this.ctx.db.query<{ ipv4: unknown }>('SELECT ipv4 FROM allocations WHERE number = $1', [
      net.allocation,
    ]);
    const pool = (typeof a?.ipv4 === 'string' ? JSON.parse(a.ipv4) : a?.ipv4) as { addresses?: string[] } | null;
    if (!pool?.addresses?.[net.slot - 1])
      throw new ExitnodeError(
        ForwardErrors.FORWARD_NO_IPV4,
        `slot ${net.slot} of allocation ${net.allocation} has no GWPubIP4 (the allocation's IPv4 pool lists no address for it): no forward can be made there`,
      );
    try {
      await this.ctx.retry(() =>
        this.ctx.db.transaction(async (tx) => {
          await tx.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_FORWARDS, net.allocation * 16 + net.slot]);
          const [c] = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM forwards WHERE network_id = $1', [
            net.id,
          ]);
          if (Number(c?.n) >= this.ctx.options.forwardQuota)
            throw new ExitnodeError(
              ForwardErrors.FORWARD_QUOTA,
              `network ${q(net.id)} has ${Number(c?.n)} forwards, its quota (${this.ctx.options.forwardQuota}); remove one first`,
            );
          let p = port;
          if (p === undefined) {
            const taken = new Set(
              (
                await tx.query<{ port: number }>(
                  'SELECT port FROM forwards WHERE allocation = $1 AND slot = $2 AND protocol = $3',
                  [net.allocation, net.slot, protocol],
                )
              ).map((r) => Number(r.port)),
            );
            for (let x = AUTO_PORT_FIRST; x <= 65535 && p === undefined; x++)
              if (!taken.has(x) && !isReservedPort(net.slot, protocol, x)) p = x;
            if (p === undefined)
              throw new ExitnodeError(
                ForwardErrors.FORWARD_PORTS_EXHAUSTED,
                `every ${protocol} port from ${AUTO_PORT_FIRST} of slot ${net.slot}'s GWPubIP4 is taken or reserved`,
              );
          }
          await tx.query(
            `INSERT INTO forwards (allocation, slot, protocol, port, network_id, tenant_id, target, target_port, idempotency_key, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
            [net.allocation, net.slot, protocol, p, net.id, f.tenant, target, targetPort, key ?? null, this.ctx.now()],
          );
          await tx.query('SELECT xn_touch(xn_network_nodes($1))', [net.id]);
          want.port = p;
        }),
      );
    } catch (e) {
      if (pgCode(e) !== '23505') throw e;
      if (key !== undefined) {
        // The same request twice at once: the other copy made it.
        const replay = await this.replay(f.tenant, key, want);
        if (replay) return { forward: replay, replay: true };
      }
      throw new ExitnodeError(
        ForwardErrors.FORWARD_PORT_TAKEN,
        `${protocol} port ${port} of slot ${net.slot}'s GWPubIP4 ${pool.addresses[net.slot - 1]} is taken by another forward; omit the port to get a free one`,
      );
    }
    this.ctx.changed(null);
    const [row] = await this.ctx.db.query<ForwardRow>(
      `${FORWARD_SELECT} WHERE f.allocation = $1 AND f.slot = $2 AND f.protocol = $3 AND f.port = $4`,
      [net.allocation, net.slot, protocol, want.port],
    );
    return { forward: forwardRecord(row!), replay: false };
  }

  private async replay(
    tenant: string,
    key: string,
    want: { network: string; protocol: Protocol; target: string; targetPort: number; port: number | undefined },
  ): Promise<ForwardRecord | undefined> {
    const [row] = await this.ctx.db.query<ForwardRow>(
      `${FORWARD_SELECT} WHERE f.tenant_id = $1 AND f.idempotency_key = $2`,
      [tenant, key],
    );
    if (!row) return undefined;
    const got = forwardRecord(row);
    if (
      got.network !== want.network ||
      got.protocol !== want.protocol ||
      got.target !== want.target ||
      got.targetPort !== want.targetPort ||
      (want.port !== undefined && got.port !== want.port)
    )
      throw new ExitnodeError(
        StoreErrors.IDEMPOTENCY_MISMATCH,
        `Idempotency-Key ${q(key)} was used for another request (forward ${got.protocol} ${got.port} → ${got.target}:${got.targetPort} of network ${q(got.network)})`,
      );
    return got;
  }

  async remove(tenant: string, network: string, protocol: string, port: number | string): Promise<void> {
    const proto = checkProtocol(protocol);
    const p = checkPort(port);
    const net = await this.own(tenant, network);
    const gone = await this.ctx.retry(() =>
      this.ctx.db.transaction(async (tx) => {
        const rows = await tx.query(
          'DELETE FROM forwards WHERE network_id = $1 AND protocol = $2 AND port = $3 RETURNING 1',
          [net.id, proto, p],
        );
        if (rows.length) await tx.query('SELECT xn_touch(xn_network_nodes($1))', [net.id]);
        return rows.length;
      }),
    );
    if (!gone)
      throw new ExitnodeError(
        ForwardErrors.FORWARD_UNKNOWN,
        `network ${q(network)} has no forward of ${proto} port ${p}`,
      );
    this.ctx.changed(null);
  }

  /** Forwards whose target is in NR ID's /24 go with the NR (called after the NR is removed). */
  async dropTargetsOf(network: string, prefix4: string): Promise<void> {
    const [base] = prefix4.split('/');
    const stem = base!.split('.').slice(0, 3).join('.') + '.';
    const rows = await this.ctx.db.query(
      "DELETE FROM forwards WHERE network_id = $1 AND target LIKE $2 || '%' RETURNING 1",
      [network, stem],
    );
    if (rows.length) {
      await this.ctx.db.query('SELECT xn_touch(xn_network_nodes($1))', [network]);
      this.ctx.changed(null);
    }
  }

  async list(network: string, tenant?: string): Promise<ForwardRecord[]> {
    const net = await this.own(tenant, network);
    const rows = await this.ctx.db.query<ForwardRow>(
      `${FORWARD_SELECT} WHERE f.network_id = $1 ORDER BY f.protocol, f.port`,
      [net.id],
    );
    return rows.map(forwardRecord);
  }

  async find(address: string, port: number): Promise<ForwardRecord[]> {
    const a = Ip4.parse(address).toString();
    const rows = await this.ctx.db.query<ForwardRow>(`${FORWARD_SELECT} WHERE f.port = $1 ORDER BY f.protocol`, [port]);
    return rows.map(forwardRecord).filter((f) => f.address.split('/')[0] === a);
  }

  // ---- the inbound policy ----

  async getPolicy(network: string, tenant?: string): Promise<InboundPolicyRecord> {
    const net = await this.own(tenant, network);
    const [p] = await this.ctx.db.query<{ policy: InboundPolicyName }>(
      'SELECT policy FROM inbound_policies WHERE network_id = $1',
      [net.id],
    );
    const rules = await this.ctx.db.query('SELECT * FROM inbound_rules WHERE network_id = $1 ORDER BY id', [net.id]);
    return { network: net.id, policy: p?.policy ?? 'open', rules: rules.map(ruleRecord) };
  }

  async setPolicy(tenant: string, network: string, policy: string): Promise<InboundPolicyRecord> {
    if (!INBOUND_POLICIES.includes(policy as InboundPolicyName))
      throw new ExitnodeError(
        ForwardErrors.INBOUND_POLICY_INVALID,
        `inbound policy ${q(policy)} must be "open" or "closed"`,
      );
    const net = await this.own(tenant, network);
    await this.ctx.retry(() =>
      this.ctx.db.transaction(async (tx) => {
        await tx.query(
          'INSERT INTO inbound_policies (network_id, policy) VALUES ($1, $2) ON CONFLICT (network_id) DO UPDATE SET policy = excluded.policy',
          [net.id, policy],
        );
        await tx.query('SELECT xn_touch(xn_network_nodes($1))', [net.id]);
      }),
    );
    this.ctx.changed(null);
    return this.getPolicy(net.id, tenant);
  }

  async addRule(r: {
    tenant: string;
    network: string;
    protocol: string;
    ports: string | number;
    source?: string;
  }): Promise<InboundRuleRecord> {
    const rule: InboundRule = { protocol: checkProtocol(r.protocol), ...parsePortRange(r.ports) };
    if (r.source !== undefined) rule.source = checkSourcePrefix(r.source);
    const net = await this.own(r.tenant, r.network);
    const row = await this.ctx.retry(() =>
      this.ctx.db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_RULES, net.id]);
        const have = (await tx.query('SELECT * FROM inbound_rules WHERE network_id = $1 ORDER BY id', [net.id])).map(
          ruleRecord,
        );
        if (have.length >= this.ctx.options.inboundRuleQuota)
          throw new ExitnodeError(
            ForwardErrors.INBOUND_RULE_QUOTA,
            `network ${q(net.id)} has ${have.length} inbound rules, its quota (${this.ctx.options.inboundRuleQuota}); remove one first`,
          );
        for (const h of have) {
          const o: InboundRule = { protocol: h.protocol, ...parsePortRange(h.ports) };
          if (h.source) o.source = h.source;
          if (rulesOverlap(o, rule))
            throw new ExitnodeError(
              ForwardErrors.INBOUND_RULE_OVERLAP,
              `rule ${rule.protocol} ${portRangeText(rule)}${rule.source ? ` from ${rule.source}` : ''} overlaps rule ${h.id} (${h.protocol} ${h.ports}${h.source ? ` from ${h.source}` : ''}) of network ${q(net.id)}; remove or change that one`,
            );
        }
        const [x] = await tx.query(
          'INSERT INTO inbound_rules (network_id, protocol, port_from, port_to, source, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *',
          [net.id, rule.protocol, rule.from, rule.to, rule.source ?? null, this.ctx.now()],
        );
        await tx.query('SELECT xn_touch(xn_network_nodes($1))', [net.id]);
        return x!;
      }),
    );
    this.ctx.changed(null);
    return ruleRecord(row);
  }

  async removeRule(tenant: string, network: string, rule: number | string): Promise<void> {
    const net = await this.own(tenant, network);
    const id = typeof rule === 'string' && /^[0-9]{1,10}$/.test(rule) ? Number(rule) : rule;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 2 ** 31 - 1)
      throw new ExitnodeError(ForwardErrors.INBOUND_RULE_UNKNOWN, `network ${q(network)} has no inbound rule ${q(id)}`);
    const gone = await this.ctx.retry(() =>
      this.ctx.db.transaction(async (tx) => {
        const rows = await tx.query('DELETE FROM inbound_rules WHERE network_id = $1 AND id = $2 RETURNING 1', [
          net.id,
          id,
        ]);
        if (rows.length) await tx.query('SELECT xn_touch(xn_network_nodes($1))', [net.id]);
        return rows.length;
      }),
    );
    if (!gone)
      throw new ExitnodeError(ForwardErrors.INBOUND_RULE_UNKNOWN, `network ${q(network)} has no inbound rule ${id}`);
    this.ctx.changed(null);
  }
}
