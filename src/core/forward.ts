// What tenants run services with (issue 13): IPv4 port forwards through the gateway (DNAT from
// GWPubIP4:port to an address of one of the network's NRs) and the IPv6 inbound policy of a
// network (open, or closed with allow rules). Pure rules and the one text of each nftables
// element, which the compiler writes and the kernel reader rebuilds from `nft -j`.

import { ExitnodeError, q } from './errors.js';
import { ForwardErrors } from './forward/errors.js';

export { ForwardErrors };
import { Ip4, Ip6, Ip6Prefix } from './ip.js';
import { nrPrefix4, parseNrIdText, planNr, planSlot, slotIdRange, slotOfNr, type Allocation } from './plan.js';
import { gatewayNamespace, NFT_MAP_FWD4, NFT_NAT, toLinkName } from './ownership.js';
import type { Explanation } from './explain.js';

export type Protocol = 'tcp' | 'udp';

/** A forward as nodes receive it: GWPubIP4:port (protocol) → target:targetPort. */
export interface Forward {
  protocol: Protocol;
  port: number;
  target: string;
  targetPort: number;
}

/** One allow rule of a closed inbound policy: protocol, ports from-to, optional source prefix. */
export interface InboundRule {
  protocol: Protocol;
  from: number;
  to: number;
  /** Canonical IPv6 prefix; absent: any source. */
  source?: string;
}

export type InboundPolicyName = 'open' | 'closed';
export const INBOUND_POLICIES: readonly InboundPolicyName[] = ['open', 'closed'];

/** Automatic public ports are taken from here, lowest free first. */
export const AUTO_PORT_FIRST = 1024;

function bad(message: string): never {
  throw new ExitnodeError(ForwardErrors.FORWARD_INVALID, message);
}

export function checkProtocol(v: unknown, what = 'protocol'): Protocol {
  if (v !== 'tcp' && v !== 'udp') bad(`${what} ${q(v)} must be tcp or udp`);
  return v;
}

export function checkPort(v: unknown, what = 'port'): number {
  const n = typeof v === 'string' && /^[0-9]{1,5}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535)
    bad(`${what} ${q(v)} must be a whole number from 1 to 65535`);
  return n;
}

/** "80" or "8000-8100" (from ≤ to), or a number. */
export function parsePortRange(v: unknown): { from: number; to: number } {
  if (typeof v === 'number') {
    const p = checkPort(v);
    return { from: p, to: p };
  }
  const m = typeof v === 'string' ? /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(v) : null;
  if (!m) bad(`ports ${q(v)} must be a port (80) or a range (8000-8100) of ports 1-65535`);
  const from = checkPort(m[1], 'port');
  const to = m[2] === undefined ? from : checkPort(m[2], 'port');
  if (to < from) bad(`ports ${q(v)}: the range ends before it starts`);
  return { from, to };
}

export function portRangeText(r: { from: number; to: number }): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`;
}

/** An IPv6 source prefix (an address alone is a /128), canonical. */
export function checkSourcePrefix(v: unknown): string {
  if (typeof v !== 'string') bad(`source ${q(v)} must be an IPv6 prefix (2001:db8::/32) or address`);
  const text = v.includes('/') ? v : `${v}/128`;
  try {
    return Ip6Prefix.parse(text).toString();
  } catch (e) {
    if (e instanceof ExitnodeError) bad(`source ${q(v)}: ${e.message}`);
    throw e;
  }
}

/**
 * The target of a forward: an IPv4 address inside the /24 of one of the network's NRs (NR ids as
 * text), not its network address, NRLocalIP4 (.1) or broadcast (.255). Returns it canonical.
 */
export function checkForwardTarget(v: unknown, nrs: readonly string[]): string {
  const a = typeof v === 'string' ? Ip4.tryParse(v) : undefined;
  if (!a) bad(`target ${q(v)} must be an IPv4 address of a workload of the network`);
  for (const id of nrs) {
    const p = nrPrefix4(parseNrIdText(id));
    if (!p.contains(a)) continue;
    const host = a.value - p.network.value;
    if (host < 2 || host > 254)
      bad(`target ${q(v)} must be a workload address of NR ${id} (${p.at(2)}-${p.at(254)}): .0, .1 and .255 are not`);
    return a.toString();
  }
  const list = nrs.map((id) => nrPrefix4(parseNrIdText(id)).toString()).join(', ');
  bad(`target ${q(v)} is in no NR of the network (its IPv4 /24s: ${list || 'none'})`);
}

/** Ports the gateway of SLOT uses itself on GWPubIP4, which no forward may take. */
export function reservedPorts(slot: number): { protocol: Protocol; from: number; to: number; why: string }[] {
  const r = slotIdRange(slot);
  return [
    { protocol: 'udp', from: r.first, to: r.first + 0xfff, why: `the WireGuard ports of slot ${slot}'s ExitPoints` },
    { protocol: 'tcp', from: 179, to: 179, why: 'BGP' },
    { protocol: 'udp', from: 3784, to: 3785, why: 'BFD' },
    { protocol: 'udp', from: 4784, to: 4784, why: 'BFD (multihop)' },
  ];
}

/** Refuses a reserved public port with a message that names it and why. */
export function checkNotReserved(slot: number, protocol: Protocol, port: number): void {
  for (const r of reservedPorts(slot))
    if (r.protocol === protocol && port >= r.from && port <= r.to)
      throw new ExitnodeError(
        ForwardErrors.FORWARD_PORT_RESERVED,
        `${protocol} port ${port} is reserved on slot ${slot}'s gateway (${portRangeText(r)}: ${r.why})`,
      );
}

export function isReservedPort(slot: number, protocol: Protocol, port: number): boolean {
  return reservedPorts(slot).some((r) => r.protocol === protocol && port >= r.from && port <= r.to);
}

/** Whether two rules match a common packet (an interval set refuses overlapping elements). */
export function rulesOverlap(a: InboundRule, b: InboundRule): boolean {
  if (a.protocol !== b.protocol || a.to < b.from || b.to < a.from) return false;
  const x = Ip6Prefix.parse(a.source ?? '::/0');
  const y = Ip6Prefix.parse(b.source ?? '::/0');
  return x.contains(y) || y.contains(x);
}

/** The rules without those that overlap an earlier one. */
export function disjointRules(rules: readonly InboundRule[]): InboundRule[] {
  const out: InboundRule[] = [];
  for (const r of rules) if (!out.some((o) => rulesOverlap(o, r))) out.push(r);
  return out;
}

// ---- nftables element texts (src/compile writes them, src/kernel reads them back) ----

/** An element of the DNAT map: "tcp . 8080 : 10.16.1.100 . 80". */
export function forwardElement(f: Forward): string {
  return `${f.protocol} . ${f.port} : ${f.target} . ${f.targetPort}`;
}

/** An element of the closed-networks set: the NR /64's network address. */
export function closedElement(prefix64: string): string {
  return prefix64.slice(0, prefix64.lastIndexOf('/'));
}

/** A prefix as nft prints it in an interval set: a /128 as the address alone. */
export function nftPrefixText(prefix: string): string {
  return prefix.endsWith('/128') ? prefix.slice(0, -4) : prefix;
}

/** An element of the allow set: "NR/64 . tcp . 80 . SOURCE" (ports "8000-8100", source ::/0 for any). */
export function allowElement(prefix64: string, r: InboundRule): string {
  return `${prefix64} . ${r.protocol} . ${portRangeText(r)} . ${nftPrefixText(r.source ?? '::/0')}`;
}

/** Canonical IPv6 text of an address nft printed. */
export function canonicalNft6(addr: string): string {
  return Ip6.parse(addr).toString();
}

/**
 * explain for GWPubIP4:PORT of a forward TNoDB holds: the DNAT element in the slot's gateway, the
 * ExitPoint it is routed through and the NR whose workload answers.
 */
export function explainForward(
  a: Allocation,
  f: Forward & { slot: number; address: string; network: string; exit: string },
): Explanation {
  const id = Ip4.parse(f.target).value;
  const nr = (id >>> 8) & 0xffff;
  const n = planNr(a, nr);
  const ep = planNr(a, parseNrIdText(f.exit));
  const s = planSlot(a, f.slot);
  const gw = gatewayNamespace('', f.slot, a.number);
  const to = toLinkName(ep.id, a.number);
  return {
    input: `${f.address}:${f.port}`,
    kind: 'forward',
    allocation: { prefix: a.prefix.toString(), number: a.number },
    slot: f.slot,
    nr: n.id,
    role: `${f.protocol} port ${f.port} of GWPubIP4 ${f.address} (slot ${f.slot}): forwarded to ${f.target}:${f.targetPort}, a workload of NR ${n.id} in network ${f.network}`,
    carriers: [
      {
        namespace: gw,
        interface: s.GWPubName,
        how: 'dnat',
        detail: `${NFT_NAT.family} ${NFT_NAT.name} map ${NFT_MAP_FWD4}: ${forwardElement(f)}`,
      },
      { namespace: n.Namespace, interface: n.NRLocalName, how: 'on-link', detail: n.NRLocalIP4 },
    ],
    path: [
      {
        at: `gateway ${gw}`,
        route: `${f.protocol} dport ${f.port} dnat to ${f.target}:${f.targetPort}; ${nrPrefix4(nr)} via ${ep.EPPubIP4R.split('/')[0]} dev ${to} onlink`,
        note: `the network's ExitPoint is NR ${ep.id}; replies return through this gateway (conntrack undoes the DNAT)`,
      },
      ...(slotOfNr(nr) === f.slot && nr !== parseNrIdText(f.exit)
        ? [
            {
              at: `ExitPoint ${ep.Namespace}`,
              route: `${nrPrefix4(nr)} dev ${ep.WGName}`,
              note: `WireGuard to NR ${n.id}`,
            },
          ]
        : []),
      {
        at: `NR ${n.Namespace}`,
        route: `${f.target} on-link dev ${n.NRLocalName}`,
        note: `the workload on ${n.BridgeName} sees the client's own address`,
      },
    ],
    unknown: [],
  };
}
