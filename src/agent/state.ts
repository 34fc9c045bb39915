// What the agent daemon knows, shared by its loops (src/agent/daemon.ts and the files beside it):
// the newest view, the leases, and per slot what was built, fenced, released and how healthy.

import type { NodeView } from '../core/view.js';
import type { TnodbClient } from '../client/index.js';
import { SlotMap, type SlotRef } from './slot.js';

export type ViewSlot = NodeView['slots'][number];

export interface Lease extends SlotRef {
  epoch: number;
  /** Server time (ms since the epoch) at which the lease lapses unless renewed. */
  expiresAt: number;
  /** Local time of the heartbeat that granted it. */
  renewedAt: number;
  /** Local time until which this node may serve the slot (src/agent/fencing.ts). */
  deadline?: number;
  /** A planned move: this node fences and releases the slot. */
  movingTo?: string;
}

export interface SlotHealth {
  healthy: boolean;
  reason?: string;
  /** Failed rounds in a row. */
  fails: number;
  checkedAt: number;
  ms: number;
}

export interface Fence {
  at: number;
  reason: string;
  ms: number;
  /** The pass count when it was fenced: one fence per slot per pass. */
  pass: number;
}

export interface LastPass {
  at: number;
  version?: number;
  full: boolean;
  size: number;
  failures: string[];
  ms: number;
}

/** What a heartbeat carries (src/store/types.ts HeartbeatReport, through the client). */
export type HeartbeatBody = NonNullable<Parameters<TnodbClient['heartbeat']>[1]>;
/** keepalived's state of a gateway (STOPPED: no keepalived running, or no state written yet). */
export type VrrpState = NonNullable<HeartbeatBody['vrrp']>[number]['state'];

/** A vrrp slot's gateway as keepalived last reported it (stage 2), and what the agent did about it. */
export interface VrrpSlot {
  state: VrrpState;
  priority: number;
  /** When keepalived's notify wrote the state (ms since the epoch; 0: no state file yet). */
  since: number;
  /** Local time the agent saw it and had the ExitPoint links up or down. */
  at: number;
  /** From keepalived's notify to the ExitPoint links up/down (ms). */
  linksMs?: number;
  /** ExitPoint links switched. */
  links: number;
  /** The view's stepDown was acted on (priority 0) in this episode. */
  drained?: boolean;
}

export interface DaemonState {
  node: string;
  startedAt: number;
  /** Newest view received (from the server or the saved file). */
  view?: NodeView;
  viewSource?: 'saved' | 'server';
  /** Version of the last view applied without failures. */
  appliedVersion?: number;
  appliedAt?: number;
  lastPass?: LastPass;
  serverReachable: boolean;
  lastServerContact?: number;
  leases: Lease[];
  lastHeartbeatOk?: number;
  /** Published keys by interface name (to avoid re-sending while the view catches up). */
  published: Record<string, string>;
  /** Slots this node fenced and gives up, with the epoch given up. */
  released: SlotMap<number>;
  /** Gateway health by slot. */
  health: SlotMap<SlotHealth>;
  /** Slots fenced, with when and why (the newest fence of each). */
  fenced: SlotMap<Fence>;
  /** Slots the last pass built a gateway for, as the view listed them. */
  served: SlotMap<ViewSlot>;
  /** Stage 2: the node key (STATE/node.key), once loaded; whether TNoDB has its public half. */
  nodeKey?: { privateKey: string; publicKey: string };
  nodeKeyError?: string;
  nodeKeyPublished?: boolean;
  nodeKeyPublishing?: boolean;
  nodeKeyPublishError?: string;
  /** Stage 2: ExitPoint interface → fingerprint of the key and sealTo last sealed and sent. */
  sealed: Record<string, string>;
  /** Stage 2: ExitPoint interface → the sealed key that would not open (not tried again). */
  unsealFailed: Record<string, string>;
  /** Stage 2: ExitPoint links left out of the last pass for want of their shared key. */
  withoutKey: Set<string>;
  /** Stage 2: keepalived's state of each vrrp slot's gateway. */
  vrrp: SlotMap<VrrpSlot>;
  /** Stage 2: the endpoints this node's master ExitPoints learnt, for the next heartbeat. */
  endpoints: NonNullable<HeartbeatBody['endpoints']>;
  /** The last drift repair (a full pass that changed the kernel under an applied view), and how many so far. */
  drift?: { n: number; at: number; objects: string[]; version: number };
}

export function newDaemonState(node: string, now: number): DaemonState {
  return {
    node,
    startedAt: now,
    serverReachable: false,
    leases: [],
    published: {},
    released: new SlotMap(),
    health: new SlotMap(),
    fenced: new SlotMap(),
    served: new SlotMap(),
    sealed: {},
    unsealFailed: {},
    withoutKey: new Set(),
    vrrp: new SlotMap(),
    endpoints: [],
  };
}

/** Decides which of the view's slots this node serves now (the fencing hook; src/agent/fencing.ts). */
export interface SlotPolicy {
  servable(view: NodeView, state: DaemonState): NodeView['slots'];
}
