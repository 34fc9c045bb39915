// exitnode upstream: the farmer's upstream router configuration for the enabled slots, in the
// syntax of the router's OS (DESIGN.md section 7). The output goes to stdout, ready for a file.
import { ROUTER_OSES, parseSlotList, renderUpstream } from '../../render/index.js';
import { need, opt, parse, positionals } from '../args.js';
import type { Io } from '../io.js';

export const summary = "the upstream router's PrefixZero addresses and one static route per slot, per router OS";
export const usage = `exitnode upstream <prefix/48> --slots 1-3,5 --router <${ROUTER_OSES.join('|')}> --iface <name> [--via ll|global] [--upstream-ll ADDR] [--upstream-ip6 ADDR]`;

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(
    argv,
    {
      slots: { type: 'string', short: 's' },
      router: { type: 'string', short: 'r' },
      iface: { type: 'string', short: 'i' },
      via: { type: 'string' },
      'upstream-ll': { type: 'string' },
      'upstream-ip6': { type: 'string' },
    },
    usage,
  );
  const [prefix] = positionals(p, ['prefix/48'], usage);
  const text = renderUpstream({
    prefix: prefix!,
    slots: parseSlotList(need(p, 'slots', usage)),
    router: need(p, 'router', usage),
    iface: need(p, 'iface', usage),
    via: opt(p, 'via') as 'll' | 'global' | undefined,
    upstreamLL: opt(p, 'upstream-ll'),
    upstreamIP6: opt(p, 'upstream-ip6'),
  });
  io.out(text.endsWith('\n') ? text.slice(0, -1) : text);
  return 0;
}
