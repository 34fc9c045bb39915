// exitnode explain: what an address or prefix is in the plan, who carries it, and the path to it.
import { allocation, explain, nrId } from '../../core/index.js';
import { q } from '../../core/errors.js';
import { flag, need, opt, parse, positionals, usageError } from '../args.js';
import type { Io } from '../io.js';
import { table } from '../table.js';

export const summary = 'which slot, NR, namespaces and interfaces carry an address, and the path to it';
export const usage =
  'exitnode explain <address|prefix> --prefix <prefix/48> --allocation A [--exit HHHH] [--iface NAME] [--json]';

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(
    argv,
    {
      prefix: { type: 'string', short: 'p' },
      allocation: { type: 'string', short: 'a' },
      exit: { type: 'string' },
      iface: { type: 'string' },
      json: { type: 'boolean' },
    },
    usage,
  );
  const [what] = positionals(p, ['address|prefix'], usage);
  const a = allocation(need(p, 'prefix', usage), need(p, 'allocation', usage));
  const exitText = opt(p, 'exit');
  // An interface name is printed in the path: no spaces or control characters (a newline drew a fake step).
  const iface = opt(p, 'iface');
  if (iface !== undefined && !/^[\x21-\x7e]{1,64}$/.test(iface))
    throw usageError(
      `--iface ${q(iface)} is not an interface name: 1 to 64 printable characters without spaces`,
      usage,
    );
  const e = explain(a, what!, { exit: exitText === undefined ? undefined : nrId(exitText), iface });
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
