// Fencing (DESIGN.md sections 5 and 8): a node serves a slot only while it holds a live lease for
// it, so that two nodes never answer for one slot's addresses.
//
// The timing argument. A heartbeat is sent at local time `sent`; the server renews the lease to
// `serverNow + TTL` and answers with both values. The node's deadline is
//
//     deadline = sent + (leaseExpiresAt - serverNow) - agentMargin          (local clock)
//
// and the server moves the slot no earlier than `leaseExpiresAt + serverMargin` (server clock).
// `serverNow` is taken after `sent` (the request was on its way), so on the server's clock the
// renewal happened at or after `sent`: measured from the same instant, the node gives up at least
// `agentMargin + serverMargin` before the slot can be given to another node. Only the clocks'
// RATES enter (no offset: both sides measure a duration from the same renewal), and the margins
// cover the rest: the fence timer firing late (event loop, FENCE_TICK_MS), the fence command
// itself (one `ip -batch`, ~5-50 ms), and clock-rate drift over one TTL (ppm: nothing). A node
// that sees its slot gone from a heartbeat answer, or a planned move, fences at once.
//
// Fencing takes the uplink away from the gateway first (`link set down`, `addr flush`, and for a
// veth or macvlan uplink `link del`, which also frees the peer's name on a shared segment), then
// queues a full pass without the slot, which removes the gateway and its ExitPoints.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeView } from '../core/view.js';
import { gatewayNamespace, gatewayUplinkName } from '../core/ownership.js';
import { NETNS_DIR, inNs, run } from '../kernel/exec.js';
import type { NodeConfig } from './config.js';
import type { DaemonState, Lease, SlotPolicy } from './daemon.js';

/** Default agent margin: the node gives up this long before its lease lapses. */
export const DEFAULT_AGENT_MARGIN_MS = 1000;
/** How often the fence timer looks at the deadlines. */
export const FENCE_TICK_MS = 100;

export function slotKey(s: { allocation: number; slot: number }): string {
  return `${s.allocation}/${s.slot}`;
}

/** The local time until which a heartbeat answer lets this node serve a slot. */
export function leaseDeadline(
  sent: number,
  leaseExpiresAt: number,
  serverNow: number | undefined,
  agentMarginMs: number,
): number {
  // An older server does not send its clock: fall back to synchronised clocks.
  const left = serverNow === undefined ? leaseExpiresAt - Date.now() : leaseExpiresAt - serverNow;
  return sent + left - agentMarginMs;
}

/**
 * Serve the view's slots for which this node holds a lease of the same epoch whose deadline has not
 * passed, and which it has not given up (planned move, released). A slot the view lists with a
 * newer epoch than the lease waits for the next heartbeat (the daemon sends one at once).
 */
export function leasePolicy(now: () => number = Date.now): SlotPolicy {
  return {
    servable(view: NodeView, state: DaemonState): NodeView['slots'] {
      return view.slots.filter((s) => {
        const l = state.leases.find((x) => x.allocation === s.allocation && x.slot === s.slot);
        return (
          !!l &&
          l.epoch === s.epoch &&
          l.deadline !== undefined &&
          now() < l.deadline &&
          !l.movingTo &&
          !state.released[slotKey(s)]
        );
      });
    },
  };
}

export function fenceReason(l: Lease | undefined, now: number, released: boolean): string {
  if (released) return 'released (planned move or lost health)';
  if (!l) return 'no lease (the slot moved or the server did not renew it)';
  if (l.movingTo) return `planned move to ${l.movingTo}`;
  if (l.deadline === undefined || now >= l.deadline)
    return `lease not renewed in time (deadline ${new Date(l.deadline ?? 0).toISOString()})`;
  return 'epoch changed';
}

/** Takes the uplink away from the slot's gateway (see the header); true if the gateway existed. */
export async function fenceGateway(
  config: NodeConfig,
  slot: { allocation: number; slot: number },
): Promise<{ existed: boolean; ms: number; error?: string }> {
  const t0 = performance.now();
  const ns = gatewayNamespace(config.namespacePrefix, slot.slot, slot.allocation);
  if (!existsSync(join(NETNS_DIR, ns))) return { existed: false, ms: performance.now() - t0 };
  const up = gatewayUplinkName(slot.slot, slot.allocation);
  const lines = [`link set dev ${up} down`, `addr flush dev ${up}`];
  if (config.uplink.kind !== 'nic') lines.push(`link del dev ${up}`);
  const r = await run(inNs(ns, ['ip', '-force', '-batch', '-']), lines.join('\n') + '\n');
  // "Cannot find device" means it is gone already: fenced.
  const err =
    r.code !== 0 && !/Cannot find device|does not exist/.test(r.stderr) ? r.stderr.trim().split('\n')[0] : undefined;
  return { existed: true, ms: performance.now() - t0, ...(err ? { error: err } : {}) };
}
