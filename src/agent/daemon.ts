// `exitnode agent run`: the long-running node agent. Four loops share one state and one pass queue:
//
//   view loop       long-polls GET /v1/nodes/{id}/view?after=V; a new version queues an incremental pass
//   heartbeat loop  POST /v1/nodes/{id}/heartbeat every heartbeatMs (well below the lease TTL);
//                   the answer is this node's leases (slot, epoch, expiry)
//   resync timer    queues a full pass (re-reads the kernel, repairs drift) every resyncMs
//   pass worker     one pass at a time: servable(view) → applyView → publish keys → report
//
// `servable()` is the one place that decides which slots this node may serve: by default
// `leasePolicy` (src/agent/fencing.ts) — only slots with a live lease of the view's epoch, not
// given up. A fence timer (every FENCE_TICK_MS) compares what the last pass built with what is
// servable now and fences at once what is not (uplink away first, then a full pass removes the
// gateway and its ExitPoints). Leases carry a local deadline and are kept in STATE/leases.json,
// so that a restarted agent judges the saved view's slots before its first heartbeat: a quick
// restart serves on, an agent that comes back after losing its slot removes it.
// Each heartbeat carries the gateways' health (src/agent/health.ts: the upstream router answers
// on the uplink) and the slots this node released after fencing (planned move).
//
// Restarting the agent must not drop traffic: startup applies the saved view with a full pass,
// which changes nothing when the kernel already holds it; wireguard-go runs detached with its
// output in a file (src/kernel/apply.ts), so it outlives the agent; SIGTERM stops the loops and
// exits without touching the data plane.

import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DesiredState } from '../compile/desired.js';
import { ExitnodeError, q } from '../core/errors.js';
import { parseNodeView, type NodeView } from '../core/view.js';
import { TnodbClient } from '../client/index.js';
import { applyView, viewFile, type PassResult } from './index.js';
import type { NodeConfig } from './config.js';
import { Metrics } from './metrics.js';
import { AgentErrors } from './errors.js';
import {
  DEFAULT_AGENT_MARGIN_MS,
  FENCE_TICK_MS,
  fenceGateway,
  fenceReason,
  leaseDeadline,
  leasePolicy,
  slotKey,
} from './fencing.js';
import { announceUplink, nextHealth, probeUplink, type SlotHealth } from './health.js';

export interface Lease {
  allocation: number;
  slot: number;
  epoch: number;
  /** Server time (ms since the epoch) at which the lease lapses unless renewed. */
  expiresAt: number;
  /** Local time of the heartbeat that granted it. */
  renewedAt: number;
  /** Local time until which this node may serve the slot (src/agent/fencing.ts). */
  deadline?: number;
  /** A planned move: this node fences and releases the slot. */
  movingTo?: string;
}

/** Decides which of the view's slots this node serves now (the failover issue's fencing hook). */
export interface SlotPolicy {
  servable(view: NodeView, state: DaemonState): NodeView['slots'];
}

/** Serve exactly the slots the view lists (no fencing: tests of the pass machinery). */
export const followView: SlotPolicy = { servable: (view) => view.slots };

export interface DaemonOptions {
  config: NodeConfig;
  server: string;
  token: string;
  /** HOST:PORT of /healthz and /metrics; port 0 picks one (written to STATE/agent.json). */
  metrics?: string;
  resyncMs?: number;
  heartbeatMs?: number;
  /** Long-poll wait in seconds. */
  waitS?: number;
  policy?: SlotPolicy;
  log?: (line: string) => void;
  /** The pass itself (tests put a fake kernel here; default applyView). */
  apply?: typeof applyView;
  /** The node gives up a slot this long before its lease lapses (default 1000 ms; see fencing.ts). */
  agentMarginMs?: number;
  /** Probe the upstream router from each gateway every heartbeat (default true). */
  healthCheck?: boolean;
}

export interface DaemonState {
  node: string;
  startedAt: number;
  /** Newest view received (from the server or the saved file). */
  view?: NodeView;
  viewSource?: 'saved' | 'server';
  /** Version of the last view applied without failures. */
  appliedVersion?: number;
  appliedAt?: number;
  lastPass?: { at: number; version?: number; full: boolean; size: number; failures: string[]; ms: number };
  serverReachable: boolean;
  lastServerContact?: number;
  leases: Lease[];
  lastHeartbeatOk?: number;
  /** Published keys by interface name (to avoid re-sending while the view catches up). */
  published: Record<string, string>;
  /** Slots ("A/E") this node fenced and gives up, with the epoch given up. */
  released: Record<string, number>;
  /** Gateway health by slot. */
  health: Record<string, SlotHealth>;
  /** Slots fenced, with when and why (the newest fence of each). */
  fenced: Record<string, { at: number; reason: string; ms: number; pass: number }>;
  /** Slots the last pass built a gateway for. */
  served: string[];
  /** The last drift repair (a full pass that changed the kernel under an applied view), and how many so far. */
  drift?: { n: number; at: number; objects: string[]; version: number };
}

export const DEFAULT_RESYNC_MS = 60_000;
export const DEFAULT_HEARTBEAT_MS = 1_000;
/** The agent's report to TNoDB (for the dashboard) is sent when it changes, else this often. */
export const REPORT_EVERY_MS = 10_000;

function counts(d: DesiredState): { labels: Record<string, string>; value: number }[] {
  const c: Record<string, number> = {
    namespace: d.namespaces.length,
    link: 0,
    address: 0,
    route: 0,
    nft_table: 0,
    nft_element: 0,
    wireguard: d.wireguard.length,
    wireguard_peer: 0,
  };
  for (const ns of d.namespaces) {
    c.link! += ns.links.length;
    c.address! += ns.addrs.length;
    c.route! += ns.routes.length;
    c.nft_table! += ns.nft.length;
    for (const t of ns.nft) for (const els of Object.values(t.sets)) c.nft_element! += els.length;
  }
  for (const w of d.wireguard) c.wireguard_peer! += w.peers.length;
  return Object.entries(c).map(([kind, value]) => ({ labels: { kind }, value }));
}

export class AgentDaemon {
  readonly state: DaemonState;
  readonly metrics = new Metrics();
  readonly client: TnodbClient;
  private readonly config: NodeConfig;
  private readonly opts: DaemonOptions;
  private readonly policy: SlotPolicy;
  private running = false;
  private abort = new AbortController();
  private timers: NodeJS.Timeout[] = [];
  private http?: Server;
  private previous?: DesiredState;
  private pending: { full: boolean; reasons: string[] } | undefined;
  private working: Promise<void> | undefined;
  private loops: Promise<void>[] = [];
  private passes = 0;
  private retry?: NodeJS.Timeout;
  private wakeHeartbeat?: () => void;
  private probing = false;
  private fencing = false;
  /** The last report sent to TNoDB (POST /v1/nodes/{id}/report, for the dashboard), and when. */
  private reported: { key: string; at: number; off?: number; failing?: boolean } = { key: '', at: 0 };
  metricsUrl?: string;

  constructor(opts: DaemonOptions) {
    this.opts = opts;
    this.config = opts.config;
    this.policy = opts.policy ?? leasePolicy();
    this.client = new TnodbClient({ server: opts.server, token: opts.token, timeoutMs: 5000 });
    this.state = {
      node: opts.config.node,
      startedAt: Date.now(),
      serverReachable: false,
      leases: [],
      published: {},
      released: {},
      health: {},
      fenced: {},
      served: [],
    };
  }

  log(event: string, fields: Record<string, unknown> = {}, level: 'info' | 'warn' | 'error' = 'info'): void {
    const line = JSON.stringify({ ts: new Date().toISOString(), level, node: this.config.node, event, ...fields });
    (this.opts.log ?? ((l: string) => process.stderr.write(l + '\n')))(line);
  }

  async start(): Promise<void> {
    this.running = true;
    if (this.opts.metrics) await this.listen(this.opts.metrics);
    // Leases as last granted, so that a fencing SlotPolicy can judge the saved view's slots at
    // start, before the first heartbeat answers (serving them on means no drop on restart).
    try {
      this.state.leases = JSON.parse(readFileSync(join(this.config.stateDir, 'leases.json'), 'utf8')) as Lease[];
    } catch {
      /* none yet */
    }
    const saved = viewFile(this.config.stateDir);
    if (existsSync(saved)) {
      try {
        this.state.view = parseNodeView(readFileSync(saved, 'utf8'));
        this.state.viewSource = 'saved';
        this.log('view.saved', { version: this.state.view.version, file: saved });
        this.requestPass(true, 'start from the saved view');
      } catch (e) {
        this.log('view.saved.unusable', { file: saved, error: (e as Error).message }, 'warn');
      }
    }
    this.loops.push(this.viewLoop(), this.heartbeatLoop());
    this.timers.push(setInterval(() => this.requestPass(true, 'resync'), this.opts.resyncMs ?? DEFAULT_RESYNC_MS));
    this.timers.push(setInterval(() => void this.checkFences(), FENCE_TICK_MS));
    this.log('agent.started', {
      server: this.opts.server,
      metrics: this.metricsUrl,
      resyncMs: this.opts.resyncMs ?? DEFAULT_RESYNC_MS,
      heartbeatMs: this.opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    });
  }

  /** Stops the loops; the data plane stays exactly as it is. */
  async stop(reason = 'stop'): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.abort.abort();
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.retry);
    this.pending = undefined;
    // A pass in flight finishes: interrupting `ip -batch` half-way would leave work for the next start.
    await this.working;
    await Promise.allSettled(this.loops);
    await new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r()));
    rmSync(join(this.config.stateDir, 'agent.json'), { force: true });
    this.log('agent.stopped', { reason, appliedVersion: this.state.appliedVersion });
  }

  /** Queues a pass over the newest view; a full pass re-reads the kernel. Coalesces requests. */
  requestPass(full: boolean, reason: string): void {
    if (!this.running || !this.state.view) return;
    if (this.pending) {
      this.pending.full ||= full;
      this.pending.reasons.push(reason);
    } else this.pending = { full, reasons: [reason] };
    this.kick();
  }

  private kick(): void {
    if (this.working || !this.pending || !this.running) return;
    // A request that lands between the worker's last look and its promise settling is picked up here.
    this.working = this.work().finally(() => {
      this.working = undefined;
      this.kick();
    });
  }

  private async work(): Promise<void> {
    while (this.pending && this.running) {
      const { full, reasons } = this.pending;
      this.pending = undefined;
      await this.pass(full || !this.previous, reasons);
    }
  }

  /** The view as this node may apply it: the slot policy decides which slots it serves. */
  servable(view: NodeView): NodeView {
    return { ...view, slots: this.policy.servable(view, this.state) };
  }

  private async pass(full: boolean, reasons: string[]): Promise<void> {
    const view = this.state.view!;
    const t0 = performance.now();
    let r: PassResult;
    const served = this.servable(view);
    try {
      r = await (this.opts.apply ?? applyView)(served, this.config, full ? {} : { previous: this.previous });
    } catch (e) {
      this.previous = undefined;
      const msg = e instanceof ExitnodeError ? e.message : String((e as Error).stack ?? e);
      this.state.lastPass = {
        at: Date.now(),
        version: view.version,
        full,
        size: 0,
        failures: [msg],
        ms: performance.now() - t0,
      };
      this.metrics.inc('exitnode_agent_pass_errors_total', 'Passes that threw before applying');
      this.log('pass.error', { version: view.version, error: msg }, 'error');
      return;
    }
    const ms = performance.now() - t0;
    const before = new Set(this.state.served);
    this.state.served = served.slots.map(slotKey);
    this.passes++;
    for (const k of this.state.served) {
      if (!before.has(k)) {
        this.log('slot.built', {
          slot: k,
          epoch: served.slots.find((x) => slotKey(x) === k)?.epoch,
          version: view.version,
          ms: Math.round(ms),
        });
        const [al, sl] = k.split('/').map(Number) as [number, number];
        void announceUplink(this.config, view, { allocation: al, slot: sl }).then((r) =>
          this.log('slot.announced', { slot: k, ...r }, r.failed.length ? 'warn' : 'info'),
        );
      }
    }
    const failures = r.failures.map((f) => `${f.object}: ${f.reason}`);
    this.previous = failures.length ? undefined : r.desired;
    this.state.lastPass = { at: Date.now(), version: view.version, full, size: r.size, failures, ms };
    const changed = r.plan.steps.flatMap((s) => s.objects);
    const kind = full ? 'full' : 'incremental';
    this.metrics.observe(
      'exitnode_agent_reconcile_seconds',
      'Duration of a reconcile pass (compile, observe, diff, apply)',
      ms / 1000,
      { kind },
    );
    this.metrics.inc('exitnode_agent_passes_total', 'Reconcile passes', 1, {
      kind,
      result: failures.length ? 'failed' : 'ok',
    });
    this.metrics.gaugeSet(
      'exitnode_agent_objects',
      'Kernel objects this node holds for its view, by kind',
      counts(r.desired),
    );
    // A full pass that changes something while the view is the one already applied is drift repair.
    if (full && r.size > 0 && this.state.appliedVersion === view.version) {
      this.metrics.inc(
        'exitnode_agent_drift_repairs_total',
        'Objects a full pass found different from the applied view and repaired',
        changed.length,
      );
      this.log('drift.repaired', { version: view.version, objects: changed });
      this.state.drift = { n: (this.state.drift?.n ?? 0) + 1, at: Date.now(), objects: changed, version: view.version };
    }
    if (!failures.length) {
      this.state.appliedVersion = view.version;
      this.state.appliedAt = Date.now();
      this.metrics.gauge(
        'exitnode_agent_applied_view_version',
        'Version of the last view applied without failures',
        view.version,
      );
    } else {
      this.metrics.inc('exitnode_agent_apply_failures_total', 'Objects that failed to apply', failures.length);
      // Do not wait for the next view or resync: a slot's rebuild may be what failed.
      if (!this.retry)
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.requestPass(true, 'retry after failures');
        }, 1000);
    }
    if (r.size > 0 || failures.length) {
      this.log(
        failures.length ? 'pass.failed' : 'pass.applied',
        {
          version: view.version,
          kind,
          reasons,
          size: r.size,
          ms: Math.round(ms),
          changed: changed.slice(0, 50),
          ...(changed.length > 50 ? { more: changed.length - 50 } : {}),
          failures,
        },
        failures.length ? 'error' : 'info',
      );
    }
    // A key whose interface failed to come up is published by the pass that completes it: a peer
    // that learns it earlier starts its handshake into the void and retries only after 5 s.
    const broken = new Set(failures.flatMap((f) => [...f.matchAll(/\bwg-[0-9a-f]{4}-\d+\b/g)].map((m) => m[0])));
    await this.publishKeys(view, Object.fromEntries(Object.entries(r.publicKeys).filter(([k]) => !broken.has(k))));
    // A pass that started before a fence may have put the uplink back: look again now.
    void this.checkFences();
  }

  /**
   * Fences every slot the last pass built that is not servable now (lease deadline passed, slot
   * gone from the heartbeat answer, planned move), then queues a full pass without it; queues a
   * pass for a slot that became servable. Runs every FENCE_TICK_MS and after each heartbeat/pass.
   */
  async checkFences(): Promise<void> {
    if (!this.running || !this.state.view || this.fencing) return;
    this.fencing = true;
    try {
      const now = Date.now();
      const servable = this.servable(this.state.view).slots;
      const keys = new Set(servable.map(slotKey));
      let pass = false;
      for (const k of this.state.served) {
        if (keys.has(k)) continue;
        if (this.state.fenced[k]?.pass === this.passes) continue;
        const [a, e] = k.split('/').map(Number) as [number, number];
        const l = this.state.leases.find((x) => x.allocation === a && x.slot === e);
        const reason = fenceReason(l, now, this.state.released[k] !== undefined);
        const f = await fenceGateway(this.config, { allocation: a, slot: e });
        this.state.fenced[k] = { at: Date.now(), reason, ms: f.ms, pass: this.passes };
        this.metrics.inc(
          'exitnode_agent_fences_total',
          'Gateways this node fenced (uplink taken away) because it may no longer serve the slot',
          1,
          { allocation: String(a), slot: String(e) },
        );
        this.log(
          'slot.fenced',
          {
            slot: k,
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
      if (pass) this.requestPass(true, 'fence');
      else if (!this.pending && !this.working && [...keys].some((k) => !this.state.served.includes(k)))
        this.requestPass(false, 'lease granted');
      // A planned move: once the gateway is gone (the pass without the slot ran), release it.
      if (Object.keys(this.state.released).some((k) => !this.state.served.includes(k))) this.wakeHeartbeat?.();
      this.metrics.gaugeSet(
        'exitnode_agent_slot_served',
        'Slots whose gateway this node serves now (1) or holds a lease for but does not serve (0)',
        this.state.leases.map((l) => ({
          labels: { allocation: String(l.allocation), slot: String(l.slot) },
          value: keys.has(slotKey(l)) ? 1 : 0,
        })),
      );
    } finally {
      this.fencing = false;
    }
  }

  /** One probe round over the gateways this node serves (not awaited by the heartbeat loop). */
  private async probeAll(): Promise<void> {
    if (this.probing || this.opts.healthCheck === false || !this.state.view) return;
    this.probing = true;
    try {
      const view = this.state.view;
      const keys = new Set(this.servable(view).slots.map(slotKey));
      await Promise.all(
        this.state.served
          .filter((k) => keys.has(k))
          .map(async (k) => {
            const [a, e] = k.split('/').map(Number) as [number, number];
            const t0 = performance.now();
            const failure = await probeUplink(this.config, view, { allocation: a, slot: e }).catch(
              (err: unknown) => `probe failed: ${(err as Error).message}`,
            );
            const prev = this.state.health[k];
            const h = nextHealth(prev, failure, Date.now(), performance.now() - t0);
            this.state.health[k] = h;
            if ((prev?.healthy ?? true) !== h.healthy) {
              this.log(
                h.healthy ? 'slot.healthy' : 'slot.unhealthy',
                { slot: k, ...(h.reason ? { reason: h.reason } : {}) },
                h.healthy ? 'info' : 'error',
              );
              // A gateway that cannot forward loses nothing by fencing: give the slot up now (fence,
              // remove, release) rather than wait for the lease, so that it moves to a healthy node.
              const l = this.state.leases.find((x) => slotKey(x) === k);
              if (!h.healthy && l && this.state.released[k] === undefined) this.state.released[k] = l.epoch;
              this.wakeHeartbeat?.();
            }
            this.metrics.gaugeSet(
              'exitnode_agent_slot_healthy',
              "Whether the upstream router answers from the slot's gateway (1) or not (0)",
              Object.entries(this.state.health).map(([kk, v]) => ({ labels: { slot: kk }, value: v.healthy ? 1 : 0 })),
            );
          }),
      );
      for (const k of Object.keys(this.state.health))
        if (!keys.has(k) || !this.state.served.includes(k)) delete this.state.health[k];
    } finally {
      this.probing = false;
    }
  }

  /** Sends TNoDB the public key of every NR of this node whose view entry lacks it or differs. */
  private async publishKeys(view: NodeView, keys: Record<string, string>): Promise<void> {
    if (this.state.viewSource !== 'server' && !this.state.serverReachable) return;
    for (const n of view.networks) {
      for (const r of n.resources) {
        if (r.node !== this.config.node) continue;
        const name = `wg-${r.id}-${n.allocation}`;
        const key = keys[name];
        if (!key || key === r.publicKey || this.state.published[name] === key) continue;
        try {
          await this.client.publishKey(n.id, r.id, key);
          this.state.published[name] = key;
          this.log('key.published', { version: view.version, network: n.id, nr: r.id, interface: name });
        } catch (e) {
          this.log('key.publish.failed', { network: n.id, nr: r.id, error: (e as Error).message }, 'warn');
        }
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((res) => {
      const t = setTimeout(res, ms);
      this.abort.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          res();
        },
        { once: true },
      );
    });
  }

  private reachable(ok: boolean, error?: string): void {
    if (ok) this.state.lastServerContact = Date.now();
    if (ok !== this.state.serverReachable) {
      this.state.serverReachable = ok;
      this.log(
        ok ? 'server.reachable' : 'server.unreachable',
        ok ? { server: this.opts.server } : { server: this.opts.server, error },
        ok ? 'info' : 'warn',
      );
    }
    this.metrics.gauge('exitnode_agent_server_reachable', 'Whether the last request to TNoDB succeeded', ok ? 1 : 0);
  }

  private async viewLoop(): Promise<void> {
    let backoff = 200;
    while (this.running) {
      const known = this.state.viewSource === 'server' ? this.state.view?.version : undefined;
      try {
        const raw = await this.client.view(this.config.node, {
          ...(known !== undefined ? { after: known } : {}),
          waitS: this.opts.waitS ?? 25,
          signal: this.abort.signal,
        });
        this.reachable(true);
        backoff = 200;
        let v: NodeView;
        try {
          v = parseNodeView(raw);
        } catch (e) {
          // The server answered, but with a view this agent refuses: keep serving the last good
          // one and ask again later rather than hammering the server.
          this.metrics.inc('exitnode_agent_views_refused_total', 'Views from TNoDB that failed validation');
          this.log(
            'view.refused',
            { version: (raw as { version?: unknown }).version, error: (e as Error).message },
            'error',
          );
          await this.sleep(5000);
          continue;
        }
        if (v.node.id !== this.config.node)
          throw new ExitnodeError(
            AgentErrors.CONFIG_INVALID,
            `the server sent the view of node ${q(v.node.id)} to node ${q(this.config.node)}`,
          );
        this.metrics.gauge('exitnode_agent_view_version', 'Newest view version received from TNoDB', v.version);
        if (v.version !== known) {
          const before = this.state.view;
          this.state.view = v;
          this.state.viewSource = 'server';
          this.log('view.received', {
            version: v.version,
            previous: before?.version,
            networks: v.networks.length,
            slots: v.slots.map((s) => `${s.allocation}/${s.slot}@${s.epoch}`),
          });
          // A view equal to the saved one still needs no full pass: the startup pass covered it.
          this.requestPass(false, `view ${v.version}`);
          // A slot given to this node (or a planned move) is confirmed by a heartbeat: send one now.
          this.wakeHeartbeat?.();
        }
      } catch (e) {
        if (!this.running) return;
        this.reachable(false, (e as Error).message);
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  private async heartbeatLoop(): Promise<void> {
    const every = this.opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    const margin = this.opts.agentMarginMs ?? DEFAULT_AGENT_MARGIN_MS;
    while (this.running) {
      const sent = Date.now();
      try {
        // Health of the gateways built; release of slots fenced for a planned move whose gateway is gone.
        const slots = Object.entries(this.state.health)
          .filter(([k]) => this.state.served.includes(k))
          .map(([k, h]) => {
            const [allocation, slot] = k.split('/').map(Number) as [number, number];
            return { allocation, slot, healthy: h.healthy, ...(h.reason ? { reason: h.reason } : {}) };
          });
        const release = Object.entries(this.state.released)
          .filter(([k]) => !this.state.served.includes(k))
          .map(([k, epoch]) => {
            const [allocation, slot] = k.split('/').map(Number) as [number, number];
            return { allocation, slot, epoch };
          });
        const r = await this.client.heartbeat(
          this.config.node,
          slots.length || release.length
            ? { ...(slots.length ? { slots } : {}), ...(release.length ? { release } : {}) }
            : undefined,
        );
        this.reachable(true);
        const now = Date.now();
        this.state.lastHeartbeatOk = now;
        if (release.length) this.log('slots.released', { slots: release.map((x) => `${slotKey(x)}@${x.epoch}`) });
        const before = this.state.leases.map((l) => `${l.allocation}/${l.slot}@${l.epoch}`).join(',');
        this.state.leases = r.slots.map((s) => ({
          allocation: s.allocation,
          slot: s.slot,
          epoch: s.epoch,
          expiresAt: s.leaseExpiresAt,
          renewedAt: sent,
          deadline: leaseDeadline(sent, s.leaseExpiresAt, r.now, margin),
          ...(s.movingTo ? { movingTo: s.movingTo } : {}),
        }));
        // A release is done once the server no longer lists the slot under that epoch.
        for (const [k, epoch] of Object.entries(this.state.released)) {
          const l = this.state.leases.find((x) => slotKey(x) === k);
          if (!l || l.epoch !== epoch) delete this.state.released[k];
        }
        for (const l of this.state.leases) {
          if (l.movingTo && this.state.released[slotKey(l)] === undefined) {
            this.state.released[slotKey(l)] = l.epoch;
            this.log('slot.moving', { slot: slotKey(l), epoch: l.epoch, to: l.movingTo });
          }
        }
        const after = this.state.leases.map((l) => `${l.allocation}/${l.slot}@${l.epoch}`).join(',');
        this.saveLeases();
        if (before !== after)
          this.log('leases.changed', {
            leases: after === '' ? [] : after.split(','),
            version: this.state.view?.version,
          });
        this.metrics.gaugeSet(
          'exitnode_agent_lease_seconds_left',
          'Seconds until each held slot lease lapses (server clock)',
          this.state.leases.map((l) => ({
            labels: { allocation: String(l.allocation), slot: String(l.slot), epoch: String(l.epoch) },
            value: Math.max(0, (l.expiresAt - (r.now ?? now)) / 1000),
          })),
        );
        this.metrics.gauge('exitnode_agent_heartbeat_ok', 'Whether the last heartbeat succeeded', 1);
        await this.checkFences();
        void this.probeAll();
        void this.sendReport();
        await this.heartbeatSleep(Math.max(0, every - (Date.now() - sent)));
      } catch (e) {
        if (!this.running) return;
        this.reachable(false, (e as Error).message);
        this.metrics.gauge('exitnode_agent_heartbeat_ok', 'Whether the last heartbeat succeeded', 0);
        // Retry sooner than the interval: right after TNoDB comes back the lease should be renewed
        // before the server's sweep looks at it.
        await this.heartbeatSleep(Math.min(every, 250));
      }
    }
  }

  /** Sleeps until the next heartbeat is due, or until something wants one now. */
  private heartbeatSleep(ms: number): Promise<void> {
    return new Promise((res) => {
      const done = (): void => {
        clearTimeout(t);
        this.wakeHeartbeat = undefined;
        res();
      };
      const t = setTimeout(done, ms);
      this.wakeHeartbeat = done;
      this.abort.signal.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Tells TNoDB how this agent is (the dashboard's nodes view; drift repairs and status changes
   * become events there): when it changed, else every REPORT_EVERY_MS. Off the lease path: a
   * failure is only logged, and a server without the route (404) is asked again after 10 minutes.
   */
  private async sendReport(): Promise<void> {
    const now = Date.now();
    if (this.reported.off && now < this.reported.off) return;
    const h = this.health();
    const s = this.state;
    const report = {
      status: h.status as 'ok' | 'degraded',
      appliedVersion: s.appliedVersion ?? null,
      viewVersion: s.view?.version ?? null,
      viewSource: s.viewSource ?? null,
      serverReachable: s.serverReachable,
      served: s.served,
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
      await this.client.request('POST', `/v1/nodes/${encodeURIComponent(this.config.node)}/report`, {
        ...report,
        lastServerContactAgoMs: s.lastServerContact !== undefined ? Math.max(0, now - s.lastServerContact) : null,
        uptimeS: Math.round((now - s.startedAt) / 1000),
      });
    } catch (e) {
      const status = (e as ExitnodeError).details?.status;
      if (status === 404) this.reported.off = now + 600_000;
      this.reported.key = '';
      this.reported.failing = true;
      // Once per run of failures: the heartbeat's own errors already tell an unreachable server.
      if (!failing) this.log('report.failed', { error: (e as Error).message }, 'warn');
    }
  }

  private saveLeases(): void {
    try {
      mkdirSync(this.config.stateDir, { recursive: true, mode: 0o700 });
      const f = join(this.config.stateDir, 'leases.json');
      writeFileSync(`${f}.${process.pid}`, JSON.stringify(this.state.leases) + '\n', { mode: 0o600 });
      renameSync(`${f}.${process.pid}`, f);
    } catch (e) {
      this.log('leases.save.failed', { error: (e as Error).message }, 'warn');
    }
  }

  health(): Record<string, unknown> {
    const s = this.state;
    const ok =
      s.appliedVersion !== undefined &&
      s.appliedVersion === s.view?.version &&
      !s.lastPass?.failures.length &&
      Object.values(s.health).every((h) => h.healthy);
    return {
      status: ok ? 'ok' : 'degraded',
      node: s.node,
      pid: process.pid,
      appliedVersion: s.appliedVersion ?? null,
      viewVersion: s.view?.version ?? null,
      viewSource: s.viewSource ?? null,
      appliedAt: s.appliedAt ?? null,
      serverReachable: s.serverReachable,
      lastServerContact: s.lastServerContact ?? null,
      lastPass: s.lastPass ?? null,
      leases: s.leases,
      lastHeartbeatOk: s.lastHeartbeatOk ?? null,
      servedSlots: s.view ? this.servable(s.view).slots : [],
      slots: s.leases.map((l) => {
        const k = slotKey(l);
        return {
          slot: k,
          epoch: l.epoch,
          served: s.served.includes(k),
          deadlineInMs: l.deadline !== undefined ? l.deadline - Date.now() : null,
          health: s.health[k] ?? null,
          ...(l.movingTo ? { movingTo: l.movingTo } : {}),
          ...(s.released[k] !== undefined ? { released: true } : {}),
        };
      }),
      fenced: s.fenced,
    };
  }

  private async listen(addr: string): Promise<void> {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(addr);
    if (!m || Number(m[3]) > 65535)
      throw new ExitnodeError(
        AgentErrors.CONFIG_INVALID,
        `--metrics ${q(addr)} must be HOST:PORT (e.g. 127.0.0.1:9464)`,
      );
    const host = m[1] ?? m[2]!;
    this.http = createServer((req, res) => {
      if (req.url === '/healthz') {
        const h = this.health();
        res
          .writeHead(h.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify(h) + '\n');
      } else if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.metrics.text());
      } else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /healthz, /metrics\n');
    });
    await new Promise<void>((res, rej) => {
      this.http!.once('error', (e) =>
        rej(
          new ExitnodeError(
            AgentErrors.CONFIG_INVALID,
            `cannot listen on --metrics ${q(addr)}: ${(e as NodeJS.ErrnoException).code ?? e.message}`,
          ),
        ),
      );
      this.http!.listen(Number(m[3]), host, () => res());
    });
    const a = this.http.address();
    const port = typeof a === 'object' && a ? a.port : Number(m[3]);
    this.metricsUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    mkdirSync(this.config.stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(
      join(this.config.stateDir, 'agent.json'),
      JSON.stringify({ pid: process.pid, node: this.config.node, metrics: this.metricsUrl, server: this.opts.server }) +
        '\n',
      { mode: 0o600 },
    );
  }
}

/** Runs the daemon until SIGTERM/SIGINT; resolves with the exit code. */
export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const d = new AgentDaemon(opts);
  await d.start();
  await new Promise<void>((res) => {
    const onSignal = (sig: string): void => {
      process.off('SIGTERM', term);
      process.off('SIGINT', int);
      d.stop(sig).then(res, res);
    };
    const term = (): void => onSignal('SIGTERM');
    const int = (): void => onSignal('SIGINT');
    process.on('SIGTERM', term);
    process.on('SIGINT', int);
  });
  return 0;
}
