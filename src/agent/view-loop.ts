// The view loop: long-polls GET /v1/nodes/{id}/view?after=V; a new version becomes the daemon's
// newest view and queues an incremental pass (and a heartbeat: a slot given to this node, or a
// planned move, is confirmed by one).

import { ExitnodeError, q } from '../core/errors.js';
import { parseNodeView, type NodeView } from '../core/view.js';
import { markReachable, type AgentContext } from './context.js';
import { AgentErrors } from './errors.js';
import { slotKey } from './slot.js';

/** Long-poll wait, seconds. */
export const DEFAULT_VIEW_WAIT_S = 25;

export async function viewLoop(ctx: AgentContext, waitS = DEFAULT_VIEW_WAIT_S): Promise<void> {
  const { state, config } = ctx;
  let backoff = 200;
  while (ctx.running()) {
    const known = state.viewSource === 'server' ? state.view?.version : undefined;
    try {
      const raw = await ctx.client.view(config.node, {
        ...(known !== undefined ? { after: known } : {}),
        waitS,
        signal: ctx.signal,
      });
      markReachable(ctx, true);
      backoff = 200;
      let v: NodeView;
      try {
        v = parseNodeView(raw);
      } catch (e) {
        // The server answered, but with a view this agent refuses: keep serving the last good
        // one and ask again later rather than hammering the server.
        ctx.metrics.inc('exitnode_agent_views_refused_total', 'Views from TNoDB that failed validation');
        ctx.log(
          'view.refused',
          { version: (raw as { version?: unknown }).version, error: (e as Error).message },
          'error',
        );
        await ctx.clock.sleep(5000, ctx.signal);
        continue;
      }
      if (v.node.id !== config.node)
        throw new ExitnodeError(
          AgentErrors.CONFIG_INVALID,
          `the server sent the view of node ${q(v.node.id)} to node ${q(config.node)}`,
        );
      ctx.metrics.gauge('exitnode_agent_view_version', 'Newest view version received from TNoDB', v.version);
      if (v.version !== known) {
        const before = state.view;
        state.view = v;
        state.viewSource = 'server';
        ctx.log('view.received', {
          version: v.version,
          previous: before?.version,
          networks: v.networks.length,
          slots: v.slots.map((s) => `${slotKey(s)}@${s.epoch}`),
        });
        // A view equal to the saved one still needs no full pass: the startup pass covered it.
        ctx.requestPass(false, `view ${v.version}`);
        // A slot given to this node (or a planned move) is confirmed by a heartbeat: send one now.
        ctx.wakeHeartbeat();
      }
    } catch (e) {
      if (!ctx.running()) return;
      markReachable(ctx, false, (e as Error).message);
      await ctx.clock.sleep(backoff, ctx.signal);
      backoff = Math.min(backoff * 2, 2000);
    }
  }
}
