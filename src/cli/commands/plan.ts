// exitnode plan: the addressing plan of a slot or an NR, as a table for people or JSON for scripts.
import {
  allocation,
  nrIdText,
  plan,
  planNr,
  slotIdRange,
  checkSlot,
  type NrPlan,
  type SlotPlan,
} from '../../core/index.js';
import { flag, need, opt, parse, positionals, usageError } from '../args.js';
import type { Io } from '../io.js';
import { table } from '../table.js';

export const summary = 'the addressing plan of a slot or an NR: names, prefixes, addresses, ports, routes';
export const usage = 'exitnode plan <prefix/48> --allocation A [--slot E] [--nr HHHH] [--all] [--json]';

const SLOT_ROWS: [keyof SlotPlan, string][] = [
  ['prefix', "the slot's /52: every NR behind this ExitNode"],
  ['Namespace', 'gateway namespace (the BAR)'],
  ['GWPubName', 'gateway uplink on PrefixZero'],
  ['GWPubLL', "uplink link-local: the upstream route's next hop"],
  ['GWPubIP6', 'uplink global address, in PrefixZero'],
  ['upstreamRoute', 'the one static route on the upstream router'],
];

const NR_ROWS: [keyof NrPlan, string][] = [
  ['prefix', "the NR's /64"],
  ['Namespace', 'NR namespace'],
  ['GWtoEPName', 'gateway end of the ExitPoint veth'],
  ['GWtoEPLL', 'its link-local (ExitPoint IPv6 default route)'],
  ['GWtoEPIP4', 'its IPv4 (ExitPoint IPv4 default route)'],
  ['EPPubName', 'ExitPoint end of the veth'],
  ['EPPubLL', 'its link-local (gateway next hop for the TN)'],
  ['EPPubIP4R', 'its IPv4 routing address'],
  ['WGName', 'WireGuard interface'],
  ['WGLL', 'WireGuard link-local'],
  ['WGIP4RT', 'WireGuard IPv4 routing address'],
  ['WGPort', 'WireGuard UDP listen port'],
  ['NRLocalName', 'towards the workloads'],
  ['NRLocalIP6', "workloads' IPv6 gateway"],
  ['NRLocalIP4', "workloads' IPv4 gateway (SNAT at the gateway)"],
  ['BridgeName', 'workloads attach here, node root namespace'],
];

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(
    argv,
    {
      allocation: { type: 'string', short: 'a' },
      slot: { type: 'string', short: 's' },
      nr: { type: 'string', short: 'n' },
      all: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    usage,
  );
  const [prefix] = positionals(p, ['prefix/48'], usage);
  const a = allocation(prefix!, need(p, 'allocation', usage));
  const json = flag(p, 'json');
  const slotText = opt(p, 'slot');
  const nrText = opt(p, 'nr');

  if (flag(p, 'all')) {
    if (slotText === undefined) throw usageError('--all needs --slot', usage);
    if (nrText !== undefined) throw usageError('--all and --nr exclude each other', usage);
    const slot = checkSlot(slotText);
    const { first, last } = slotIdRange(slot);
    const chunk: string[] = [];
    const flush = (): void => {
      if (chunk.length) {
        io.out(chunk.join('\n'));
        chunk.length = 0;
      }
    };
    if (!json) chunk.push(table([['id', 'prefix', 'ipv4', 'namespace', 'wg', 'port']]));
    for (let id = first; id <= last; id++) {
      const n = planNr(a, id);
      chunk.push(
        json
          ? JSON.stringify(n)
          : table([
              [n.id, n.prefix, n.NRLocalIP4.replace(/\.1\/24$/, '.0/24'), n.Namespace, n.WGName, String(n.WGPort)],
            ]),
      );
      if (chunk.length >= 512) flush();
    }
    flush();
    return 0;
  }
  if (slotText === undefined && nrText === undefined) throw usageError('give --slot E, --nr HHHH or both', usage);
  const result = plan(a, { slot: slotText, nr: nrText });
  if (json) {
    io.out(JSON.stringify(result, null, 2));
    return 0;
  }
  const out: string[] = [];
  out.push(`allocation ${result.allocation.prefix}, number ${result.allocation.number}`);
  out.push('');
  out.push(
    `slot ${result.slot.number}: the gateway of ExitNode ${result.slot.number} (NR ids ${nrIdText(slotIdRange(result.slot.number).first)}-${nrIdText(slotIdRange(result.slot.number).last)})`,
  );
  out.push(
    table(
      SLOT_ROWS.map(([k, why]) => [k, String(result.slot[k]), why]),
      '  ',
    ),
  );
  if (result.nr) {
    out.push('');
    out.push(`NR ${result.nr.id}`);
    out.push(
      table(
        NR_ROWS.map(([k, why]) => [k, String(result.nr![k]), why]),
        '  ',
      ),
    );
    const n = result.nr;
    out.push('');
    out.push(`  routes in ${result.slot.Namespace}, when ${n.id} is its TN's ExitPoint (exit):`);
    out.push(`    ${n.prefix} via ${n.EPPubLL.replace('/64', '')} dev ${n.GWtoEPName}`);
    out.push(
      `    ${n.NRLocalIP4.replace(/\.1\/24$/, '.0/24')} via ${n.EPPubIP4R.replace('/32', '')} dev ${n.GWtoEPName} onlink`,
    );
    out.push(`  routes in ${n.Namespace} as an ExitPoint:`);
    out.push(`    ::/0 via ${n.GWtoEPLL.replace('/64', '')} dev ${n.EPPubName}`);
    out.push(`    0.0.0.0/0 via ${n.GWtoEPIP4.replace('/32', '')} dev ${n.EPPubName} onlink`);
  }
  io.out(out.join('\n'));
  return 0;
}
