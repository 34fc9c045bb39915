// What every renderer draws from: the validated input and, per enabled slot, the route the
// upstream router needs. Addresses come from the core plan (planSlot, gwPubLL, gwPubIP6), never
// re-derived here, so a renderer cannot disagree with the gateways it points at.
import {
  DEFAULT_UPSTREAM_LL,
  ExitnodeError,
  allocation,
  checkUpstreamIP6,
  checkUpstreamLL,
  gwPubIP6,
  gwPubLL,
  planSlot,
  q,
  upstreamIP6,
  type Ip6Prefix,
} from '../core/index.js';
import { RenderErrors } from './errors.js';
import { checkSlots, formatSlotList } from './slots.js';

export type RouterOs = 'linux' | 'ifupdown2' | 'frr' | 'bird' | 'vyos' | 'mikrotik' | 'cisco' | 'junos' | 'openwrt';
export type Via = 'll' | 'global';

export interface UpstreamInput {
  /** The farm /48 (validated with core's allocation rules). */
  prefix: string | Ip6Prefix;
  /** Enabled slots 1..15 (validated, deduplicated, sorted). */
  slots: number[];
  /** Validated: an unknown OS is refused with the list of known ones. */
  router: RouterOs | string;
  /** The upstream router's interface on PrefixZero; validated per OS. */
  iface: string;
  /** Next hop: the gateway's link-local GWPubLL (default) or its global GWPubIP6. */
  via?: Via;
  /** The upstream's link-local address on PrefixZero; default fe80::1. */
  upstreamLL?: string;
  /** The upstream's global address on PrefixZero (a /64 on the interface); default P::1. */
  upstreamIP6?: string;
}

export interface SlotRoute {
  slot: number;
  /** The slot's /52, P:E000::/52. */
  prefix: string;
  /** GWPubLL without its length. */
  ll: string;
  /** GWPubIP6 without its length. */
  ip6: string;
  /** The next hop the route uses: ll or ip6, after --via. */
  nextHop: string;
}

export interface UpstreamModel {
  router: RouterOs;
  /** P/48 in canonical text. */
  allocation: string;
  /** PrefixZero's first /64, P::/64: the segment shared by the upstream and every gateway uplink. */
  segment: string;
  slots: number[];
  routes: SlotRoute[];
  iface: string;
  via: Via;
  /** Whether the next hop is link-local (then every OS needs the interface with it). */
  linkLocal: boolean;
  upstreamLL: string;
  upstreamIP6: string;
  /** The command that renders this output again. */
  command: string;
}

function checkVia(v: unknown): Via {
  if (v === undefined || v === 'll') return 'll';
  if (v === 'global') return 'global';
  throw new ExitnodeError(
    RenderErrors.UPSTREAM_VIA_UNKNOWN,
    `next hop kind ${q(v)} is unknown: use "ll" (GWPubLL, the default) or "global" (GWPubIP6)`,
  );
}

/** Validates everything but the interface name (whose rules belong to each OS) and computes the routes. */
export function buildModel(input: UpstreamInput, router: RouterOs, iface: string): UpstreamModel {
  // The allocation number only names namespaces and links; the upstream's routes do not depend
  // on it, so any valid number serves to reach the plan's per-slot helpers.
  const a = allocation(input.prefix, 1);
  const slots = checkSlots(input.slots);
  const via = checkVia(input.via);
  const upstreamLL = input.upstreamLL === undefined ? DEFAULT_UPSTREAM_LL : checkUpstreamLL(input.upstreamLL);
  const upIP6 = input.upstreamIP6 === undefined ? upstreamIP6(a).toString() : checkUpstreamIP6(a, input.upstreamIP6);
  const routes = slots.map((slot): SlotRoute => {
    const s = planSlot(a, slot);
    const ll = gwPubLL(slot).toString();
    const ip6 = gwPubIP6(a, slot).toString();
    return { slot, prefix: s.prefix, ll, ip6, nextHop: via === 'll' ? ll : ip6 };
  });
  const args = [`exitnode upstream ${a.prefix} --slots ${formatSlotList(slots)} --router ${router} --iface ${iface}`];
  if (via !== 'll') args.push(`--via ${via}`);
  if (input.upstreamLL !== undefined) args.push(`--upstream-ll ${upstreamLL}`);
  if (input.upstreamIP6 !== undefined) args.push(`--upstream-ip6 ${upIP6}`);
  return {
    router,
    allocation: a.prefix.toString(),
    segment: a.prefix.subnet(64, 0).toString(),
    slots,
    routes,
    iface,
    via,
    linkLocal: via === 'll',
    upstreamLL,
    upstreamIP6: upIP6,
    command: args.join(' '),
  };
}

/** The comment block every output starts with, one line per entry, without the comment marker. */
export function header(m: UpstreamModel, what: string): string[] {
  const hop = m.linkLocal
    ? "its gateway's uplink link-local address GWPubLL"
    : "its gateway's uplink address GWPubIP6, on-link in the segment";
  return [
    `exitnode: upstream router configuration, ${what}`,
    `Farm allocation ${m.allocation}; enabled slots (ExitNodes): ${m.slots.join(', ')}.`,
    `On ${m.iface}, the PrefixZero segment ${m.segment}: this router holds ${m.upstreamIP6}/64 and ${m.upstreamLL}/64,`,
    `and routes each slot's /52 to ${hop}.`,
    'These routes are derived from the /48 alone: they do not change when an ExitNode fails over',
    'to another node (the replacement takes over the same gateway addresses).',
    `Rendered by: ${m.command}`,
  ];
}

/** Prefixes each line with a comment marker (and a space unless the line is empty). */
export function comment(marker: string, lines: readonly string[]): string[] {
  return lines.map((l) => (l === '' ? marker : `${marker} ${l}`));
}
