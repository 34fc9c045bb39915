// View assembly: a node's view (what its agent applies) and the network records of the API, each
// read in one pass of a few queries and shaped here. The caller chooses the transaction.
import {
  ExitnodeError,
  allocation as planAllocation,
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
import { allocationRecord, slotRecord } from './rows.js';
import type { Queryable } from './sql.js';
import type { NetworkRecord, NodeView, ResourceRecord } from './types.js';

/** The view of `node`; run it in one read-only repeatable-read transaction so that it is one state. */
export async function assembleView(tx: Queryable, node: string): Promise<NodeView> {
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
