// The farm as the dashboard shows it (issue 12): every slot of every allocation with its holder,
// lease, health and last move; the nodes with what their agents report about themselves; network
// summaries and a slot's NRs for the virtualised lists. Reads shaped for one page load each, plus
// the one write that feeds them: the agent's own report (POST /v1/nodes/{id}/report).
//
// Candidates: stage 1 has one node per slot (the lease holder), so `candidates` lists it (and the
// target of a planned move). Stage 2 (DESIGN.md section 8.2) keeps the list and fills it from the
// slot's ordered candidates with the VRRP role each agent reports (master, backup, fault); the
// page already draws the list.
import { allocation as planAllocation, nrIdText, nrPrefix } from '../core/index.js';
import type { StoreContext } from './context.js';
import { allocationRecord, candidateRecord, nodeRecord, slotRecord, type Row } from './rows.js';
import type {
  AgentReport,
  CandidateRecord,
  Dashboard,
  FarmOverview,
  NetworkSummary,
  NodeStatus,
  ResourceOwner,
  SlotCandidate,
  SlotResource,
  SlotStatus,
} from './types.js';

export type {
  AgentReport,
  Dashboard,
  FarmOverview,
  NetworkSummary,
  NodeStatus,
  ResourceOwner,
  SlotCandidate,
  SlotResource,
  SlotStatus,
} from './types.js';

export const slotCapacity = (slot: number): number => (slot === 15 ? 3840 : 4096);

export class DashboardQueries implements Dashboard {
  constructor(private readonly ctx: StoreContext) {}

  async overview(farm: string): Promise<FarmOverview> {
    const { db, options } = this.ctx;
    return db.transaction(
      async (tx) => {
        const now = this.ctx.now();
        const allocs = (await tx.query('SELECT * FROM allocations WHERE farm_id = $1 ORDER BY number', [farm])).map(
          allocationRecord,
        );
        const slotRows = await tx.query(
          `SELECT s.*, a.ipv4, a.failover FROM slots s JOIN allocations a ON a.number = s.allocation
            WHERE a.farm_id = $1 ORDER BY s.allocation, s.slot`,
          [farm],
        );
        // Stage 2: the candidates of the 'vrrp' slots, with the VRRP role each agent reports.
        const cands = new Map<string, CandidateRecord[]>();
        for (const c of await tx.query(
          `SELECT c.*, nd.last_heartbeat FROM slot_candidates c JOIN nodes nd ON nd.id = c.node_id
             JOIN allocations a ON a.number = c.allocation WHERE a.farm_id = $1 ORDER BY c.allocation, c.slot, c.rank`,
          [farm],
        )) {
          const k = `${Number(c.allocation)}/${Number(c.slot)}`;
          cands.set(k, [...(cands.get(k) ?? []), candidateRecord(c, now, options.leaseTtlMs)]);
        }
        const nodeRows = await tx.query(
          `SELECT n.*, v.version FROM nodes n JOIN node_versions v ON v.node_id = n.id WHERE n.farm_id = $1 ORDER BY n.id`,
          [farm],
        );
        const [c] = await tx.query<{ networks: number; resources: number }>(
          `SELECT (SELECT count(*) FROM networks n JOIN allocations a ON a.number = n.allocation WHERE a.farm_id = $1)::int AS networks,
                  (SELECT coalesce(sum(s.nr_count), 0) FROM slots s JOIN allocations a ON a.number = s.allocation WHERE a.farm_id = $1)::int AS resources`,
          [farm],
        );
        const held = new Map<string, string[]>();
        const slots = new Map<number, SlotStatus[]>();
        for (const r of slotRows) {
          const s = slotStatus(
            r,
            r.failover === 'vrrp' ? (cands.get(`${Number(r.allocation)}/${Number(r.slot)}`) ?? []) : undefined,
          );
          if (s.node) held.set(s.node, [...(held.get(s.node) ?? []), `${s.allocation}/${s.slot}`]);
          slots.set(s.allocation, [...(slots.get(s.allocation) ?? []), s]);
        }
        const nodes: NodeStatus[] = nodeRows.map((r) => ({
          ...nodeRecord(r, now, options.leaseTtlMs),
          viewVersion: Number(r.version),
          slots: held.get(String(r.id)) ?? [],
          ...(r.agent_report
            ? {
                agent: (typeof r.agent_report === 'string'
                  ? JSON.parse(r.agent_report)
                  : r.agent_report) as AgentReport,
                agentReportAt: Number(r.agent_report_at),
              }
            : {}),
          ...(r.silent_since !== null && r.silent_since !== undefined ? { silentSince: Number(r.silent_since) } : {}),
        }));
        return {
          farm,
          now,
          leaseTtlMs: options.leaseTtlMs,
          allocations: allocs.map((a) => ({ ...a, slots: slots.get(a.number) ?? [] })),
          nodes,
          networks: Number(c?.networks ?? 0),
          resources: Number(c?.resources ?? 0),
        };
      },
      { readOnly: true, repeatableRead: true },
    );
  }

  async networks(
    scope: { farm?: string; tenant?: string },
    f: { allocation?: number; slot?: number } = {},
  ): Promise<NetworkSummary[]> {
    const rows = await this.ctx.db.query(
      `SELECT n.id, n.name, n.tenant_id, n.allocation, n.slot, n.exit_id, x.node_id AS exit_node, c.nrs
         FROM networks n
         JOIN allocations a ON a.number = n.allocation
         LEFT JOIN resources x ON x.allocation = n.allocation AND x.nr_id = n.exit_id
         LEFT JOIN (SELECT network_id, count(*)::int AS nrs FROM resources GROUP BY network_id) c ON c.network_id = n.id
        WHERE ($1::text IS NULL OR a.farm_id = $1) AND ($2::text IS NULL OR n.tenant_id = $2)
          AND ($3::int IS NULL OR n.allocation = $3) AND ($4::int IS NULL OR n.slot = $4)
        ORDER BY n.allocation, n.slot, n.exit_id`,
      [scope.farm ?? null, scope.tenant ?? null, f.allocation ?? null, f.slot ?? null],
    );
    return rows.map((r) => ({
      id: String(r.id),
      name: String(r.name),
      tenant: String(r.tenant_id),
      allocation: Number(r.allocation),
      slot: Number(r.slot),
      exit: nrIdText(Number(r.exit_id)),
      exitNode: r.exit_node === null || r.exit_node === undefined ? null : String(r.exit_node),
      nrs: Number(r.nrs ?? 0),
    }));
  }

  async slotResources(allocation: number, slot: number, network?: string): Promise<SlotResource[]> {
    const { db } = this.ctx;
    const [a] = await db.query('SELECT * FROM allocations WHERE number = $1', [allocation]);
    if (!a) return [];
    const plan = planAllocation(allocationRecord(a).prefix, allocation);
    const rows = await db.query(
      `SELECT r.nr_id, r.network_id, r.node_id, r.public_key IS NOT NULL AS key, n.name, n.tenant_id, n.exit_id
         FROM resources r JOIN networks n ON n.id = r.network_id
        WHERE r.allocation = $1 AND r.slot = $2 AND ($3::text IS NULL OR r.network_id = $3) ORDER BY r.nr_id`,
      [allocation, slot, network ?? null],
    );
    return rows.map((r) => {
      const id = Number(r.nr_id);
      return {
        id: nrIdText(id),
        network: String(r.network_id),
        name: String(r.name),
        tenant: String(r.tenant_id),
        node: String(r.node_id),
        prefix: nrPrefix(plan, id).toString(),
        exit: Number(r.exit_id) === id,
        key: Boolean(r.key),
      };
    });
  }

  async findResource(allocation: number, nr: number): Promise<ResourceOwner | undefined> {
    const [r] = await this.ctx.db.query(
      `SELECT r.node_id, r.network_id, n.name, n.tenant_id, n.exit_id, x.node_id AS exit_node
         FROM resources r JOIN networks n ON n.id = r.network_id
         LEFT JOIN resources x ON x.allocation = n.allocation AND x.nr_id = n.exit_id
        WHERE r.allocation = $1 AND r.nr_id = $2`,
      [allocation, nr],
    );
    if (!r) return undefined;
    return {
      network: String(r.network_id),
      name: String(r.name),
      tenant: String(r.tenant_id),
      node: String(r.node_id),
      exit: nrIdText(Number(r.exit_id)),
      exitNode: r.exit_node === null || r.exit_node === undefined ? null : String(r.exit_node),
    };
  }

  async report(node: string, r: AgentReport): Promise<boolean> {
    const hit = await this.ctx.db.query(
      'UPDATE nodes SET agent_report = $2, agent_report_at = $3 WHERE id = $1 RETURNING 1',
      [node, JSON.stringify(r), this.ctx.now()],
    );
    return hit.length > 0;
  }
}

function slotStatus(r: Row, vrrp?: CandidateRecord[]): SlotStatus {
  const s = slotRecord(r);
  const candidates: SlotCandidate[] = [];
  if (vrrp) {
    for (const c of vrrp) candidates.push({ ...c, role: c.vrrpState ? c.vrrpState.toLowerCase() : 'candidate' });
    if (!vrrp.length && s.node) candidates.push({ node: s.node, role: 'holder' });
  } else {
    if (s.node) candidates.push({ node: s.node, role: 'holder' });
    if (s.movingTo) candidates.push({ node: s.movingTo, role: 'moving-to' });
  }
  return {
    ...s,
    ...(vrrp ? { vrrpTransitions: Number(r.vrrp_transitions ?? 0) } : {}),
    capacity: slotCapacity(s.slot),
    candidates,
    ...(r.moved_at !== null && r.moved_at !== undefined
      ? {
          lastMove: {
            from: r.moved_from === null || r.moved_from === undefined ? null : String(r.moved_from),
            at: Number(r.moved_at),
            cause: String(r.move_cause),
          },
        }
      : {}),
  };
}
