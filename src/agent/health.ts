// Health that means forwarding: a gateway is healthy when, from inside its namespace, the upstream
// router answers on the uplink — the IPv6 default route's next hop (the allocation's upstream
// link-local, fe80::1 by default) and, when the allocation has one, the IPv4 gateway. A link that
// is up but goes nowhere (cable, switch port, upstream VLAN) fails this, which a check of the
// agent's own process or of the link state would not see.
//
// The daemon probes every held slot once per heartbeat; after FAILS_TO_UNHEALTHY failed rounds in a
// row it reports the slot unhealthy in its heartbeat, the server stops renewing that lease, the
// node's own deadline passes and it fences (src/agent/fencing.ts), and the slot moves. One lost
// probe does not move a slot.

import { gatewayNamespace, gatewayUplinkName } from '../core/ownership.js';
import type { NodeView } from '../core/view.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { NETNS_DIR, inNs, run } from '../kernel/exec.js';
import type { NodeConfig } from './config.js';

export const FAILS_TO_UNHEALTHY = 2;
/** Per-probe wait for an answer, seconds (ping -W). */
export const PROBE_WAIT_S = 1;

export interface SlotHealth {
  healthy: boolean;
  reason?: string;
  /** Failed rounds in a row. */
  fails: number;
  checkedAt: number;
  ms: number;
}

async function ping(ns: string, args: string[]): Promise<boolean> {
  const r = await run(inNs(ns, ['ping', '-n', '-q', '-c', '1', '-W', String(PROBE_WAIT_S), ...args]));
  return r.code === 0;
}

/** One probe round for one slot's gateway: undefined when healthy, else why not. */
export async function probeUplink(
  config: NodeConfig,
  view: NodeView,
  slot: { allocation: number; slot: number },
): Promise<string | undefined> {
  const a = view.allocations.find((x) => x.number === slot.allocation);
  if (!a) return undefined;
  const ns = gatewayNamespace(config.namespacePrefix, slot.slot, slot.allocation);
  // No gateway namespace (a pass is still to build it, or a test's fake kernel): no verdict.
  if (!existsSync(join(NETNS_DIR, ns))) return undefined;
  const dev = gatewayUplinkName(slot.slot, slot.allocation);
  // A freshly built uplink keeps duplicate address detection: while GWPubLL is tentative no ping can
  // leave from it, which says nothing about forwarding. Two such rounds (DAD takes 1-2 s, longer on a
  // loaded machine) made a node give up a healthy new gateway in CI. No verdict until DAD is done.
  const dad = await uplinkInDad(ns, dev);
  if (dad === undefined) return `uplink ${dev} is missing in ${ns}`;
  if (dad) return undefined;
  const ll = a.upstream.ll;
  const probes: Promise<string | undefined>[] = [
    ping(ns, ['-6', `${ll}%${dev}`]).then((ok) => (ok ? undefined : `upstream ${ll} does not answer on ${dev}`)),
  ];
  if (a.upstream.ipv4Gateway) {
    probes.push(
      ping(ns, ['-4', '-I', dev, a.upstream.ipv4Gateway]).then((ok) =>
        ok ? undefined : `upstream ${a.upstream.ipv4Gateway!} does not answer on ${dev}`,
      ),
    );
  }
  const bad = (await Promise.all(probes)).filter((x): x is string => !!x);
  return bad.length ? bad.join('; ') : undefined;
}

/** Whether the uplink still has tentative IPv6 addresses (DAD running); undefined if it is missing. */
async function uplinkInDad(ns: string, dev: string): Promise<boolean | undefined> {
  const r = await run(inNs(ns, ['ip', '-6', '-o', 'addr', 'show', 'dev', dev, 'tentative']));
  return r.code === 0 ? r.stdout.trim() !== '' : undefined;
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
  config: NodeConfig,
  view: NodeView,
  slot: { allocation: number; slot: number },
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
  const v4 = a.upstream.ipv4Gateway
    ? run(inNs(ns, ['ip', '-4', 'neigh', 'flush', 'dev', dev]))
        .then(() => ping(ns, ['-4', '-I', dev, a.upstream.ipv4Gateway!]))
        .then((ok) => {
          if (ok) out.ipv4Ms = performance.now() - t0;
          else out.failed.push(a.upstream.ipv4Gateway!);
        })
    : Promise.resolve();
  const v6 = (async () => {
    const end = Date.now() + 3000;
    while (Date.now() < end) {
      if ((await uplinkInDad(ns, dev)) === false) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    await run(inNs(ns, ['ip', '-6', 'neigh', 'flush', 'dev', dev]));
    if (await ping(ns, ['-6', `${a.upstream.ll}%${dev}`])) out.ipv6Ms = performance.now() - t0;
    else out.failed.push(a.upstream.ll);
  })();
  await Promise.all([v4, v6]);
  return out;
}
