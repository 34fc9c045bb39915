// Prometheus text exposition, written by hand: request latency per route, NRs per slot, totals.
import type { Store } from '../store/index.js';
import type { PollLimits } from './polls.js';
import type { ViewCache } from './views.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

interface Hist {
  counts: number[];
  sum: number;
  count: number;
}

export class Metrics {
  private hist = new Map<string, Hist>();

  observe(method: string, route: string, status: number, seconds: number): void {
    const key = `method="${method}",route="${route.replace(/["\\\n]/g, '_')}",code="${status}"`;
    let h = this.hist.get(key);
    if (!h) this.hist.set(key, (h = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) h.counts[i]!++;
    h.sum += seconds;
    h.count++;
  }

  async render(store: Store, extra: string[] = []): Promise<string> {
    const st = await store.stats();
    const out: string[] = [];
    out.push('# HELP exitnode_slot_nrs NRs allocated from a slot (ids in use).');
    out.push('# TYPE exitnode_slot_nrs gauge');
    for (const s of st.slots) out.push(`exitnode_slot_nrs{allocation="${s.allocation}",slot="${s.slot}"} ${s.nrs}`);
    out.push('# HELP exitnode_slot_epoch The lease epoch of a slot.');
    out.push('# TYPE exitnode_slot_epoch gauge');
    for (const s of st.slots)
      out.push(`exitnode_slot_epoch{allocation="${s.allocation}",slot="${s.slot}",node="${s.node ?? ''}"} ${s.epoch}`);
    // Stage 2: each candidate's reported VRRP state (one series per state, 1 for the current one),
    // its reported priority, and the VRRP transitions per slot.
    out.push('# HELP exitnode_vrrp_state The VRRP state a slot candidate last reported (1 for its state).');
    out.push('# TYPE exitnode_vrrp_state gauge');
    for (const c of st.candidates)
      for (const state of ['MASTER', 'BACKUP', 'FAULT', 'STOPPED'])
        out.push(
          `exitnode_vrrp_state{allocation="${c.allocation}",slot="${c.slot}",node="${c.node}",rank="${c.rank}",state="${state}"} ${c.state === state ? 1 : 0}`,
        );
    out.push('# HELP exitnode_vrrp_priority The VRRP priority a slot candidate last reported.');
    out.push('# TYPE exitnode_vrrp_priority gauge');
    for (const c of st.candidates)
      if (c.priority !== undefined)
        out.push(
          `exitnode_vrrp_priority{allocation="${c.allocation}",slot="${c.slot}",node="${c.node}"} ${c.priority}`,
        );
    out.push('# HELP exitnode_vrrp_transitions_total VRRP state changes reported by the candidates of a slot.');
    out.push('# TYPE exitnode_vrrp_transitions_total counter');
    for (const s of st.slots)
      if (s.vrrpTransitions !== undefined)
        out.push(`exitnode_vrrp_transitions_total{allocation="${s.allocation}",slot="${s.slot}"} ${s.vrrpTransitions}`);
    out.push(
      '# HELP exitnode_nrs Network resources in TNoDB.',
      '# TYPE exitnode_nrs gauge',
      `exitnode_nrs ${st.resources}`,
    );
    out.push(
      '# HELP exitnode_networks Tenant networks in TNoDB.',
      '# TYPE exitnode_networks gauge',
      `exitnode_networks ${st.networks}`,
    );
    out.push('# HELP exitnode_http_request_duration_seconds HTTP request latency.');
    out.push('# TYPE exitnode_http_request_duration_seconds histogram');
    for (const [k, h] of this.hist) {
      BUCKETS.forEach((b, i) =>
        out.push(`exitnode_http_request_duration_seconds_bucket{${k},le="${b}"} ${h.counts[i]}`),
      );
      out.push(`exitnode_http_request_duration_seconds_bucket{${k},le="+Inf"} ${h.count}`);
      out.push(`exitnode_http_request_duration_seconds_sum{${k}} ${h.sum}`);
      out.push(`exitnode_http_request_duration_seconds_count{${k}} ${h.count}`);
    }
    out.push(...extra);
    return `${out.join('\n')}\n`;
  }
}

/** The server's metrics: the store's and the requests' (Metrics.render), long-polls and views. */
export function renderMetrics(ctx: {
  store: Store;
  metrics: Metrics;
  polls: Pick<PollLimits, 'open' | 'refused'>;
  views: Pick<ViewCache, 'builds' | 'hits'>;
}): Promise<string> {
  const { polls, views } = ctx;
  return ctx.metrics.render(ctx.store, [
    '# HELP exitnode_longpolls_open View long-polls waiting now.',
    '# TYPE exitnode_longpolls_open gauge',
    `exitnode_longpolls_open ${polls.open}`,
    '# HELP exitnode_longpolls_refused_total Long-polls refused with 429 (limit per token, per server).',
    '# TYPE exitnode_longpolls_refused_total counter',
    `exitnode_longpolls_refused_total{limit="token"} ${polls.refused.token}`,
    `exitnode_longpolls_refused_total{limit="server"} ${polls.refused.server}`,
    '# HELP exitnode_view_builds_total Node views assembled (a version not served before).',
    '# TYPE exitnode_view_builds_total counter',
    `exitnode_view_builds_total ${views.builds}`,
    '# HELP exitnode_view_cache_hits_total View requests answered with bytes built before.',
    '# TYPE exitnode_view_cache_hits_total counter',
    `exitnode_view_cache_hits_total ${views.hits}`,
  ]);
}
