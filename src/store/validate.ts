// The store's input rules, checked before any SQL: names, WireGuard keys, an allocation's IPv4
// pool and upstream addresses, and whether a node may take a slot. The database enforces
// uniqueness and the per-slot decisions itself; these are the rules that need no state.
import {
  DEFAULT_UPSTREAM_LL,
  ExitnodeError,
  Ip4,
  Ip4Prefix,
  Ip6,
  checkUpstreamIP6,
  checkUpstreamLL,
  isExitnodeError,
  q,
  upstreamIP6,
  type Allocation,
} from '../core/index.js';
import { StoreErrors } from './errors.js';
import type { AllocationRecord, Ipv4Pool, NodeRecord } from './types.js';

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const NETWORK_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const NETWORK_ID_RE = /^tn-[0-9a-f]{12}$/;
const WG_KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export function checkName(kind: string, v: string, re = NAME_RE): string {
  if (typeof v !== 'string' || !re.test(v)) {
    const rule =
      re === NAME_RE
        ? 'lowercase letters, digits, ".", "_" and "-", starting with a letter or digit, at most 63 characters'
        : 'letters, digits, ".", "_" and "-", starting with a letter or digit, at most 63 characters';
    throw new ExitnodeError(StoreErrors.NAME_SYNTAX, `${kind} name ${q(v)} is not allowed: use ${rule}`);
  }
  return v;
}

/** A network's name: like the other names, uppercase letters allowed. */
export function checkNetworkName(v: string): string {
  return checkName('network', v, NETWORK_NAME_RE);
}

/** Whether `id` has the form of a network id (tn- and 12 hex digits); others name no network. */
export function isNetworkId(id: string): boolean {
  return NETWORK_ID_RE.test(id);
}

export function checkWgKey(v: string): string {
  if (typeof v !== 'string' || !WG_KEY_RE.test(v)) {
    throw new ExitnodeError(
      StoreErrors.KEY_SYNTAX,
      `public key ${q(v)} is not a WireGuard key: it must be 32 bytes in base64 (44 characters ending in "=")`,
    );
  }
  return v;
}

export function checkPool(p: Ipv4Pool): Ipv4Pool {
  if (!Array.isArray(p.addresses) || p.addresses.length > 15)
    throw new ExitnodeError(
      StoreErrors.IPV4_POOL,
      `the IPv4 pool lists ${q(p.addresses?.length)} addresses; at most 15 (one per slot, addresses[E-1] serves slot E)`,
    );
  if (!Number.isInteger(p.prefixLength) || p.prefixLength < 1 || p.prefixLength > 32)
    throw new ExitnodeError(
      StoreErrors.IPV4_POOL,
      `IPv4 prefixLength ${q(p.prefixLength)} must be a whole number from 1 to 32`,
    );
  const gw = Ip4.parse(p.gateway);
  const net = new Ip4Prefix(
    p.prefixLength === 32 ? gw.value : (gw.value & ~(2 ** (32 - p.prefixLength) - 1)) >>> 0,
    p.prefixLength,
  );
  const addresses = p.addresses.map((a) => {
    const ip = Ip4.parse(a);
    if (p.prefixLength < 32 && !net.contains(ip))
      throw new ExitnodeError(
        StoreErrors.IPV4_POOL,
        `IPv4 address ${q(a)} is not in the gateway's subnet ${net.toString()}`,
      );
    if (ip.equals(gw)) throw new ExitnodeError(StoreErrors.IPV4_POOL, `IPv4 address ${q(a)} is the gateway itself`);
    return ip.toString();
  });
  if (new Set(addresses).size !== addresses.length)
    throw new ExitnodeError(StoreErrors.IPV4_POOL, `the IPv4 pool lists an address twice: ${q(p.addresses)}`);
  return { addresses, prefixLength: p.prefixLength, gateway: gw.toString() };
}

/**
 * The upstream's addresses an allocation is registered with, defaults filled in. Core's rules
 * (fe80::/64 and P::/64, not a gateway's address), which the renderer applies too: what is stored
 * here must render at GET /v1/allocations/{n}/upstream.
 */
export function checkUpstream(plan: Allocation, upstream?: { ll?: string; ip6?: string }): { ll: Ip6; ip6: Ip6 } {
  const ll = Ip6.parse(
    upstream?.ll !== undefined ? upstreamRule(() => checkUpstreamLL(String(upstream.ll))) : DEFAULT_UPSTREAM_LL,
  );
  const ip6 =
    upstream?.ip6 !== undefined
      ? Ip6.parse(upstreamRule(() => checkUpstreamIP6(plan, String(upstream.ip6))))
      : upstreamIP6(plan);
  return { ll, ip6 };
}

/** Core's check, its message kept, under the store's code. */
function upstreamRule(check: () => string): string {
  try {
    return check();
  } catch (e) {
    if (isExitnodeError(e)) throw new ExitnodeError(StoreErrors.UPSTREAM_ADDRESS, e.message);
    throw e;
  }
}

/** A slot of allocation `a` may go to node `n` (named `node`): it exists, is in the farm and exit-capable. */
export function checkSlotTarget(
  node: string,
  n: NodeRecord | undefined,
  allocation: number,
  a: AllocationRecord,
): NodeRecord {
  if (!n) throw new ExitnodeError(StoreErrors.NODE_UNKNOWN, `node ${q(node)} does not exist`);
  if (n.farm !== a.farm)
    throw new ExitnodeError(
      StoreErrors.NODE_OTHER_FARM,
      `node ${q(node)} belongs to farm ${q(n.farm)}, allocation ${allocation} to farm ${q(a.farm)}`,
    );
  if (!n.exitCapable)
    throw new ExitnodeError(
      StoreErrors.NODE_NOT_EXIT_CAPABLE,
      `node ${q(node)} is not exit-capable; register it with exitCapable: true to give it a slot`,
    );
  return n;
}
