// What each of the daemon's parts (view loop, heartbeat, fencing, probes, key publishing, HTTP
// endpoint) is given: the shared state, the node's kernel and clock, the server, and the few
// calls into the daemon that they make. The daemon (src/agent/daemon.ts) is the only implementation.

import type { TnodbClient } from '../client/index.js';
import type { NodeView } from '../core/view.js';
import type { Clock, Kernel } from '../kernel/kernel.js';
import type { NodeConfig } from './config.js';
import type { Metrics } from './metrics.js';
import type { DaemonState } from './state.js';

export type LogLevel = 'info' | 'warn' | 'error';

export interface AgentContext {
  readonly config: NodeConfig;
  /** The server URL (for the log and agent.json). */
  readonly server: string;
  readonly state: DaemonState;
  readonly kernel: Kernel;
  readonly clock: Clock;
  readonly client: TnodbClient;
  readonly metrics: Metrics;
  /** Aborted when the daemon stops: every wait and request of a loop ends with it. */
  readonly signal: AbortSignal;
  running(): boolean;
  log(event: string, fields?: Record<string, unknown>, level?: LogLevel): void;
  /** The view as this node may apply it: the slot policy decides which slots it serves. */
  servable(view: NodeView): NodeView;
  /** Queues a pass over the newest view; a full pass re-reads the kernel. Coalesces requests. */
  requestPass(full: boolean, reason: string): void;
  /** Whether a pass is queued or running. */
  passBusy(): boolean;
  /** Passes completed so far. */
  passCount(): number;
  /** Sends a heartbeat now instead of at its time (a slot given, a health change, a release due). */
  wakeHeartbeat(): void;
}

/** Records whether the last request to TNoDB succeeded (state, log on change, metric). */
export function markReachable(ctx: AgentContext, ok: boolean, error?: string): void {
  if (ok) ctx.state.lastServerContact = ctx.clock.now();
  if (ok !== ctx.state.serverReachable) {
    ctx.state.serverReachable = ok;
    ctx.log(
      ok ? 'server.reachable' : 'server.unreachable',
      ok ? { server: ctx.server, serverVersion: ctx.client.serverVersion } : { server: ctx.server, error },
      ok ? 'info' : 'warn',
    );
  }
  ctx.metrics.gauge('exitnode_agent_server_reachable', 'Whether the last request to TNoDB succeeded', ok ? 1 : 0);
}
