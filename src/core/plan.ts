// The addressing plan of DESIGN.md section 2: every name, prefix, address, port and route of a
// slot and of an NR, computed from (P, A, E, S) and never stored. The JSON shape of `Plan` is the
// one of `plan` in test/fixtures/vectors.json (the specification's worked cases).

import { CoreErrors, ExitnodeError, q } from './errors.js';
import { Ip4, Ip4Prefix, Ip6, Ip6Prefix } from './ip.js';
import {
  bridgeName,
  epPubName,
  gatewayNamespace,
  gatewayUplinkName,
  nrNamespace,
  toLinkName,
  vethName,
  wgLinkName,
} from './ownership.js';

export const MAX_SLOT = 15;
export const MAX_ALLOCATION = 65535;
/** Ids 0x0000-0x0fff are PrefixZero; 0xff00-0xffff are reserved (10.255.x.0/24 would overlap 10.255.0.0/16). */
export const FIRST_NR_ID = 0x1000;
export const FIRST_RESERVED_ID = 0xff00;
/** Every to- link of a gateway carries this address (the ExitPoints' IPv4 default gateway). */
export const GW_TO_EP_IP4 = '10.1.0.1';
/** The WireGuard routing range: every NR's wg- address lies in it (DESIGN.md 2.3 item 4: /16, not /24). */
export const WG_IP4_RANGE = '10.255.0.0/16';
/** The upstream router's link-local address on PrefixZero unless the farmer's differs. */
export const DEFAULT_UPSTREAM_LL = 'fe80::1';

const FE80 = 0xfe80n << 112n;

export interface Allocation {
  readonly prefix: Ip6Prefix;
  readonly number: number;
}

/** Validates a farm allocation: exactly a /48 with no host bits, and a number 1..65535. */
export function allocation(prefix: string | Ip6Prefix, number: number | string): Allocation {
  const p =
    typeof prefix === 'string' ? parseAllocationPrefix(prefix) : checkAllocationPrefix(prefix, prefix.toString());
  return { prefix: p, number: checkAllocationNumber(number) };
}

export function parseAllocationPrefix(text: string): Ip6Prefix {
  const slash = text.indexOf('/');
  // The /48 rule is the one the farmer most needs to hear, so check the length before the host bits.
  if (
    slash > 0 &&
    Ip6.tryParse(text.slice(0, slash)) &&
    text.slice(slash + 1) !== '48' &&
    /^\d+$/.test(text.slice(slash + 1))
  ) {
    throw new ExitnodeError(
      CoreErrors.PREFIX_NOT_48,
      `${q(text)} is a /${text.slice(slash + 1)}; a farm allocation must be exactly a /48`,
    );
  }
  return checkAllocationPrefix(Ip6Prefix.parse(text), text);
}

function checkAllocationPrefix(p: Ip6Prefix, text: string): Ip6Prefix {
  if (p.length !== 48) {
    throw new ExitnodeError(
      CoreErrors.PREFIX_NOT_48,
      `${q(text)} is a /${p.length}; a farm allocation must be exactly a /48`,
    );
  }
  // The plan's next hops are link-local: a link-local or multicast /48 could never be routed.
  const top = p.network.value >> 112n;
  if (top >> 6n === 0x3fan || top >> 8n === 0xffn) {
    const what = top >> 8n === 0xffn ? 'multicast (ff00::/8)' : 'link-local (fe80::/10)';
    throw new ExitnodeError(
      CoreErrors.PREFIX_NOT_GLOBAL,
      `${q(text)} is ${what}; a farm allocation must be a routable unicast /48`,
    );
  }
  return p;
}

function wholeNumber(v: number | string): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) ? v : undefined;
  return /^(0|[1-9][0-9]{0,9})$/.test(v) ? Number(v) : undefined;
}

export function checkAllocationNumber(v: number | string): number {
  const n = wholeNumber(v);
  if (n === undefined || n < 1 || n > MAX_ALLOCATION) {
    throw new ExitnodeError(
      CoreErrors.ALLOCATION_RANGE,
      `allocation number ${q(v)} is out of range: it must be a whole number from 1 to ${MAX_ALLOCATION}`,
    );
  }
  return n;
}

export function checkSlot(v: number | string): number {
  const n = wholeNumber(v);
  if (n === 0) {
    throw new ExitnodeError(
      CoreErrors.SLOT_PREFIXZERO,
      `slot 0 is PrefixZero (ids 0000-0fff, the upstream segment) and never holds NRs; slots are 1 to ${MAX_SLOT}`,
    );
  }
  if (n === undefined || n < 1 || n > MAX_SLOT) {
    throw new ExitnodeError(
      CoreErrors.SLOT_RANGE,
      `slot ${q(v)} is out of range: slots (ExitNode numbers) are 1 to ${MAX_SLOT}`,
    );
  }
  return n;
}

/** Parses an NR id written as 1-4 hex digits ("1abc"); checks syntax only. */
export function parseNrIdText(text: string): number {
  if (!/^[0-9a-fA-F]+$/.test(text)) {
    throw new ExitnodeError(
      CoreErrors.NR_ID_SYNTAX,
      `NR id ${q(text)} is not hexadecimal: an NR id is 1 to 4 hex digits such as "1abc"`,
    );
  }
  if (text.length > 4) {
    throw new ExitnodeError(
      CoreErrors.NR_ID_SYNTAX,
      `NR id ${q(text)} is not 16 bits: an NR id is at most 4 hex digits (0000-ffff)`,
    );
  }
  return parseInt(text, 16);
}

/** Checks that `id` may be an NR (and, given a slot, that it lies in it); returns it. */
export function checkNrId(id: number, slot?: number): number {
  const h = nrIdText(id);
  if (id < FIRST_NR_ID) {
    throw new ExitnodeError(
      CoreErrors.NR_ID_PREFIXZERO,
      `NR id ${q(h)} is in PrefixZero (0000-0fff), which never holds NRs`,
    );
  }
  if (id >= FIRST_RESERVED_ID) {
    throw new ExitnodeError(
      CoreErrors.NR_ID_RESERVED,
      `NR id ${q(h)} is reserved: ids ff00-ffff are never NRs, their IPv4 /24 (10.255.x.0/24) would overlap the WireGuard range ${WG_IP4_RANGE}`,
    );
  }
  if (slot !== undefined && id >> 12 !== slot) {
    const lo = (slot << 12).toString(16);
    const hi = (slot === MAX_SLOT ? FIRST_RESERVED_ID - 1 : (slot << 12) | 0xfff).toString(16);
    throw new ExitnodeError(
      CoreErrors.NR_ID_OUTSIDE_SLOT,
      `NR id ${q(h)} is outside slot ${slot}: the ids of slot ${slot} are ${lo}-${hi} (their first hex digit is the slot)`,
    );
  }
  return id;
}

/** Parses and checks an NR id in one step. */
export function nrId(text: string | number, slot?: number): number {
  const id = typeof text === 'number' ? text : parseNrIdText(text);
  if (typeof text === 'number' && (!Number.isInteger(text) || text < 0 || text > 0xffff)) {
    throw new ExitnodeError(CoreErrors.NR_ID_SYNTAX, `NR id ${q(text)} is not 16 bits`);
  }
  return checkNrId(id, slot);
}

export function nrIdText(id: number): string {
  return id.toString(16).padStart(4, '0');
}

export function slotOfNr(id: number): number {
  return id >> 12;
}

/** The first and last allocatable id of a slot, and how many there are (4096, or 3840 for slot 15). */
export function slotIdRange(slot: number): { first: number; last: number; count: number } {
  const first = slot << 12;
  const last = slot === MAX_SLOT ? FIRST_RESERVED_ID - 1 : first | 0xfff;
  return { first, last, count: last - first + 1 };
}

export interface SlotPlan {
  number: number;
  prefix: string;
  Namespace: string;
  GWPubName: string;
  GWPubLL: string;
  GWPubIP6: string;
  upstreamRoute: string;
}

export interface NrPlan {
  id: string;
  prefix: string;
  Namespace: string;
  GWtoEPName: string;
  GWtoEPLL: string;
  GWtoEPIP4: string;
  EPPubName: string;
  EPPubLL: string;
  EPPubIP4R: string;
  WGName: string;
  WGLL: string;
  WGIP4RT: string;
  WGPort: number;
  NRLocalName: string;
  NRLocalIP6: string;
  NRLocalIP4: string;
  BridgeName: string;
}

export interface Plan {
  allocation: { prefix: string; number: number };
  slot: SlotPlan;
  nr?: NrPlan;
}

/** GWPubLL without its length: fe80::(E<<12):0:0:1, the upstream route's next hop. */
export function gwPubLL(slot: number): Ip6 {
  return new Ip6(FE80 | (BigInt(slot << 12) << 48n) | 1n);
}

/** GWPubIP6 without its length: P:0:(E<<12):0:0:1, in PrefixZero's first /64. */
export function gwPubIP6(a: Allocation, slot: number): Ip6 {
  return new Ip6(a.prefix.network.value | (BigInt(slot << 12) << 48n) | 1n);
}

export function slotPrefix(a: Allocation, slot: number): Ip6Prefix {
  return a.prefix.subnet(52, slot);
}

/** The upstream router's global address on PrefixZero: P::1 (with /64 on its interface). */
export function upstreamIP6(a: Allocation): Ip6 {
  return a.prefix.at(1);
}

export function planSlot(a: Allocation, slot: number): SlotPlan {
  checkSlot(slot);
  const A = a.number;
  const ll = gwPubLL(slot).toString();
  const prefix = slotPrefix(a, slot).toString();
  return {
    number: slot,
    prefix,
    Namespace: gatewayNamespace('', slot, A),
    GWPubName: gatewayUplinkName(slot, A),
    GWPubLL: `${ll}/64`,
    GWPubIP6: `${gwPubIP6(a, slot)}/64`,
    upstreamRoute: `${prefix} via ${ll}`,
  };
}

/** The /64 of an NR: P:h::/64. */
export function nrPrefix(a: Allocation, id: number): Ip6Prefix {
  return a.prefix.subnet(64, id);
}

/** The IPv4 /24 of an NR: 10.h0.h1.0/24. */
export function nrPrefix4(id: number): Ip4Prefix {
  return new Ip4Prefix(((10 << 24) | (id << 8)) >>> 0, 24);
}

/** EPPubIP4R / WGIP4RT without length: 10.255.h0.h1. */
export function nrRouting4(id: number): Ip4 {
  return new Ip4(((10 << 24) | (255 << 16) | id) >>> 0);
}

/** GWtoEPLL without length: fe80::1:h (the gateway end of an ExitPoint's veth). */
export function gwToEpLL(id: number): Ip6 {
  return new Ip6(FE80 | (1n << 16n) | BigInt(id));
}

/** EPPubLL without length: fe80::h:1 (the ExitPoint end; the gateway's next hop for the TN). */
export function epPubLL(id: number): Ip6 {
  return new Ip6(FE80 | (BigInt(id) << 16n) | 1n);
}

/** WGLL without length: fe80::h. */
export function wgLL(id: number): Ip6 {
  return new Ip6(FE80 | BigInt(id));
}

/** NRLocalIP6 without length: P:h::1. */
export function nrLocalIP6(a: Allocation, id: number): Ip6 {
  return nrPrefix(a, id).at(1);
}

/** NRLocalIP4 without length: 10.h0.h1.1. */
export function nrLocalIP4(id: number): Ip4 {
  return nrPrefix4(id).at(1);
}

/** WireGuard allowed IPs that name one NR as a peer (DESIGN.md section 3). */
export function wgAllowedIPs(a: Allocation, id: number): string[] {
  return [nrPrefix(a, id).toString(), nrPrefix4(id).toString(), `${nrRouting4(id)}/32`, `${wgLL(id)}/128`];
}

export function planNr(a: Allocation, id: number): NrPlan {
  checkNrId(id);
  const h = nrIdText(id);
  const A = a.number;
  const prefix = nrPrefix(a, id);
  const r4 = nrRouting4(id).toString();
  return {
    id: h,
    prefix: prefix.toString(),
    Namespace: nrNamespace('', h, A),
    GWtoEPName: toLinkName(h, A),
    GWtoEPLL: `${gwToEpLL(id)}/64`,
    GWtoEPIP4: `${GW_TO_EP_IP4}/32`,
    EPPubName: epPubName(h, A),
    EPPubLL: `${epPubLL(id)}/64`,
    EPPubIP4R: `${r4}/32`,
    WGName: wgLinkName(h, A),
    WGLL: `${wgLL(id)}/64`,
    WGIP4RT: `${r4}/16`,
    WGPort: id,
    NRLocalName: vethName(h, A),
    NRLocalIP6: `${prefix.at(1)}/64`,
    NRLocalIP4: `${nrLocalIP4(id)}/24`,
    BridgeName: bridgeName(h, A),
  };
}

/**
 * The plan for a slot, and for an NR when one is given. With an NR and no slot, the slot follows
 * from the id; with both, the id must lie in the slot.
 */
export function plan(a: Allocation, opts: { slot?: number | string; nr?: number | string }): Plan {
  let slot = opts.slot === undefined ? undefined : checkSlot(opts.slot);
  let id: number | undefined;
  if (opts.nr !== undefined) {
    id = nrId(opts.nr, slot);
    slot ??= slotOfNr(id);
  }
  if (slot === undefined) {
    throw new ExitnodeError(CoreErrors.USAGE, 'a plan needs a slot (1-15) or an NR id');
  }
  const out: Plan = {
    allocation: { prefix: a.prefix.toString(), number: a.number },
    slot: planSlot(a, slot),
  };
  if (id !== undefined) out.nr = planNr(a, id);
  return out;
}
