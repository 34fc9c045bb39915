// What compile needs to know about the node beyond its view: the subset of the agent's NodeConfig
// (src/agent/config.ts extends it and validates it) that decides names and wiring.

export type UplinkMode =
  /** Move this NIC into the (single) gateway namespace and rename it pub-E-A. */
  | { kind: 'nic'; device: string }
  /** A macvlan (bridge mode) on this NIC of the root namespace, moved into each gateway. */
  | { kind: 'macvlan'; parent: string }
  /** Simulation: a veth whose far end (pz-E-A) goes into `peerNamespace` and into `bridge` there. */
  | { kind: 'veth'; peerNamespace: string; bridge: string };

export type WireGuardMode = 'auto' | 'kernel' | 'userspace' | 'none';

export interface CompileConfig {
  /** Must equal the view's node.id: an agent refuses another node's view. */
  node: string;
  /** Prepended to every namespace the agent creates ("n1-" in the simulation, "" in production). */
  namespacePrefix: string;
  /** The namespace of the workload bridges br-h-A; "" is the host's own namespace. */
  rootNamespace: string;
  /** The namespace of the node's public address, where WireGuard sockets bind; "" is the host's. */
  publicNamespace: string;
  uplink: UplinkMode;
  /** "none" builds everything but the WireGuard links and their routes (gateway benchmarks). */
  wireguard: WireGuardMode;
  /** The agent's state directory (absolute): a candidate gateway's keepalived files go to STATE/vrrp/NS/. */
  stateDir: string;
}

/**
 * What compile needs to know of the node's present beyond its view and config (stage 2, DESIGN.md
 * 8.2), given by the agent on every pass so that compile stays a function of its inputs.
 */
export interface CompileRuntime {
  /** Slots (slotKey "A/E") whose gateway keepalived reports MASTER on this node: their ExitPoint links are up. */
  masters?: ReadonlySet<string>;
  /**
   * ExitPoint WireGuard links (interface names) of VRRP slots whose shared private key this node
   * does not hold and may not generate (a candidate that is not first, before its sealed key came):
   * compile leaves them out.
   */
  withoutKey?: ReadonlySet<string>;
}
