// What the kernel holds, as the readers of src/kernel report it (only what naming rules make ours
// is ever acted upon, but the readers report whole namespaces so that `diff` can decide).
import type { NftElement } from '../compile/desired.js';

export interface ActualLink {
  name: string;
  /** linkinfo kind: veth, bridge, tun (wireguard-go), wireguard, macvlan, or "" for a NIC. */
  kind: string;
  master?: string;
  up: boolean;
  addrgenNone: boolean;
}

export interface ActualAddr {
  dev: string;
  addr: string;
}

export interface ActualRoute {
  dst: string;
  dev: string;
  via?: string;
  /** Absent: false (the previous pass's desired routes stand in for the kernel's). */
  onlink?: boolean;
  src?: string;
}

export interface ActualNftTable {
  family: string;
  name: string;
  /** The "exitnode:HASH" comment of every rule, in order. */
  ruleHashes: string[];
  sets: Record<string, NftElement[]>;
  /** Elements of the NFT_TEXT_SETS, as canonical text. */
  texts?: Record<string, string[]>;
}

export interface ActualNs {
  name: string;
  links: ActualLink[];
  addrs: ActualAddr[];
  /** Only routes with our protocol number, table main. */
  routes: ActualRoute[];
  sysctls: Record<string, string>;
  nft: ActualNftTable[];
}

export interface ActualWgPeer {
  publicKey: string;
  endpoint?: string;
  allowedIps: string[];
  keepalive?: number;
}

export interface ActualWg {
  name: string;
  privateKey: string;
  listenPort: number;
  peers: ActualWgPeer[];
}

export interface ActualState {
  /** Every namespace observed: the node's owned ones (by prefix and pattern) and the shared ones. */
  namespaces: Map<string, ActualNs>;
  /** Names of existing owned namespaces (a subset of the keys above). */
  owned: Set<string>;
  wireguard: Map<string, ActualWg>;
  /** wireguard-go processes recorded in the state directory that are still alive: name → pid. */
  wgProcesses: Map<string, number>;
  /** Namespaces that could not be read, with the reason: the plan leaves them (and links into them) alone. */
  unreadable?: Map<string, string>;
  /** Key files in the state directory: interface name → present. */
  keyFiles: Set<string>;
  /** PID/log files in the state directory that belong to an interface name. */
  pidFiles: Set<string>;
  /**
   * Stage 2: the keepalived instances of the state directory (STATE/vrrp/NS/), by gateway
   * namespace; absent: not read (diff then leaves keepalived alone).
   */
  vrrp?: Map<string, ActualVrrp>;
}

/** One keepalived directory: its running process (checked by /proc cmdline) and its configuration's hash. */
export interface ActualVrrp {
  ns: string;
  /** The parent process; absent: none running (a directory left behind, or a crash). */
  pid?: number;
  /** vrrpHash of the configuration file on disk; absent: no file. */
  hash?: string;
}
