// exitnode farm create|status|quota: farms (admin creates; the farm token is shown once; the
// admin sets a farm's quotas).
import { parse, positionals, flag } from '../args.js';
import { clean, type Io } from '../io.js';
import { table } from '../table.js';
import { quotaValue, verbOf } from '../verbs.js';
import { clientFrom, clientOptions, CLIENT_USAGE } from '../client.js';

export const summary =
  'create a farm (admin), show its status (allocations, slots, leases, nodes, warnings) or its quotas';
export const usage = `exitnode farm create NAME | farm status NAME | farm quota NAME [--allocations N] [--nodes N] (setting: admin)  ${CLIENT_USAGE}`;

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { ...clientOptions, allocations: { type: 'string' }, nodes: { type: 'string' } }, usage);
  const verb = verbOf(p, ['create', 'status', 'quota'], usage);
  const [, name] = positionals(p, [verb, 'name'], usage);
  if (verb === 'create') {
    const r = await clientFrom(p, 'admin').createFarm(name!);
    io.out(
      flag(p, 'json')
        ? JSON.stringify(r)
        : `farm ${clean(r.id)} created; its token (shown only now):\n${clean(r.token)}`,
    );
    return 0;
  }
  if (verb === 'quota') {
    const limits = {
      allocations: quotaValue(p, 'allocations', usage),
      nodes: quotaValue(p, 'nodes', usage),
    };
    const set = limits.allocations !== undefined || limits.nodes !== undefined;
    const c = clientFrom(p, set ? 'admin' : 'farm');
    const r = set ? await c.setFarmQuota(name!, limits) : await c.farmQuota(name!);
    io.out(
      flag(p, 'json')
        ? JSON.stringify(r, null, 2)
        : table([
            ['quota', 'limit', 'used'],
            ['allocations', String(r.allocations.limit), String(r.allocations.used)],
            ['nodes', String(r.nodes.limit), String(r.nodes.used)],
          ]),
    );
    return 0;
  }
  const s = await clientFrom(p, 'farm').farmStatus(name!);
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
    [
      `farm ${clean(s.id)}`,
      table(rows, '  '),
      '',
      table(nodes, '  '),
      ...s.warnings.map((w) => `warning: ${clean(w)}`),
    ].join('\n'),
  );
  return 0;
}
