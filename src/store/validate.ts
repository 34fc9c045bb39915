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
  nrId,
  q,
  unusableIPv4,
  unusableIPv6,
  unusableOnSubnet,
  upstreamIP6,
  type Allocation,
} from '../core/index.js';
import { sealedProblem } from '../core/seal.js';
import { StoreErrors } from './errors.js';
import { checkEndpoint } from '../core/view.js';
import type { AllocationRecord, FailoverMode, HeartbeatReport, Ipv4Pool, NodeRecord, VrrpState } from './types.js';

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

export function checkWgKey(v: string, what = 'public key'): string {
  if (typeof v !== 'string' || !WG_KEY_RE.test(v)) {
    throw new ExitnodeError(
      StoreErrors.KEY_SYNTAX,
      `${what} ${q(v)} is not a WireGuard key: it must be 32 bytes in base64 (44 characters ending in "=")`,
    );
  }
  const why = unusableX25519(Buffer.from(v, 'base64'));
  if (why) throw new ExitnodeError(StoreErrors.KEY_INVALID, `${what} ${q(v)} is not usable: ${why}`);
  return v;
}

/** Most candidates a slot may have (allocation option `candidates`). */
export const MAX_CANDIDATES = 8;

export function checkFailover(v: unknown): FailoverMode {
  if (v !== 'lease' && v !== 'vrrp')
    throw new ExitnodeError(
      StoreErrors.FAILOVER_INVALID,
      `failover ${q(v)} is not a failover mode: use "lease" (stage 1) or "vrrp" (stage 2, candidates)`,
    );
  return v;
}

export function checkCandidateCount(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_CANDIDATES)
    throw new ExitnodeError(
      StoreErrors.FAILOVER_INVALID,
      `candidates ${q(v)} must be a whole number from 1 to ${MAX_CANDIDATES} (candidate nodes per slot)`,
    );
  return v;
}

/**
 * The nodes a slot is given: one node, or (stage 2) the ordered candidate list: 1 to the
 * allocation's `candidates` names, no name twice; a 'lease' allocation takes one node.
 */
export function checkCandidateList(v: string | string[], a: AllocationRecord): string[] {
  const list = Array.isArray(v) ? v : [v];
  const max = a.failover === 'vrrp' ? a.candidates : 1;
  if (list.length < 1 || list.length > max)
    throw new ExitnodeError(
      StoreErrors.CANDIDATES_INVALID,
      a.failover === 'vrrp'
        ? `the candidate list ${q(list)} must name 1 to ${max} nodes (allocation ${a.number} keeps ${max} candidates per slot)`
        : `allocation ${a.number} is in failover mode "lease": a slot has one node, not ${q(list)}`,
    );
  const seen = new Set<string>();
  for (const n of list) {
    if (typeof n !== 'string' || !NAME_RE.test(n))
      throw new ExitnodeError(StoreErrors.CANDIDATES_INVALID, `candidate ${q(n)} is not a node name`);
    if (seen.has(n))
      throw new ExitnodeError(
        StoreErrors.CANDIDATES_INVALID,
        `node ${q(n)} appears twice in the candidate list ${q(list)}`,
      );
    seen.add(n);
  }
  return list;
}

/** A sealed ExitPoint key (src/core/seal.ts): canonical base64 of exactly SEALED_BYTES bytes. */
export function checkSealed(v: unknown, what = 'sealed key'): string {
  const why = sealedProblem(v);
  if (why)
    throw new ExitnodeError(
      StoreErrors.SEALED_INVALID,
      `${what} ${q(typeof v === 'string' && v.length > 60 ? `${v.slice(0, 60)}…` : v)} ${why}`,
    );
  return v as string;
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

const VRRP_STATES = new Set(['MASTER', 'BACKUP', 'FAULT', 'STOPPED']);
const int = (v: unknown, min: number, max: number): boolean =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

function reportRule(field: string, v: unknown, rule: string): never {
  throw new ExitnodeError(StoreErrors.REPORT_INVALID, `heartbeat ${field} = ${q(v)} ${rule}`, { field });
}

/** A heartbeat's vrrp[] (stage 2), each value in its type and range. */
export function checkVrrpReport(items: unknown): NonNullable<HeartbeatReport['vrrp']> {
  if (!Array.isArray(items)) reportRule('vrrp', items, 'is not an array');
  return items.map((x: unknown, i) => {
    const f = `vrrp[${i}]`;
    if (typeof x !== 'object' || x === null || Array.isArray(x)) reportRule(f, x, 'is not an object');
    const o = x as Record<string, unknown>;
    if (!int(o.allocation, 1, 65535))
      reportRule(`${f}.allocation`, o.allocation, 'is not a whole number from 1 to 65535');
    if (!int(o.slot, 1, 15)) reportRule(`${f}.slot`, o.slot, 'is not a whole number from 1 to 15');
    if (typeof o.state !== 'string' || !VRRP_STATES.has(o.state))
      reportRule(`${f}.state`, o.state, 'is not MASTER, BACKUP, FAULT or STOPPED');
    if (!int(o.priority, 0, 255)) reportRule(`${f}.priority`, o.priority, 'is not a whole number from 0 to 255');
    if (!int(o.since, 0, Number.MAX_SAFE_INTEGER))
      reportRule(`${f}.since`, o.since, 'is not a time in milliseconds since the epoch');
    return {
      allocation: o.allocation as number,
      slot: o.slot as number,
      state: o.state as VrrpState,
      priority: o.priority as number,
      since: o.since as number,
    };
  });
}

/** A heartbeat's endpoints[] (stage 2): network id, NR id, endpoint in canonical form. */
export function checkEndpointsReport(items: unknown): { network: string; nr: number; endpoint: string }[] {
  if (!Array.isArray(items)) reportRule('endpoints', items, 'is not an array');
  return items.map((x: unknown, i) => {
    const f = `endpoints[${i}]`;
    if (typeof x !== 'object' || x === null || Array.isArray(x)) reportRule(f, x, 'is not an object');
    const o = x as Record<string, unknown>;
    if (typeof o.network !== 'string' || !NETWORK_ID_RE.test(o.network))
      reportRule(`${f}.network`, o.network, 'is not a network id (tn- and 12 hex digits)');
    let nr: number;
    try {
      if (typeof o.nr !== 'string') throw new Error('not text');
      nr = nrId(o.nr);
    } catch {
      reportRule(`${f}.nr`, o.nr, 'is not an NR id (4 hex digits, 1000-feff)');
    }
    let endpoint: string;
    try {
      endpoint = checkEndpoint(o.endpoint, `${f}.endpoint`);
    } catch {
      reportRule(`${f}.endpoint`, o.endpoint, 'is not an endpoint (IPv4:port or [IPv6]:port, port 1-65535)');
    }
    return { network: o.network, nr, endpoint };
  });
}
