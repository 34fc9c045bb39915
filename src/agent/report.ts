// The agent's report to TNoDB (POST /v1/nodes/{id}/report): how this agent is, for the dashboard's
// nodes view — applied vs current view version, the last pass, server reachability, drift repairs
// (a new drift repair and a change of status become events on the server). Sent after a heartbeat
// when it changed, else every REPORT_EVERY_MS. Off the lease path: a failure is only logged, and a
// server without the route (404) is asked again after 10 minutes.

import type { ExitnodeError } from '../core/errors.js';
import type { AgentContext } from './context.js';
import { healthReport } from './http.js';
import { slotKey } from './slot.js';

/** The report is sent when it changes, else this often. */
export const REPORT_EVERY_MS = 10_000;
/** A server that answers 404 (an older TNoDB) is asked again after this long. */
const NO_ROUTE_RETRY_MS = 600_000;

export class Reporter {
  /** The last report sent (without its ages), and when; `off` until when not to try. */
  private reported: { key: string; at: number; off?: number; failing?: boolean } = { key: '', at: 0 };

  constructor(private readonly ctx: AgentContext) {}

  /** Sends the report if it changed or is due. Never rejects. */
  async send(): Promise<void> {
    const { ctx } = this;
    const now = ctx.clock.now();
    if (this.reported.off && now < this.reported.off) return;
    const s = ctx.state;
    const status = healthReport(ctx).status === 'ok' ? 'ok' : 'degraded';
    const report = {
      status,
      appliedVersion: s.appliedVersion ?? null,
      viewVersion: s.view?.version ?? null,
      viewSource: s.viewSource ?? null,
      serverReachable: s.serverReachable,
      served: s.served.refs().map(slotKey),
      lastPass: s.lastPass
        ? {
            agoMs: Math.max(0, now - s.lastPass.at),
            ms: Math.round(s.lastPass.ms * 10) / 10,
            full: s.lastPass.full,
            size: s.lastPass.size,
            failures: s.lastPass.failures.length,
            ...(s.lastPass.version !== undefined ? { version: s.lastPass.version } : {}),
          }
        : null,
      drift: s.drift
        ? {
            seq: `${s.startedAt}-${s.drift.n}`,
            objects: s.drift.objects.slice(0, 50).map((o) => o.slice(0, 120)),
            version: s.drift.version,
            agoMs: Math.max(0, now - s.drift.at),
          }
        : null,
    };
    const key = JSON.stringify({ ...report, lastPass: { ...report.lastPass, agoMs: 0 }, drift: report.drift?.seq });
    if (key === this.reported.key && now - this.reported.at < REPORT_EVERY_MS) return;
    const failing = this.reported.failing;
    this.reported = { key, at: now };
    try {
      await ctx.client.request('POST', `/v1/nodes/${encodeURIComponent(ctx.config.node)}/report`, {
        ...report,
        lastServerContactAgoMs: s.lastServerContact !== undefined ? Math.max(0, now - s.lastServerContact) : null,
        uptimeS: Math.round((now - s.startedAt) / 1000),
      });
    } catch (e) {
      const code = (e as ExitnodeError).details?.status;
      if (code === 404) this.reported.off = now + NO_ROUTE_RETRY_MS;
      this.reported.key = '';
      this.reported.failing = true;
      // Once per run of failures: the heartbeat's own errors already tell an unreachable server.
      if (!failing) ctx.log('report.failed', { error: (e as Error).message }, 'warn');
    }
  }
}
