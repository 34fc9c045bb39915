// exitnode explain: what an address or prefix is in the plan, who carries it, and the path to it.
import {
  allocation,
  checkPort,
  explain,
  explainForward,
  ExitnodeError,
  ForwardErrors,
  nrId,
  q,
  type Explanation,
} from '../../core/index.js';
import { flag, need, opt, parse, positionals, usageError } from '../args.js';
import { clientFrom, clientOptions, CLIENT_USAGE } from '../client.js';
import type { Io } from '../io.js';
import { table } from '../table.js';

export const summary = 'which slot, NR, namespaces and interfaces carry an address, and the path to it';
export const usage = `exitnode explain <address|prefix> --prefix <prefix/48> --allocation A [--exit HHHH] [--iface NAME] [--json] | explain GWPUBIP4:PORT (a port forward, asked of TNoDB) ${CLIENT_USAGE}`;

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(
    argv,
    {
      prefix: { type: 'string', short: 'p' },
      allocation: { type: 'string', short: 'a' },
      exit: { type: 'string' },
      iface: { type: 'string' },
      ...clientOptions,
    },
    usage,
  );
  const [what] = positionals(p, ['address|prefix'], usage);
  let e: Explanation;
  const fw = /^([0-9.]+):([^:]*)$/.exec(what!);
  if (fw) {
    // GWPubIP4:PORT: only TNoDB knows which forward that is.
    const port = checkPort(fw[2], 'port');
    const found = await clientFrom(p).findForward(fw[1]!, port);
    if (!found.length)
      throw new ExitnodeError(
        ForwardErrors.FORWARD_UNKNOWN,
        `no forward of yours is on ${q(what)} (tcp or udp); exitnode network forward list NETWORK shows them`,
      );
    const all = found.map((f) => explainForward(allocation(f.prefix, f.allocation), f));
    if (flag(p, 'json')) {
      io.out(JSON.stringify(all.length === 1 ? all[0] : all, null, 2));
      return 0;
    }
    e = all[0]!;
    for (const x of all.slice(1))
      e = {
        ...e,
        role: `${e.role}\n${x.role}`,
        carriers: [...e.carriers, ...x.carriers],
        path: [...e.path, ...x.path],
      };
  } else {
    const a = allocation(need(p, 'prefix', usage), need(p, 'allocation', usage));
    const exitText = opt(p, 'exit');
    // An interface name is printed in the path: no spaces or control characters (a newline drew a fake step).
    const iface = opt(p, 'iface');
    if (iface !== undefined && !/^[\x21-\x7e]{1,64}$/.test(iface))
      throw usageError(
        `--iface ${q(iface)} is not an interface name: 1 to 64 printable characters without spaces`,
        usage,
      );
    e = explain(a, what!, { exit: exitText === undefined ? undefined : nrId(exitText), iface });
  }
  if (flag(p, 'json')) {
    io.out(JSON.stringify(e, null, 2));
    return 0;
  }
  const out = [`${e.input}: ${e.role}`];
  const where = [e.slot !== undefined ? `slot ${e.slot}` : '', e.nr ? `NR ${e.nr}` : ''].filter(Boolean).join(', ');
  if (where) out.push(`  ${where}; allocation ${e.allocation.prefix} (number ${e.allocation.number})`);
  if (e.carriers.length) {
    out.push('', 'carried by:');
    out.push(
      table(
        e.carriers.map((c) => [c.namespace, c.interface, c.how, c.detail]),
        '  ',
      ),
    );
  }
  if (e.path.length) {
    out.push('', 'path from the upstream router:');
    e.path.forEach((h, i) => {
      out.push(`  ${i + 1}. ${h.at}: ${h.route}`);
      out.push(`     ${h.note}`);
    });
  }
  if (e.unknown.length) {
    out.push('', 'not determined by the plan alone:');
    for (const u of e.unknown) out.push(`  - ${u}`);
  }
  io.out(out.join('\n'));
  return 0;
}
