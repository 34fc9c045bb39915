// The store's input rules, checked before any SQL: names, WireGuard keys, an allocation's IPv4
// pool and upstream addresses, and whether a node may take a slot. The database enforces
// uniqueness and the per-slot decisions itself; these are the rules that need no state.
import { createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
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
  unusableIPv4,
  unusableIPv6,
  unusableOnSubnet,
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
  const why = unusableX25519(Buffer.from(v, 'base64'));
  if (why) throw new ExitnodeError(StoreErrors.KEY_INVALID, `public key ${q(v)} is not usable: ${why}`);
  return v;
}

/** A private key of this process, only to try a DH with a published key (never sent or kept). */
let probe: KeyObject | undefined;

/**
 * Why 32 bytes are not a public key a WireGuard peer can use, or undefined. Refused: encodings
 * that are not canonical (the top bit set, or a value >= p = 2^255 - 19: another spelling of a
 * smaller key, which would pass the "one key per NR" rule), and the low-order points (all zeros
 * and the others): X25519 with them gives the all-zero secret, which OpenSSL refuses to derive.
 */
export function unusableX25519(raw: Buffer): string | undefined {
  if (raw.length !== 32) return `it is ${raw.length} bytes, not 32`;
  if (raw[31]! & 0x80) return 'its top bit is set (not a canonical X25519 encoding)';
  if (raw[31] === 0x7f && raw[0]! >= 0xed && raw.subarray(1, 31).every((b) => b === 0xff))
    return 'its value is not below 2^255 - 19 (not a canonical X25519 encoding)';
  if (raw.every((b) => b === 0)) return 'it is all zeros (a low-order point: every peer would share the secret 0)';
  probe ??= generateKeyPairSync('x25519').privateKey;
  try {
    const publicKey = createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') },
      format: 'jwk',
    });
    if (diffieHellman({ privateKey: probe, publicKey }).every((b) => b === 0)) throw new Error('zero secret');
  } catch {
    return 'it is a low-order point of Curve25519 (a Diffie-Hellman with it gives the secret 0)';
  }
  return undefined;
}

/** A node's public address: a unicast address others can reach, in its canonical text. */
export function checkNodeAddress(family: 4 | 6, text: string): string {
  const ip = family === 4 ? Ip4.parse(text) : Ip6.parse(text);
  const why = ip instanceof Ip4 ? unusableIPv4(ip) : unusableIPv6(ip);
  if (why)
    throw new ExitnodeError(
      StoreErrors.NODE_ADDRESS,
      `public IPv${family} ${q(text)} is ${why}; a node's public address must be a unicast address other nodes can reach`,
    );
  return ip.toString();
}

/** The smallest pool subnet accepted: larger ones (a /1, a /8) are mistakes, not a gateway's segment. */
export const MIN_POOL_PREFIX = 16;

export function checkPool(p: Ipv4Pool): Ipv4Pool {
  if (!Array.isArray(p.addresses) || p.addresses.length > 15)
    throw new ExitnodeError(
      StoreErrors.IPV4_POOL,
      `the IPv4 pool lists ${q(p.addresses?.length)} addresses; at most 15 (one per slot, addresses[E-1] serves slot E)`,
    );
  if (!Number.isInteger(p.prefixLength) || p.prefixLength < MIN_POOL_PREFIX || p.prefixLength > 32)
    throw new ExitnodeError(
      StoreErrors.IPV4_POOL,
      `IPv4 prefixLength ${q(p.prefixLength)} must be a whole number from ${MIN_POOL_PREFIX} to 32: it is the length of the gateway's on-link subnet`,
    );
  const gw = Ip4.parse(p.gateway);
  const net = new Ip4Prefix(
    p.prefixLength === 32 ? gw.value : (gw.value & ~(2 ** (32 - p.prefixLength) - 1)) >>> 0,
    p.prefixLength,
  );
  const usable = (what: string, text: string, ip: Ip4): void => {
    const why = unusableIPv4(ip) ?? unusableOnSubnet(ip, net);
    if (why)
      throw new ExitnodeError(
        StoreErrors.IPV4_POOL,
        `${what} ${q(text)} is ${why}; the pool's addresses and gateway must be unicast host addresses`,
      );
  };
  usable('IPv4 gateway', p.gateway, gw);
  const addresses = p.addresses.map((a) => {
    const ip = Ip4.parse(a);
    if (p.prefixLength < 32 && !net.contains(ip))
      throw new ExitnodeError(
        StoreErrors.IPV4_POOL,
        `IPv4 address ${q(a)} is not in the gateway's subnet ${net.toString()}`,
      );
    if (ip.equals(gw)) throw new ExitnodeError(StoreErrors.IPV4_POOL, `IPv4 address ${q(a)} is the gateway itself`);
    usable('IPv4 address', a, ip);
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

/**
 * A slot of allocation `a` may go to node `n` (named `node`): it exists, is in the farm and
 * exit-capable. A node of another farm gets the answer of a node that does not exist: a farm
 * learns nothing about other farms' nodes.
 */
export function checkSlotTarget(
  node: string,
  n: NodeRecord | undefined,
  allocation: number,
  a: AllocationRecord,
): NodeRecord {
  if (!n || n.farm !== a.farm)
    throw new ExitnodeError(
      StoreErrors.NODE_UNKNOWN,
      `node ${q(node)} is not a node of farm ${q(a.farm)}, which holds allocation ${allocation}`,
    );
  if (!n.exitCapable)
    throw new ExitnodeError(
      StoreErrors.NODE_NOT_EXIT_CAPABLE,
      `node ${q(node)} is not exit-capable; register it with exitCapable: true to give it a slot`,
    );
  return n;
}
