// What the agent daemon knows, shared by its loops (src/agent/daemon.ts and the files beside it):
// the newest view, the leases, and per slot what was built, fenced, released and how healthy.

import type { NodeView } from '../core/view.js';
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
  };
}

/** Decides which of the view's slots this node serves now (the fencing hook; src/agent/fencing.ts). */
export interface SlotPolicy {
  servable(view: NodeView, state: DaemonState): NodeView['slots'];
}
