// The desired kernel state of one node: what `compile` produces and `diff` compares with what the
// kernel holds. Plain data (no classes) so that it prints as sorted text for the golden tests.

export type NsRole = 'gateway' | 'nr' | 'root' | 'public' | 'segment';

export type LinkCreate =
  /** `ip link add NAME type veth peer name PEER netns PEERNS` run in this link's namespace. */
  | { how: 'veth'; peer: string; peerNs: string }
  | { how: 'bridge' }
  /** `ip link add NAME link PARENT netns NS type macvlan mode bridge`, run in PARENTNS. */
  | { how: 'macvlan'; parent: string; parentNs: string }
  /** `ip link set DEVICE netns NS` in FROMNS, then renamed NAME. */
  | { how: 'nic'; device: string; fromNs: string }
  /** Created in FROMNS (kernel link or wireguard-go), then `ip link set NAME netns NS`. */
  | { how: 'wireguard'; fromNs: string };

export interface LinkSpec {
  name: string;
  kind: 'veth' | 'bridge' | 'wireguard' | 'macvlan' | 'nic';
  /** Absent: the far end of a veth that its peer's namespace creates. */
  create?: LinkCreate;
  master?: string;
  /**
   * Keep the kernel's own EUI-64 link-local address. Links towards hosts the agent does not
   * configure (workloads) need one: without a link-local address the kernel sends no neighbour
   * solicitation for a forwarded packet, so nothing behind the link is ever resolved.
   */
  kernelLinkLocal?: boolean;
  /** Kept down (stage 2: an ExitPoint's WireGuard link on a candidate that is not VRRP master). */
  down?: boolean;
}

export interface AddrSpec {
  dev: string;
  /** Canonical ADDRESS/LENGTH. */
  addr: string;
  /** Skip duplicate address detection: links the agent owns end to end (DESIGN.md section 3). */
  nodad: boolean;
}

export interface RouteSpec {
  /** Canonical prefix; ::/0 and 0.0.0.0/0 for the defaults. */
  dst: string;
  dev: string;
  via?: string;
  onlink?: boolean;
  src?: string;
}

export interface NftElement {
  ifname: string;
  /** Canonical prefix. */
  prefix: string;
}

export interface NftTableSpec {
  family: 'ip' | 'inet';
  name: string;
  /** The table without set elements; its hash marks every rule so that a changed table is seen. */
  body: string;
  hash: string;
  /** Set name → elements. */
  sets: Record<string, NftElement[]>;
  /** Sets and maps (NFT_TEXT_SETS) whose elements are canonical text (core/forward.ts); absent: none. */
  texts?: Record<string, string[]>;
}

export interface NsSpec {
  /** Network namespace name; "" is the host's own. */
  name: string;
  /** gateway/nr namespaces are created and deleted by the agent; the others only host owned links. */
  roles: NsRole[];
  links: LinkSpec[];
  addrs: AddrSpec[];
  routes: RouteSpec[];
  sysctls: Record<string, string>;
  nft: NftTableSpec[];
  /**
   * Objects another owner manages in this namespace (stage 2: keepalived's virtual addresses and
   * routes on a candidate gateway's uplink): diff neither adds nor deletes an address whose
   * canonical ADDRESS/LENGTH is in `addrs`, nor a route whose canonical destination is in `routes`.
   */
  foreign?: { addrs: string[]; routes: string[] };
}

export interface WgPeerSpec {
  publicKey: string;
  allowedIps: string[];
  endpoint?: string;
  keepalive?: number;
}

export interface WgSpec {
  name: string;
  ns: string;
  listenPort: number;
  /** The private key's file under the state directory; the key itself is read at apply time. */
  keyFile: string;
  peers: WgPeerSpec[];
}

/**
 * One keepalived instance (stage 2, DESIGN.md 8.2): VRRP for one candidate gateway, run inside
 * the gateway namespace, detached like wireguard-go. Its files live in STATE/vrrp/NS/: the
 * configuration (keepalived.conf), the pid files, and `state`, which keepalived's notify script
 * rewrites on every transition ("MASTER|BACKUP|FAULT|STOPPED PRIORITY UNIX-MS").
 */
export interface VrrpSpec {
  /** The gateway namespace. */
  ns: string;
  allocation: number;
  slot: number;
  /** The virtual router id (1-255), derived from allocation and slot (unique on one segment). */
  vrid: number;
  priority: number;
  /** keepalived.conf, rendered from the plan (src/compile/keepalived.ts). */
  config: string;
  /** sha256 of `config`, first 16 hex digits: a changed config is a reload (SIGHUP). */
  hash: string;
}

export interface DesiredState {
  node: string;
  namespacePrefix: string;
  /** A NIC uplink (config uplink "nic"): where it goes home, renamed back, before its gateway is deleted. */
  nicUplink?: { device: string; homeNs: string };
  namespaces: NsSpec[];
  wireguard: WgSpec[];
  /** Stage 2: one keepalived per candidate gateway; absent or empty: none. */
  vrrp?: VrrpSpec[];
}

export function isOwnedNs(ns: NsSpec): boolean {
  return ns.roles.includes('gateway') || ns.roles.includes('nr');
}
