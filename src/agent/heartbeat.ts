// The heartbeat/lease loop: POST /v1/nodes/{id}/heartbeat every heartbeatMs (well below the lease
// TTL) with the gateways' health and the slots this node released; the answer is this node's
// leases (slot, epoch, expiry), each given a local deadline (src/agent/fencing.ts). Leases are
// kept in STATE/leases.json, so that a restarted agent judges the saved view's slots before its
// first heartbeat: a quick restart serves on, an agent that comes back after losing its slot
// removes it.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { markReachable, type AgentContext } from './context.js';
import { leaseDeadline } from './fencing.js';
import { sameSlot, slotKey } from './slot.js';
import type { HeartbeatBody, Lease } from './state.js';

export const DEFAULT_HEARTBEAT_MS = 1_000;

/** The leases as last granted (none when the file is missing or unreadable). */
export function loadLeases(stateDir: string): Lease[] {
  try {
    return JSON.parse(readFileSync(join(stateDir, 'leases.json'), 'utf8')) as Lease[];
  } catch {
    return [];
  }
}

const leaseText = (l: Lease): string => `${slotKey(l)}@${l.epoch}`;

export class Heartbeat {
  private wake?: () => void;

  constructor(
    private readonly ctx: AgentContext,
    private readonly opts: {
      everyMs: number;
      marginMs: number;
      /** After each answer: fence what the new leases no longer allow (awaited). */
      checkFences: () => Promise<void>;
      /** After each answer: a probe round (not awaited). */
      probe: () => void;
      /** Stage 2: the VRRP states and learned endpoints to report (absent: none). */
      extra?: () => Pick<HeartbeatBody, 'vrrp' | 'endpoints'>;
    },
  ) {}

  /** Sends the next heartbeat now if the loop is waiting for its time. */
  wakeNow(): void {
    this.wake?.();
  }

  async loop(): Promise<void> {
    const { ctx } = this;
    const { state } = ctx;
    const every = this.opts.everyMs;
    while (ctx.running()) {
      const sent = ctx.clock.now();
      try {
        // Health of the gateways built; release of slots fenced for a planned move whose gateway is gone.
        const slots = state.health
          .entries()
          .filter(([s]) => state.served.has(s))
          .map(([s, h]) => ({
            allocation: s.allocation,
            slot: s.slot,
            healthy: h.healthy,
            ...(h.reason ? { reason: h.reason } : {}),
          }));
        const release = state.released
          .entries()
          .filter(([s]) => !state.served.has(s))
          .map(([s, epoch]) => ({ allocation: s.allocation, slot: s.slot, epoch }));
        const x = this.opts.extra?.() ?? {};
        const body: HeartbeatBody = {
          ...(slots.length ? { slots } : {}),
          ...(release.length ? { release } : {}),
          ...(x.vrrp?.length ? { vrrp: x.vrrp } : {}),
          ...(x.endpoints?.length ? { endpoints: x.endpoints } : {}),
        };
        const r = await ctx.client.heartbeat(ctx.config.node, Object.keys(body).length ? body : undefined);
        markReachable(ctx, true);
        const now = ctx.clock.now();
        state.lastHeartbeatOk = now;
        if (release.length) ctx.log('slots.released', { slots: release.map((x) => `${slotKey(x)}@${x.epoch}`) });
        const before = state.leases.map(leaseText).join(',');
        state.leases = r.slots.map((s) => ({
          allocation: s.allocation,
          slot: s.slot,
          epoch: s.epoch,
          expiresAt: s.leaseExpiresAt,
          renewedAt: sent,
          deadline: leaseDeadline(sent, s.leaseExpiresAt, r.now, this.opts.marginMs, now),
          ...(s.movingTo ? { movingTo: s.movingTo } : {}),
        }));
        // A release is done once the server no longer lists the slot under that epoch.
        for (const [s, epoch] of state.released.entries()) {
          const l = state.leases.find((x) => sameSlot(x, s));
          if (!l || l.epoch !== epoch) state.released.delete(s);
        }
        for (const l of state.leases) {
          if (l.movingTo && state.released.get(l) === undefined) {
            state.released.set(l, l.epoch);
            ctx.log('slot.moving', { slot: slotKey(l), epoch: l.epoch, to: l.movingTo });
          }
        }
        const after = state.leases.map(leaseText).join(',');
        this.save();
        if (before !== after)
          ctx.log('leases.changed', { leases: after === '' ? [] : after.split(','), version: state.view?.version });
        ctx.metrics.gaugeSet(
          'exitnode_agent_lease_seconds_left',
          'Seconds until each held slot lease lapses (server clock)',
          state.leases.map((l) => ({
            labels: { allocation: String(l.allocation), slot: String(l.slot), epoch: String(l.epoch) },
            value: Math.max(0, (l.expiresAt - (r.now ?? now)) / 1000),
          })),
        );
        ctx.metrics.gauge('exitnode_agent_heartbeat_ok', 'Whether the last heartbeat succeeded', 1);
        await this.opts.checkFences();
        this.opts.probe();
        await this.sleep(Math.max(0, every - (ctx.clock.now() - sent)));
      } catch (e) {
        if (!ctx.running()) return;
        markReachable(ctx, false, (e as Error).message);
        ctx.metrics.gauge('exitnode_agent_heartbeat_ok', 'Whether the last heartbeat succeeded', 0);
        // Retry sooner than the interval: right after TNoDB comes back the lease should be renewed
        // before the server's sweep looks at it.
        await this.sleep(Math.min(every, 250));
      }
    }
  }

  /** Sleeps until the next heartbeat is due, or until something wants one now, or the daemon stops. */
  private async sleep(ms: number): Promise<void> {
    const { signal, clock } = this.ctx;
    if (signal.aborted) return;
    const wake = new AbortController();
    const stop = (): void => wake.abort();
    signal.addEventListener('abort', stop, { once: true });
    this.wake = stop;
    try {
      await clock.sleep(ms, wake.signal);
    } finally {
      this.wake = undefined;
      signal.removeEventListener('abort', stop);
    }
  }

  private save(): void {
    const { ctx } = this;
    try {
      mkdirSync(ctx.config.stateDir, { recursive: true, mode: 0o700 });
      const f = join(ctx.config.stateDir, 'leases.json');
      writeFileSync(`${f}.${process.pid}`, JSON.stringify(ctx.state.leases) + '\n', { mode: 0o600 });
      renameSync(`${f}.${process.pid}`, f);
    } catch (e) {
      ctx.log('leases.save.failed', { error: (e as Error).message }, 'warn');
    }
  }
}
