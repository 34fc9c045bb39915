// View assembly: a node's view (what its agent applies) and the network records of the API, each
// read in one pass of a few queries and shaped here. The caller chooses the transaction.
import {
  ExitnodeError,
  allocation as planAllocation,
  gwPubIP6,
  nrIdText,
  nrPrefix,
  nrPrefix4,
  q,
  Ip4,
  type Forward,
  type InboundRule,
  type Protocol,
} from '../core/index.js';
import { StoreErrors } from './errors.js';
import { allocationRecord, candidatePriority, slotRecord } from './rows.js';
import type { Queryable } from './sql.js';
import type { AllocationRecord, NetworkRecord, NodeView, ResourceRecord } from './types.js';

/** The endpoint of a stage-2 ExitPoint: the slot's floating address (GWPubIP4 if the pool has one
 *  for the slot, else GWPubIP6) and the NR's WireGuard port (its id). */
export function floatingEndpoint(a: AllocationRecord, slot: number, nr: number): string {
  const v4 = a.ipv4?.addresses[slot - 1];
  return v4 ? `${v4}:${nr}` : `[${gwPubIP6(planAllocation(a.prefix, a.number), slot).toString()}]:${nr}`;
}

/** The view of `node`; run it in one read-only repeatable-read transaction so that it is one state. */
export async function assembleView(tx: Queryable, node: string): Promise<NodeView> {
  const [n] = await tx.query(
    'SELECT n.*, v.version FROM nodes n JOIN node_versions v ON v.node_id = n.id WHERE n.id = $1',
    [node],
  );
  if (!n) throw new ExitnodeError(StoreErrors.NODE_UNKNOWN, `node ${q(node)} does not exist`);
  // The slots this node holds ('lease') or is a candidate of ('vrrp').
  const slots = await tx.query(
    `SELECT s.*, a.ipv4, a.failover FROM slots s JOIN allocations a ON a.number = s.allocation
      WHERE s.node_id = $1
         OR EXISTS (SELECT 1 FROM slot_candidates c WHERE c.allocation = s.allocation AND c.slot = s.slot AND c.node_id = $1)
      ORDER BY s.allocation, s.slot`,
    [node],
  );
  const vrrpSlots = slots.filter((s) => s.failover === 'vrrp');
  const candRows = vrrpSlots.length
    ? await tx.query<{ allocation: number; slot: number; node_id: string; rank: number; step_down: boolean }>(
        `SELECT c.allocation, c.slot, c.node_id, c.rank, c.step_down FROM slot_candidates c
          WHERE (c.allocation, c.slot) IN (SELECT * FROM unnest($1::int[], $2::int[])) ORDER BY c.allocation, c.slot, c.rank`,
        [vrrpSlots.map((s) => Number(s.allocation)), vrrpSlots.map((s) => Number(s.slot))],
      )
    : [];
  const candOf = new Map<string, typeof candRows>();
  for (const c of candRows) {
    const k = `${Number(c.allocation)}/${Number(c.slot)}`;
    candOf.set(k, [...(candOf.get(k) ?? []), c]);
  }
  /** Slots ("A/E") whose candidate this node is: their views carry the stage-2 fields. */
  const mine = new Set(
    candRows.filter((c) => String(c.node_id) === node).map((c) => `${Number(c.allocation)}/${Number(c.slot)}`),
  );
  const nets = await tx.query<{ id: string; allocation: number; slot: number; exit_id: number }>(
    `SELECT n.id, n.allocation, n.slot, n.exit_id FROM networks n
          WHERE n.id IN (SELECT network_id FROM resources WHERE node_id = $1)
             OR EXISTS (SELECT 1 FROM slots s WHERE s.node_id = $1 AND s.allocation = n.allocation AND s.slot = n.slot)
             OR EXISTS (SELECT 1 FROM slot_candidates c WHERE c.node_id = $1 AND c.allocation = n.allocation AND c.slot = n.slot)
          ORDER BY n.id`,
    [node],
  );
  const res = nets.length
    ? await tx.query(
        `SELECT r.network_id, r.nr_id, r.node_id, r.public_key, r.learned_endpoint, nd.public_ipv4, nd.public_ipv6
           FROM resources r JOIN nodes nd ON nd.id = r.node_id WHERE r.network_id = ANY($1) ORDER BY r.nr_id`,
        [nets.map((x) => x.id)],
      )
    : [];
  // ExitPoint private keys sealed to this node, for the slots it is a candidate of.
  const sealed = new Map<string, string>();
  if (mine.size)
    for (const k of await tx.query<{ allocation: number; nr_id: number; sealed: string }>(
      `SELECT k.allocation, k.nr_id, k.sealed FROM sealed_keys k
         JOIN slot_candidates c ON c.allocation = k.allocation AND c.slot = k.nr_id >> 12 AND c.node_id = k.node_id
        WHERE k.node_id = $1`,
      [node],
    ))
      sealed.set(`${Number(k.allocation)}/${Number(k.nr_id)}`, String(k.sealed));
  // The node keys of the farm's other exit-capable nodes, to which a candidate seals.
  const sealTo = mine.size
    ? (
        await tx.query<{ id: string; node_key: string }>(
          `SELECT id, node_key FROM nodes WHERE farm_id = $1 AND exit_capable AND node_key IS NOT NULL AND id <> $2 ORDER BY id`,
          [n.farm_id, node],
        )
      ).map((r) => ({ node: String(r.id), key: String(r.node_key) }))
    : [];
  // Forwards and the inbound policy (issue 13): only forwards whose target NR is still there.
  const ids = nets.map((x) => x.id);
  const fwRows = ids.length
    ? await tx.query(
        'SELECT network_id, protocol, port, target, target_port FROM forwards WHERE network_id = ANY($1) ORDER BY protocol, port',
        [ids],
      )
    : [];
  const closed = new Set(
    ids.length
      ? (
          await tx.query<{ network_id: string }>(
            "SELECT network_id FROM inbound_policies WHERE network_id = ANY($1) AND policy = 'closed'",
            [ids],
          )
        ).map((r) => String(r.network_id))
      : [],
  );
  const ruleRows = closed.size
    ? await tx.query('SELECT * FROM inbound_rules WHERE network_id = ANY($1) ORDER BY id', [[...closed]])
    : [];
  const numbers = [...new Set([...slots.map((s) => Number(s.allocation)), ...nets.map((x) => Number(x.allocation))])];
  const allocs = numbers.length
    ? (await tx.query('SELECT * FROM allocations WHERE number = ANY($1) ORDER BY number', [numbers])).map(
        allocationRecord,
      )
    : [];
  const allocOf = new Map(allocs.map((a) => [a.number, a]));
  const netOf = new Map(nets.map((x) => [String(x.id), x]));
  const byNet = new Map<string, NodeView['networks'][number]['resources']>();
  for (const r of res) {
    const list = byNet.get(String(r.network_id)) ?? [];
    const id = Number(r.nr_id);
    const net = netOf.get(String(r.network_id))!;
    const a = allocOf.get(Number(net.allocation))!;
    const isExit = id === Number(net.exit_id);
    const slotKey = `${Number(net.allocation)}/${Number(net.slot)}`;
    // Stage 2: the ExitPoint's endpoint floats with the slot (GWPubIP4:port, else [GWPubIP6]:port).
    const endpoint =
      isExit && a.failover === 'vrrp'
        ? floatingEndpoint(a, Number(net.slot), id)
        : r.public_ipv4
          ? `${String(r.public_ipv4)}:${id}`
          : r.public_ipv6
            ? `[${String(r.public_ipv6)}]:${id}`
            : undefined;
    const sealedKey = isExit && mine.has(slotKey) ? sealed.get(`${a.number}/${id}`) : undefined;
    const learned = !isExit && mine.has(slotKey) && r.learned_endpoint ? String(r.learned_endpoint) : undefined;
    list.push({
      id: nrIdText(id),
      node: String(r.node_id),
      ...(r.public_key ? { publicKey: String(r.public_key) } : {}),
      ...(endpoint ? { endpoint } : {}),
      ...(sealedKey ? { sealedKey } : {}),
      ...(learned ? { learnedEndpoint: learned } : {}),
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
    slots: slots.map((r) => {
      const s = slotRecord(r);
      const out: NodeView['slots'][number] = {
        allocation: s.allocation,
        slot: s.slot,
        epoch: s.epoch,
        ...(s.ipv4 ? { ipv4: s.ipv4.split('/')[0]! } : {}),
      };
      if (r.failover === 'vrrp') {
        const cands = candOf.get(`${s.allocation}/${s.slot}`) ?? [];
        const me = cands.find((c) => String(c.node_id) === node);
        // A holder without a list yet (the sweep makes one): a list of one.
        out.candidates = cands.length ? cands.map((c) => String(c.node_id)) : [node];
        out.priority = candidatePriority(me ? Number(me.rank) : 0);
        if (me?.step_down) out.stepDown = true;
      }
      return out;
    }),
    ...(mine.size ? { sealTo } : {}),
    networks: nets.map((x) => {
      const resources = byNet.get(x.id) ?? [];
      const out: NodeView['networks'][number] = {
        id: x.id,
        allocation: Number(x.allocation),
        exit: nrIdText(Number(x.exit_id)),
        resources,
      };
      const p4 = resources.map((r) => nrPrefix4(parseInt(r.id, 16)));
      const forwards: Forward[] = fwRows
        .filter((f) => String(f.network_id) === x.id && p4.some((p) => p.contains(Ip4.parse(String(f.target)))))
        .map((f) => ({
          protocol: f.protocol as Protocol,
          port: Number(f.port),
          target: String(f.target),
          targetPort: Number(f.target_port),
        }));
      if (forwards.length) out.forwards = forwards;
      if (closed.has(x.id))
        out.inbound = {
          policy: 'closed',
          rules: ruleRows
            .filter((r) => String(r.network_id) === x.id)
            .map((r) => {
              const rule: InboundRule = {
                protocol: r.protocol as Protocol,
                from: Number(r.port_from),
                to: Number(r.port_to),
              };
              if (r.source) rule.source = String(r.source);
              return rule;
            }),
        };
      return out;
    }),
  };
}

/** The networks that match `where` (on networks n), with their NRs, oldest first. */
export async function networkRecords(db: Queryable, where: string, params: unknown[]): Promise<NetworkRecord[]> {
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
