// Key publishing: the public key of every WireGuard interface of this node goes to TNoDB, which
// puts it into the views of the NR's peers.

import { isWgLink, wgLinkName } from '../core/ownership.js';
import type { NodeView } from '../core/view.js';
import type { StepFailure } from '../kernel/kernel.js';
import { linksOf } from '../reconcile/objects.js';
import type { AgentContext } from './context.js';
import { floatingExits } from './exit-keys.js';

/**
 * The keys a pass may publish: not those of an interface that failed to come up. A key whose
 * interface failed is published by the pass that completes it: a peer that learns it earlier
 * starts its handshake into the void and retries only after 5 s.
 */
export function publishableKeys(
  failures: readonly StepFailure[],
  publicKeys: Record<string, string>,
): Record<string, string> {
  const broken = new Set(failures.flatMap((f) => f.objects.flatMap(linksOf)).filter(isWgLink));
  return Object.fromEntries(Object.entries(publicKeys).filter(([k]) => !broken.has(k)));
}

/** Sends TNoDB the public key of every NR of this node whose view entry lacks it or differs. */
export async function publishKeys(ctx: AgentContext, view: NodeView, keys: Record<string, string>): Promise<void> {
  const { state } = ctx;
  if (state.viewSource !== 'server' && !state.serverReachable) return;
  const floating = new Map(floatingExits(view).map((f) => [f.name, f] as const));
  for (const n of view.networks) {
    for (const r of n.resources) {
      if (r.node !== ctx.config.node) continue;
      const name = wgLinkName(r.id, n.allocation);
      const key = keys[name];
      if (!key || key === r.publicKey || state.published[name] === key) continue;
      // Stage 2: a shared ExitPoint key is published once, by the first candidate that made it;
      // a published one is kept through every change of candidates (no peer changes).
      if (floating.has(name) && (!floating.get(name)!.first || r.publicKey !== undefined)) continue;
      try {
        await ctx.client.publishKey(n.id, r.id, key);
        state.published[name] = key;
        ctx.log('key.published', { version: view.version, network: n.id, nr: r.id, interface: name });
      } catch (e) {
        ctx.log('key.publish.failed', { network: n.id, nr: r.id, error: (e as Error).message }, 'warn');
      }
    }
  }
}
