// Health that means forwarding: a gateway is healthy when, from inside its namespace, the upstream
// router answers on the uplink — the IPv6 default route's next hop (the allocation's upstream
// link-local, fe80::1 by default) and, when the allocation has one, the IPv4 gateway. A link that
// is up but goes nowhere (cable, switch port, upstream VLAN) fails this, which a check of the
// agent's own process or of the link state would not see.
//
// The daemon probes every held slot once per heartbeat (`Prober.round`); after FAILS_TO_UNHEALTHY
// failed rounds in a row it reports the slot unhealthy in its heartbeat, the server stops renewing
// that lease, the node's own deadline passes and it fences (src/agent/fencing.ts), and the slot
// moves. One lost probe does not move a slot.

import { gatewayNamespace, gatewayUplinkName } from '../core/ownership.js';
import type { NodeView } from '../core/view.js';
import type { Clock, Kernel } from '../kernel/kernel.js';
import type { NodeConfig } from './config.js';
import type { AgentContext } from './context.js';
import { sameSlot, slotKey, SlotMap, type SlotRef } from './slot.js';
import type { SlotHealth } from './state.js';

export type { SlotHealth } from './state.js';

export const FAILS_TO_UNHEALTHY = 2;
/** Per-probe wait for an answer, seconds (ping -W). */
export const PROBE_WAIT_S = 1;

/**
 * One probe round for one slot's gateway: undefined when healthy, else why not. IPV4 false: the
 * IPv6 link-local probe alone — a VRRP backup holds no GWPubIP4 to ping from (keepalived's own
 * track script probes the same way), and gains it only as master.
 */
export async function probeUplink(
  kernel: Kernel,
  config: NodeConfig,
  view: NodeView,
  slot: SlotRef,
  o: { ipv4?: boolean } = {},
): Promise<string | undefined> {
  const a = view.allocations.find((x) => x.number === slot.allocation);
  if (!a) return undefined;
  const ns = gatewayNamespace(config.namespacePrefix, slot.slot, slot.allocation);
  const dev = gatewayUplinkName(slot.slot, slot.allocation);
  // A freshly built uplink keeps duplicate address detection: while GWPubLL is tentative no ping can
  // leave from it, which says nothing about forwarding. Two such rounds (DAD takes 1-2 s, longer on a
  // loaded machine) made a node give up a healthy new gateway in CI. No verdict until DAD is done.
  const dad = await kernel.tentative(ns, dev);
  if (dad === undefined) return `uplink ${dev} is missing in ${ns}`;
  if (dad) return undefined;
  const ll = a.upstream.ll;
  const probes: Promise<string | undefined>[] = [
    kernel.ping(ns, dev, ll, PROBE_WAIT_S).then((ok) => (ok ? undefined : `upstream ${ll} does not answer on ${dev}`)),
  ];
  const gw4 = a.upstream.ipv4Gateway;
  if (gw4 && o.ipv4 !== false) {
    probes.push(
      kernel
        .ping(ns, dev, gw4, PROBE_WAIT_S)
        .then((ok) => (ok ? undefined : `upstream ${gw4} does not answer on ${dev}`)),
    );
  }
  const bad = (await Promise.all(probes)).filter((x): x is string => !!x);
  return bad.length ? bad.join('; ') : undefined;
}

/** Folds one round into the slot's record. */
export function nextHealth(
  prev: SlotHealth | undefined,
  failure: string | undefined,
  at: number,
  ms: number,
): SlotHealth {
  const fails = failure ? (prev?.fails ?? 0) + 1 : 0;
  const healthy = fails < FAILS_TO_UNHEALTHY;
  return {
    healthy,
    fails,
    checkedAt: at,
    ms,
    ...(failure ? { reason: `${failure} (${fails} round${fails === 1 ? '' : 's'} in a row)` } : {}),
  };
}

/**
 * Makes the upstream router learn a freshly built gateway's MAC at once, whatever its neighbour
 * cache holds for the slot's addresses. `arp_notify` sends gratuitous ARP only when the link comes
 * up (the addresses arrive later in a pass), and `ndisc_notify`'s advertisement may precede the
 * upstream's interest; an ARP request or neighbour solicitation from the gateway's own address
 * (what a ping to the upstream starts once the gateway's entries on the uplink are flushed) overrides the upstream's
 * entry for the sender in every Linux-like stack. IPv4 goes at once; IPv6 after duplicate address
 * detection of GWPubLL (the uplink keeps DAD), polled every 50 ms for up to 3 s.
 * Returns the milliseconds until the upstream answered on each family.
 */
export async function announceUplink(
  kernel: Kernel,
  clock: Clock,
  config: NodeConfig,
  view: NodeView,
  slot: SlotRef,
): Promise<{ ipv4Ms?: number; ipv6Ms?: number; failed: string[] }> {
  const a = view.allocations.find((x) => x.number === slot.allocation);
  const out: { ipv4Ms?: number; ipv6Ms?: number; failed: string[] } = { failed: [] };
  if (!a) return out;
  const ns = gatewayNamespace(config.namespacePrefix, slot.slot, slot.allocation);
  const dev = gatewayUplinkName(slot.slot, slot.allocation);
  const t0 = performance.now();
  // The cache is not always empty: the gateway may have learnt the upstream's MAC passively (from an
  // ARP request of the upstream, or traffic) before this runs, and then the ping solicits nothing and
  // the upstream keeps the old holder's MAC until its entry times out (seen in CI: 60 s of IPv4
  // loss). Flushing our own uplink's entries first makes the solicitation certain.
  const gw4 = a.upstream.ipv4Gateway;
  const v4 = gw4
    ? kernel
        .flushNeighbours(ns, dev, 4)
        .then(() => kernel.ping(ns, dev, gw4, PROBE_WAIT_S))
        .then((ok) => {
          if (ok) out.ipv4Ms = performance.now() - t0;
          else out.failed.push(gw4);
        })
    : Promise.resolve();
  const v6 = (async () => {
    const end = clock.now() + 3000;
    while (clock.now() < end) {
      if ((await kernel.tentative(ns, dev)) === false) break;
      await clock.sleep(50);
    }
    await kernel.flushNeighbours(ns, dev, 6);
    if (await kernel.ping(ns, dev, a.upstream.ll, PROBE_WAIT_S)) out.ipv6Ms = performance.now() - t0;
    else out.failed.push(a.upstream.ll);
  })();
  await Promise.all([v4, v6]);
  return out;
}

/** The daemon's probe rounds: one at a time, over the gateways it serves and may serve. */
export class Prober {
  private busy = false;

  constructor(
    private readonly ctx: AgentContext,
    private readonly enabled: boolean,
  ) {}

  /** One probe round over the gateways this node serves (not awaited by the heartbeat loop). */
  async round(): Promise<void> {
    const { ctx } = this;
    const { state } = ctx;
    if (this.busy || !this.enabled || !state.view) return;
    this.busy = true;
    try {
      const view = state.view;
      const servable = new SlotMap(ctx.servable(view).slots.map((s) => [s, s] as const));
      await Promise.all(
        state.served
          .refs()
          .filter((ref) => servable.has(ref))
          .map(async (ref) => {
            const t0 = performance.now();
            const standby = servable.get(ref)?.candidates !== undefined && state.vrrp.get(ref)?.state !== 'MASTER';
            const failure = await probeUplink(ctx.kernel, ctx.config, view, ref, { ipv4: !standby }).catch(
              (err: unknown) => `probe failed: ${(err as Error).message}`,
            );
            const prev = state.health.get(ref);
            const h = nextHealth(prev, failure, ctx.clock.now(), performance.now() - t0);
            state.health.set(ref, h);
            if ((prev?.healthy ?? true) !== h.healthy) {
              ctx.log(
                h.healthy ? 'slot.healthy' : 'slot.unhealthy',
                { slot: slotKey(ref), ...(h.reason ? { reason: h.reason } : {}) },
                h.healthy ? 'info' : 'error',
              );
              // A gateway that cannot forward loses nothing by fencing: give the slot up now (fence,
              // remove, release) rather than wait for the lease, so that it moves to a healthy node.
              // A vrrp slot is never given up: keepalived's own tracking hands mastership over.
              const l = state.leases.find((x) => sameSlot(x, ref));
              const vrrp = servable.get(ref)?.candidates !== undefined;
              if (!h.healthy && l && !vrrp && state.released.get(ref) === undefined) state.released.set(ref, l.epoch);
              ctx.wakeHeartbeat();
            }
            ctx.metrics.gaugeSet(
              'exitnode_agent_slot_healthy',
              "Whether the upstream router answers from the slot's gateway (1) or not (0)",
              state.health.entries().map(([s, v]) => ({ labels: { slot: slotKey(s) }, value: v.healthy ? 1 : 0 })),
            );
          }),
      );
      for (const ref of state.health.refs()) if (!servable.has(ref) || !state.served.has(ref)) state.health.delete(ref);
    } finally {
      this.busy = false;
    }
  }
}
