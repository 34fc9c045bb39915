// exitnode node add|show: a farm's nodes (farm token; the node token is shown once).
import { parse, positionals, flag, need, opt } from '../args.js';
import { clean, type Io } from '../io.js';
import { verbOf } from '../verbs.js';
import { clientFrom, clientOptions, CLIENT_USAGE } from '../client.js';

export const summary = 'register a node of a farm (prints its token once) or show one';
export const usage = `exitnode node add ID --farm F [--ipv4 ADDR] [--ipv6 ADDR] [--exit] | node show ID  ${CLIENT_USAGE}`;

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(
    argv,
    {
      ...clientOptions,
      farm: { type: 'string' },
      ipv4: { type: 'string' },
      ipv6: { type: 'string' },
      exit: { type: 'boolean' },
    },
    usage,
  );
  const verb = verbOf(p, ['add', 'show'], usage);
  const [, id] = positionals(p, [verb, 'id'], usage);
  if (verb === 'show') {
    const n = await clientFrom(p, 'farm or node').getNode(id!);
    io.out(
      flag(p, 'json')
        ? JSON.stringify(n, null, 2)
        : `node ${clean(n.id)} (farm ${clean(n.farm)}): exit-capable ${n.exitCapable ? 'yes' : 'no'}, ${n.healthy ? 'healthy' : 'not healthy'}, IPv4 ${clean(n.publicIPv4 ?? '-')}, IPv6 ${clean(n.publicIPv6 ?? '-')}`,
    );
    return 0;
  }
  const c = clientFrom(p, 'farm');
  const v4 = opt(p, 'ipv4');
  const v6 = opt(p, 'ipv6');
  const r = await c.addNode({
    farm: need(p, 'farm', usage),
    id: id!,
    exitCapable: flag(p, 'exit'),
    ...(v4 ? { publicIPv4: v4 } : {}),
    ...(v6 ? { publicIPv6: v6 } : {}),
  });
  io.out(
    flag(p, 'json')
      ? JSON.stringify(r)
      : `node ${clean(r.id)} registered; its token (shown only now, give it to the node's agent in a file: --token-file):\n${clean(r.token)}`,
  );
  return 0;
}
