// Everything the node agent owns, in one place (STYLE.md, after Calico felix): the name patterns of
// its namespaces and links, the route protocol number it stamps on every route, the nftables
// tables it keeps. The agent observes the kernel, keeps only what these rules recognise as ours,
// and never lists, changes or deletes anything else.

/**
 * The route protocol number of every route the agent installs (`ip route … proto 77`).
 * 77 is unassigned in /etc/iproute2/rt_protos and in the kernel's RTPROT_* list; the reference
 * data plane uses it too.
 */
export const ROUTE_PROTO = 77;

/** The nftables tables the agent owns in a gateway namespace; it never runs `flush ruleset`. */
export const NFT_NAT = { family: 'ip', name: 'exitnode-nat' } as const;
export const NFT_FILTER = { family: 'inet', name: 'exitnode-filter' } as const;
export const NFT_TABLES = [NFT_NAT, NFT_FILTER] as const;
/**
 * The named sets of source-address validation (DESIGN.md section 3): interface . network
 * address, each set holding prefixes of one length, which the rules mask the source to. Exact
 * (hash) sets rather than one interval set per family: with 8000 elements the kernel deletes
 * an element from an interval set in ~28 ms and from a hash set in ~15 ms, and nft lists them
 * faster; the prefix lengths are fixed by the address plan (NR /64, NR /24, routing /32).
 */
export const NFT_SET_SRC6 = 'src6';
export const NFT_SET_SRC4 = 'src4';
export const NFT_SET_SRC4_HOST = 'src4h';
/** Set name → the length of every prefix it holds. */
export const NFT_SET_PREFIX_LEN: Readonly<Record<string, number>> = {
  [NFT_SET_SRC6]: 64,
  [NFT_SET_SRC4]: 24,
  [NFT_SET_SRC4_HOST]: 32,
};

/**
 * Port forwards and the IPv6 inbound policy (issue 13): the DNAT map (protocol . port →
 * target . port) in the nat table, the /64s of closed networks and their allow rules (interval
 * set: NR /64 . protocol . ports . source) in the filter table, and the chain that judges
 * traffic from the uplink into a closed network. Their elements are compared as text (see
 * core/forward.ts), so one forward or rule is one element change.
 */
export const NFT_MAP_FWD4 = 'fwd4';
export const NFT_SET_CLOSED6 = 'closed6';
export const NFT_SET_ALLOW6 = 'allow6';
export const NFT_CHAIN_INBOUND6 = 'inbound6';
/** Sets and maps whose elements are kept as their canonical text. */
export const NFT_TEXT_SETS: readonly string[] = [NFT_MAP_FWD4, NFT_SET_CLOSED6, NFT_SET_ALLOW6];

/**
 * The marker comment of every nftables rule the agent writes: "exitnode:HASH", HASH being the
 * table text's own hash, which is how observe tells that the rules are still the ones we wrote.
 */
export function ruleMarker(hash: string): string {
  return `exitnode:${hash}`;
}
/** The hash of a rule's marker comment, or undefined for a rule without one. */
export function parseRuleMarker(comment: string | undefined): string | undefined {
  return /^exitnode:([0-9a-f]+)$/.exec(comment ?? '')?.[1];
}
/** The nft interface pattern of every gateway end of an ExitPoint veth (`iifname "to-*"`). */
export const TO_LINK_GLOB = 'to-*';

// One place builds each name (DESIGN.md section 2.2); core/plan.ts's SlotPlan and NrPlan use
// these too. E = slot 1-15, A = allocation number, h = the NR id as 4 hex digits ("1abc").

/** The gateway's uplink on PrefixZero: pub-E-A (GWPubName). */
export function gatewayUplinkName(slot: number, allocation: number): string {
  return `pub-${slot}-${allocation}`;
}
/** The far end of a simulated (veth) uplink, on the PrefixZero bridge: pz-E-A. */
export function uplinkPeerName(slot: number, allocation: number): string {
  return `pz-${slot}-${allocation}`;
}
/** The gateway end of an ExitPoint's veth: to-h-A (GWtoEPName). */
export function toLinkName(h: string, allocation: number): string {
  return `to-${h}-${allocation}`;
}
/** The ExitPoint end of that veth: pub-h-A (EPPubName). */
export function epPubName(h: string, allocation: number): string {
  return `pub-${h}-${allocation}`;
}
/** An NR's WireGuard interface: wg-h-A (WGName). */
export function wgLinkName(h: string, allocation: number): string {
  return `wg-${h}-${allocation}`;
}
/** The NR side of the workload veth: veth-h-A (NRLocalName). */
export function vethName(h: string, allocation: number): string {
  return `veth-${h}-${allocation}`;
}
/** Its peer, a port of the workload bridge in the node's root namespace: vbr-h-A. */
export function vbrName(h: string, allocation: number): string {
  return `vbr-${h}-${allocation}`;
}
/** The workload bridge in the node's root namespace: br-h-A (BridgeName). */
export function bridgeName(h: string, allocation: number): string {
  return `br-${h}-${allocation}`;
}

export function gatewayNamespace(prefix: string, slot: number, allocation: number): string {
  return `${prefix}gw-${slot}-${allocation}`;
}

export function nrNamespace(prefix: string, h: string, allocation: number): string {
  return `${prefix}net-${h}-${allocation}`;
}

const H = '[0-9a-f]{4}';
const A = '(?:[1-9][0-9]{0,4})';
const E = '(?:[1-9]|1[0-5])';

/** What an owned link is, by its name. */
export type OwnedLink =
  | { role: 'uplink' | 'uplink-peer'; slot: number; allocation: number }
  | { role: 'ep-pub' | 'to' | 'wg' | 'veth' | 'vbr' | 'br'; nr: string; allocation: number };

const SLOT_LINKS: readonly [OwnedLink['role'], RegExp][] = [
  ['uplink', new RegExp(`^pub-(${E})-(${A})$`)], //        gateway uplink
  ['uplink-peer', new RegExp(`^pz-(${E})-(${A})$`)], //    simulation: far end of a veth uplink, on the PrefixZero bridge
];
const NR_LINKS: readonly [OwnedLink['role'], RegExp][] = [
  ['ep-pub', new RegExp(`^pub-(${H})-(${A})$`)], //  ExitPoint end of the ExitPoint veth
  ['to', new RegExp(`^to-(${H})-(${A})$`)], //       gateway end of the ExitPoint veth
  ['wg', new RegExp(`^wg-(${H})-(${A})$`)], //       WireGuard
  ['veth', new RegExp(`^veth-(${H})-(${A})$`)], //   NR side towards the workloads
  ['vbr', new RegExp(`^vbr-(${H})-(${A})$`)], //     its peer, a port of br-h-A in the node's root namespace
  ['br', new RegExp(`^br-(${H})-(${A})$`)], //       the workload bridge
];

/** Link names the agent owns, wherever they are (DESIGN.md section 2.2); undefined: not ours. */
export function parseOwnedLink(name: string): OwnedLink | undefined {
  for (const [role, re] of SLOT_LINKS) {
    const m = re.exec(name);
    if (m) return { role, slot: Number(m[1]), allocation: Number(m[2]) } as OwnedLink;
  }
  for (const [role, re] of NR_LINKS) {
    const m = re.exec(name);
    if (m) return { role, nr: m[1]!, allocation: Number(m[2]) } as OwnedLink;
  }
  return undefined;
}

export function isOwnedLink(name: string): boolean {
  return parseOwnedLink(name) !== undefined;
}

const WG_RE = new RegExp(`^wg-${H}-${A}$`);
export function isWgLink(name: string): boolean {
  return WG_RE.test(name);
}

/** Links that live in the node's root namespace. */
export function isRootLink(name: string): boolean {
  const r = parseOwnedLink(name)?.role;
  return r === 'br' || r === 'vbr';
}

export type OwnedNamespace =
  { kind: 'gateway'; slot: number; allocation: number } | { kind: 'nr'; id: string; allocation: number };

/** Recognises the namespaces of one node (by its prefix); anything else is not ours. */
export function parseOwnedNamespace(prefix: string, name: string): OwnedNamespace | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const rest = name.slice(prefix.length);
  let m = new RegExp(`^gw-(${E})-(${A})$`).exec(rest);
  if (m) return { kind: 'gateway', slot: Number(m[1]), allocation: Number(m[2]) };
  m = new RegExp(`^net-(${H})-(${A})$`).exec(rest);
  if (m) return { kind: 'nr', id: m[1]!, allocation: Number(m[2]) };
  return undefined;
}

/** A namespace prefix: short, so that `<prefix>net-ffff-65535` stays a sane file name. */
export const NAMESPACE_PREFIX_RE = /^(?:[a-z0-9][a-z0-9-]{0,15})?$/;

/** Private keys, wireguard-go PID files and logs, and passing WireGuard configurations under the state directory. */
export function keyFileName(wgName: string): string {
  return `${wgName}.key`;
}
export function pidFileName(wgName: string): string {
  return `${wgName}.pid`;
}
export function logFileName(wgName: string): string {
  return `${wgName}.log`;
}
export function wgConfFileName(wgName: string): string {
  return `${wgName}.conf`;
}
/** The WireGuard interface a key file (wg-h-A.key) belongs to, or undefined when it is not ours. */
export function parseKeyFileName(file: string): string | undefined {
  return wgNameWithSuffix(file, '.key');
}
/** The WireGuard interface a PID file (wg-h-A.pid) belongs to, or undefined when it is not ours. */
export function parsePidFileName(file: string): string | undefined {
  return wgNameWithSuffix(file, '.pid');
}
function wgNameWithSuffix(file: string, suffix: string): string | undefined {
  if (!file.endsWith(suffix)) return undefined;
  const name = file.slice(0, -suffix.length);
  return isWgLink(name) ? name : undefined;
}
/** The wireguard-go control socket directory, shared by every namespace of the host. */
export const WG_SOCKET_DIR = '/var/run/wireguard';
/** wireguard-go's control socket of one interface, in WG_SOCKET_DIR. */
export function wgSocketName(wgName: string): string {
  return `${wgName}.sock`;
}
