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

const H = '[0-9a-f]{4}';
const A = '(?:[1-9][0-9]{0,4})';
const E = '(?:[1-9]|1[0-5])';

/** Link names the agent owns, wherever they are (DESIGN.md section 2.2). */
const LINK_PATTERNS: readonly RegExp[] = [
  new RegExp(`^pub-${E}-${A}$`), //   gateway uplink
  new RegExp(`^pub-${H}-${A}$`), //   ExitPoint end of the ExitPoint veth
  new RegExp(`^to-${H}-${A}$`), //    gateway end of the ExitPoint veth
  new RegExp(`^wg-${H}-${A}$`), //    WireGuard
  new RegExp(`^veth-${H}-${A}$`), //  NR side towards the workloads
  new RegExp(`^vbr-${H}-${A}$`), //   its peer, a port of br-h-A in the node's root namespace
  new RegExp(`^br-${H}-${A}$`), //    the workload bridge
  new RegExp(`^pz-${E}-${A}$`), //    simulation: far end of a veth uplink, on the PrefixZero bridge
];

export function isOwnedLink(name: string): boolean {
  return LINK_PATTERNS.some((re) => re.test(name));
}

export function isWgLink(name: string): boolean {
  return new RegExp(`^wg-${H}-${A}$`).test(name);
}

/** Links that live in the node's root namespace. */
export function isRootLink(name: string): boolean {
  return new RegExp(`^(?:br|vbr)-${H}-${A}$`).test(name);
}

export function gatewayNamespace(prefix: string, slot: number, allocation: number): string {
  return `${prefix}gw-${slot}-${allocation}`;
}

export function nrNamespace(prefix: string, h: string, allocation: number): string {
  return `${prefix}net-${h}-${allocation}`;
}

/** The far end of a simulated (veth) uplink, on the PrefixZero bridge. */
export function uplinkPeerName(slot: number, allocation: number): string {
  return `pz-${slot}-${allocation}`;
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

/** Private keys and wireguard-go PID files under the state directory. */
export function keyFileName(wgName: string): string {
  return `${wgName}.key`;
}
export function pidFileName(wgName: string): string {
  return `${wgName}.pid`;
}
/** The wireguard-go control socket directory, shared by every namespace of the host. */
export const WG_SOCKET_DIR = '/var/run/wireguard';
