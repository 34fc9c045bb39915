// exitnode farm create|status: farms (admin creates; the farm token is shown once).
import { parse, positionals, flag, usageError } from '../args.js';
import type { Io } from '../io.js';
import { table } from '../table.js';
import { clientFrom, clientOptions, CLIENT_USAGE } from '../client.js';

export const summary = 'create a farm (admin) or show its status: allocations, slots, leases, nodes, warnings';
export const usage = `exitnode farm create NAME | exitnode farm status NAME  ${CLIENT_USAGE}`;

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, clientOptions, usage);
  const [verb, name] = positionals(p, ['create|status', 'name'], usage);
  const c = clientFrom(p);
  if (verb === 'create') {
    const r = await c.createFarm(name!);
    io.out(flag(p, 'json') ? JSON.stringify(r) : `farm ${r.id} created; its token (shown only now):\n${r.token}`);
    return 0;
  }
  if (verb !== 'status') throw usageError(`unknown action ${JSON.stringify(verb)}`, usage);
  const s = await c.farmStatus(name!);
  if (flag(p, 'json')) {
    io.out(JSON.stringify(s, null, 2));
    return 0;
  }
  const rows = [['allocation', 'prefix', 'slot', 'node', 'epoch', 'lease', 'NRs']];
  for (const a of s.allocations)
    for (const sl of a.slots) {
      rows.push([
        String(a.number),
        a.prefix,
        String(sl.slot),
        sl.node ?? '-',
        String(sl.epoch),
        sl.leaseExpiresAt ? new Date(sl.leaseExpiresAt).toISOString() : '-',
        String(sl.nrs),
      ]);
    }
  if (!s.allocations.length) rows.push(['(no allocations)']);
  const nodes = [
    ['node', 'exit', 'healthy', 'IPv4', 'IPv6'],
    ...s.nodes.map((n) => [
      n.id,
      n.exitCapable ? 'yes' : 'no',
      n.healthy ? 'yes' : 'no',
      n.publicIPv4 ?? '-',
      n.publicIPv6 ?? '-',
    ]),
  ];
  io.out(
    [`farm ${s.id}`, table(rows, '  '), '', table(nodes, '  '), ...s.warnings.map((w) => `warning: ${w}`)].join('\n'),
  );
  return 0;
}
