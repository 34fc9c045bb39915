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
// queues a full pass without the slot, which removes the gateway and its ExitPoints. The fence
// timer (every FENCE_TICK_MS) and every heartbeat answer and pass run `Fencer.check`.

import type { NodeView } from '../core/view.js';
import { gatewayNamespace, gatewayUplinkName } from '../core/ownership.js';
import type { Kernel } from '../kernel/kernel.js';
import type { NodeConfig } from './config.js';
import type { AgentContext } from './context.js';
import { SlotMap, sameSlot, slotKey, type SlotRef } from './slot.js';
import type { DaemonState, Lease, SlotPolicy } from './state.js';

/** Default agent margin: the node gives up this long before its lease lapses. */
export const DEFAULT_AGENT_MARGIN_MS = 1000;
/** How often the fence timer looks at the deadlines. */
export const FENCE_TICK_MS = 100;

/** The local time until which a heartbeat answer lets this node serve a slot. */
export function leaseDeadline(
  sent: number,
  leaseExpiresAt: number,
  serverNow: number | undefined,
  agentMarginMs: number,
  localNow: number = Date.now(),
): number {
  // An older server does not send its clock: fall back to synchronised clocks.
  const left = serverNow === undefined ? leaseExpiresAt - localNow : leaseExpiresAt - serverNow;
  return sent + left - agentMarginMs;
}

/**
 * Serve the view's slots for which this node holds a lease of the same epoch whose deadline has not
 * passed, and which it has not given up (planned move, released). A slot the view lists with a
 * newer epoch than the lease waits for the next heartbeat (the daemon sends one at once).
 *
 * A stage-2 slot (the view lists its `candidates`) is served as long as the view lists it, the
 * saved view included: VRRP decides who answers on the segment, so neither a lapsed lease nor a
 * TNoDB outage ever takes its gateway down (DESIGN.md 8.2). It goes when a view leaves it out.
 */
export function leasePolicy(now: () => number = Date.now): SlotPolicy {
  return {
    servable(view: NodeView, state: DaemonState): NodeView['slots'] {
      return view.slots.filter((s) => {
        if (isVrrpSlot(s)) return true;
        const l = state.leases.find((x) => sameSlot(x, s));
        return (
          !!l &&
          l.epoch === s.epoch &&
          l.deadline !== undefined &&
          now() < l.deadline &&
          !l.movingTo &&
          !state.released.get(s)
        );
      });
    },
  };
}

/** A stage-2 slot: keepalived decides who answers, never a lease. */
export function isVrrpSlot(s: NodeView['slots'][number]): boolean {
  return s.candidates !== undefined;
}

/** Serve exactly the slots the view lists (no fencing: tests of the pass machinery). */
export const followView: SlotPolicy = { servable: (view) => view.slots };

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
  kernel: Kernel,
  config: NodeConfig,
  slot: SlotRef,
): Promise<{ existed: boolean; ms: number; error?: string }> {
  const t0 = performance.now();
  const ns = gatewayNamespace(config.namespacePrefix, slot.slot, slot.allocation);
  if (!kernel.namespaceExists(ns)) return { existed: false, ms: performance.now() - t0 };
  const up = gatewayUplinkName(slot.slot, slot.allocation);
  const err = await kernel.fence(ns, up, config.uplink.kind !== 'nic');
  return { existed: true, ms: performance.now() - t0, ...(err ? { error: err } : {}) };
}

/** The daemon's fencing: compares what the last pass built with what is servable now. */
export class Fencer {
  private busy = false;

  constructor(private readonly ctx: AgentContext) {}

  /**
   * Fences every slot the last pass built that is not servable now (lease deadline passed, slot
   * gone from the heartbeat answer, planned move), then queues a full pass without it; queues a
   * pass for a slot that became servable.
   */
  async check(): Promise<void> {
    const { ctx } = this;
    const { state } = ctx;
    if (!ctx.running() || !state.view || this.busy) return;
    this.busy = true;
    try {
      const now = ctx.clock.now();
      const servable = new SlotMap(ctx.servable(state.view).slots.map((s) => [s, s] as const));
      let pass = false;
      for (const ref of state.served.refs()) {
        if (servable.has(ref)) continue;
        if (state.fenced.get(ref)?.pass === ctx.passCount()) continue;
        const l = state.leases.find((x) => sameSlot(x, ref));
        // A vrrp slot is only ever given up because the view no longer lists it.
        const reason = state.served.get(ref)?.candidates
          ? 'no longer a candidate (the view leaves the slot out)'
          : fenceReason(l, now, state.released.get(ref) !== undefined);
        const f = await fenceGateway(ctx.kernel, ctx.config, ref);
        state.fenced.set(ref, { at: ctx.clock.now(), reason, ms: f.ms, pass: ctx.passCount() });
        ctx.metrics.inc(
          'exitnode_agent_fences_total',
          'Gateways this node fenced (uplink taken away) because it may no longer serve the slot',
          1,
          { allocation: String(ref.allocation), slot: String(ref.slot) },
        );
        ctx.log(
          'slot.fenced',
          {
            slot: slotKey(ref),
            reason,
            existed: f.existed,
            ms: Math.round(f.ms),
            ...(f.error ? { error: f.error } : {}),
            lateMs: l?.deadline !== undefined ? Math.max(0, now - l.deadline) : null,
          },
          f.error ? 'error' : 'warn',
        );
        pass = true;
      }
      if (pass) ctx.requestPass(true, 'fence');
      else if (!ctx.passBusy() && servable.refs().some((s) => !state.served.has(s)))
        ctx.requestPass(false, 'lease granted');
      // A planned move: once the gateway is gone (the pass without the slot ran), release it.
      if (state.released.refs().some((s) => !state.served.has(s))) ctx.wakeHeartbeat();
      ctx.metrics.gaugeSet(
        'exitnode_agent_slot_served',
        'Slots whose gateway this node serves now (1) or holds a lease for but does not serve (0)',
        state.leases.map((l) => ({
          labels: { allocation: String(l.allocation), slot: String(l.slot) },
          value: servable.has(l) ? 1 : 0,
        })),
      );
    } finally {
      this.busy = false;
    }
  }
}
