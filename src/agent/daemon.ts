// `exitnode agent run`: the long-running node agent. Four loops share one state and one pass queue:
//
//   view loop       long-polls GET /v1/nodes/{id}/view?after=V; a new version queues an incremental pass
//   heartbeat loop  POST /v1/nodes/{id}/heartbeat every heartbeatMs (well below the lease TTL);
//                   the answer is this node's leases (slot, epoch, expiry)
//   resync timer    queues a full pass (re-reads the kernel, repairs drift) every resyncMs
//   pass worker     one pass at a time: servable(view) → applyView → publish keys → report
//
// `servable()` is the one place that decides which slots this node may serve: today it follows
// the view; the failover issue plugs its fencing in there (a SlotPolicy that drops a slot whose
// lease the node could not renew in time, or for which it saw a higher epoch) and calls
// `requestPass('full', …)` from its uplink health checks. Leases (from heartbeats) and the view's
// slot epochs are both kept in `state` for that purpose, and the leases also in STATE/leases.json,
// so that the policy can judge the saved view's slots at start, before the first heartbeat.
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

export interface Lease {
  allocation: number;
  slot: number;
  epoch: number;
  /** Server time (ms since the epoch) at which the lease lapses unless renewed. */
  expiresAt: number;
  /** Local time of the heartbeat that granted it. */
  renewedAt: number;
}

/** Decides which of the view's slots this node serves now (the failover issue's fencing hook). */
export interface SlotPolicy {
  servable(view: NodeView, state: DaemonState): NodeView['slots'];
}

/** Serve exactly the slots the view lists. */
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
}

export const DEFAULT_RESYNC_MS = 60_000;
export const DEFAULT_HEARTBEAT_MS = 1_000;

function counts(d: DesiredState): { labels: Record<string, string>; value: number }[] {
  const c: Record<string, number> = { namespace: d.namespaces.length, link: 0, address: 0, route: 0, nft_table: 0, nft_element: 0, wireguard: d.wireguard.length, wireguard_peer: 0 };
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
  metricsUrl?: string;

  constructor(opts: DaemonOptions) {
    this.opts = opts;
    this.config = opts.config;
    this.policy = opts.policy ?? followView;
    this.client = new TnodbClient({ server: opts.server, token: opts.token, timeoutMs: 5000 });
    this.state = { node: opts.config.node, startedAt: Date.now(), serverReachable: false, leases: [], published: {} };
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
    } catch { /* none yet */ }
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
    this.log('agent.started', { server: this.opts.server, metrics: this.metricsUrl, resyncMs: this.opts.resyncMs ?? DEFAULT_RESYNC_MS, heartbeatMs: this.opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS });
  }

  /** Stops the loops; the data plane stays exactly as it is. */
  async stop(reason = 'stop'): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.abort.abort();
    for (const t of this.timers) clearInterval(t);
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
    try {
      r = await (this.opts.apply ?? applyView)(this.servable(view), this.config, full ? {} : { previous: this.previous });
    } catch (e) {
      this.previous = undefined;
      const msg = e instanceof ExitnodeError ? e.message : String((e as Error).stack ?? e);
      this.state.lastPass = { at: Date.now(), version: view.version, full, size: 0, failures: [msg], ms: performance.now() - t0 };
      this.metrics.inc('exitnode_agent_pass_errors_total', 'Passes that threw before applying');
      this.log('pass.error', { version: view.version, error: msg }, 'error');
      return;
    }
    const ms = performance.now() - t0;
    const failures = r.failures.map((f) => `${f.object}: ${f.reason}`);
    this.previous = failures.length ? undefined : r.desired;
    this.state.lastPass = { at: Date.now(), version: view.version, full, size: r.size, failures, ms };
    const changed = r.plan.steps.flatMap((s) => s.objects);
    const kind = full ? 'full' : 'incremental';
    this.metrics.observe('exitnode_agent_reconcile_seconds', 'Duration of a reconcile pass (compile, observe, diff, apply)', ms / 1000, { kind });
    this.metrics.inc('exitnode_agent_passes_total', 'Reconcile passes', 1, { kind, result: failures.length ? 'failed' : 'ok' });
    this.metrics.gaugeSet('exitnode_agent_objects', 'Kernel objects this node holds for its view, by kind', counts(r.desired));
    // A full pass that changes something while the view is the one already applied is drift repair.
    if (full && r.size > 0 && this.state.appliedVersion === view.version) {
      this.metrics.inc('exitnode_agent_drift_repairs_total', 'Objects a full pass found different from the applied view and repaired', changed.length);
      this.log('drift.repaired', { version: view.version, objects: changed });
    }
    if (!failures.length) {
      this.state.appliedVersion = view.version;
      this.state.appliedAt = Date.now();
      this.metrics.gauge('exitnode_agent_applied_view_version', 'Version of the last view applied without failures', view.version);
    } else {
      this.metrics.inc('exitnode_agent_apply_failures_total', 'Objects that failed to apply', failures.length);
    }
    if (r.size > 0 || failures.length) {
      this.log(failures.length ? 'pass.failed' : 'pass.applied', {
        version: view.version, kind, reasons, size: r.size, ms: Math.round(ms), changed: changed.slice(0, 50), ...(changed.length > 50 ? { more: changed.length - 50 } : {}), failures,
      }, failures.length ? 'error' : 'info');
    }
    await this.publishKeys(view, r.publicKeys);
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
      this.abort.signal.addEventListener('abort', () => { clearTimeout(t); res(); }, { once: true });
    });
  }

  private reachable(ok: boolean, error?: string): void {
    if (ok) this.state.lastServerContact = Date.now();
    if (ok !== this.state.serverReachable) {
      this.state.serverReachable = ok;
      this.log(ok ? 'server.reachable' : 'server.unreachable', ok ? { server: this.opts.server } : { server: this.opts.server, error }, ok ? 'info' : 'warn');
    }
    this.metrics.gauge('exitnode_agent_server_reachable', 'Whether the last request to TNoDB succeeded', ok ? 1 : 0);
  }

  private async viewLoop(): Promise<void> {
    let backoff = 200;
    while (this.running) {
      const known = this.state.viewSource === 'server' ? this.state.view?.version : undefined;
      try {
        const raw = await this.client.view(this.config.node, { ...(known !== undefined ? { after: known } : {}), waitS: this.opts.waitS ?? 25, signal: this.abort.signal });
        this.reachable(true);
        backoff = 200;
        let v: NodeView;
        try {
          v = parseNodeView(raw);
        } catch (e) {
          // The server answered, but with a view this agent refuses: keep serving the last good
          // one and ask again later rather than hammering the server.
          this.metrics.inc('exitnode_agent_views_refused_total', 'Views from TNoDB that failed validation');
          this.log('view.refused', { version: (raw as { version?: unknown }).version, error: (e as Error).message }, 'error');
          await this.sleep(5000);
          continue;
        }
        if (v.node.id !== this.config.node) throw new ExitnodeError(AgentErrors.CONFIG_INVALID, `the server sent the view of node ${q(v.node.id)} to node ${q(this.config.node)}`);
        this.metrics.gauge('exitnode_agent_view_version', 'Newest view version received from TNoDB', v.version);
        if (v.version !== known) {
          const before = this.state.view;
          this.state.view = v;
          this.state.viewSource = 'server';
          this.log('view.received', { version: v.version, previous: before?.version, networks: v.networks.length, slots: v.slots.map((s) => `${s.allocation}/${s.slot}@${s.epoch}`) });
          // A view equal to the saved one still needs no full pass: the startup pass covered it.
          this.requestPass(false, `view ${v.version}`);
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
    while (this.running) {
      const sent = Date.now();
      try {
        const r = await this.client.heartbeat(this.config.node);
        this.reachable(true);
        const now = Date.now();
        this.state.lastHeartbeatOk = now;
        const before = this.state.leases.map((l) => `${l.allocation}/${l.slot}@${l.epoch}`).join(',');
        this.state.leases = r.slots.map((s) => ({ allocation: s.allocation, slot: s.slot, epoch: s.epoch, expiresAt: s.leaseExpiresAt, renewedAt: sent }));
        const after = this.state.leases.map((l) => `${l.allocation}/${l.slot}@${l.epoch}`).join(',');
        this.saveLeases();
        if (before !== after) this.log('leases.changed', { leases: after === '' ? [] : after.split(','), version: this.state.view?.version });
        this.metrics.gaugeSet('exitnode_agent_lease_seconds_left', 'Seconds until each held slot lease lapses (server clock)',
          this.state.leases.map((l) => ({ labels: { allocation: String(l.allocation), slot: String(l.slot), epoch: String(l.epoch) }, value: Math.max(0, (l.expiresAt - now) / 1000) })));
        this.metrics.gauge('exitnode_agent_heartbeat_ok', 'Whether the last heartbeat succeeded', 1);
        await this.sleep(Math.max(0, every - (Date.now() - sent)));
      } catch (e) {
        if (!this.running) return;
        this.reachable(false, (e as Error).message);
        this.metrics.gauge('exitnode_agent_heartbeat_ok', 'Whether the last heartbeat succeeded', 0);
        // Retry sooner than the interval: right after TNoDB comes back the lease should be renewed
        // before the server's sweep looks at it.
        await this.sleep(Math.min(every, 250));
      }
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
    const ok = s.appliedVersion !== undefined && s.appliedVersion === s.view?.version && !s.lastPass?.failures.length;
    return {
      status: ok ? 'ok' : 'degraded', node: s.node, pid: process.pid,
      appliedVersion: s.appliedVersion ?? null, viewVersion: s.view?.version ?? null, viewSource: s.viewSource ?? null,
      appliedAt: s.appliedAt ?? null, serverReachable: s.serverReachable, lastServerContact: s.lastServerContact ?? null,
      lastPass: s.lastPass ?? null, leases: s.leases, lastHeartbeatOk: s.lastHeartbeatOk ?? null,
      servedSlots: s.view ? this.servable(s.view).slots : [],
    };
  }

  private async listen(addr: string): Promise<void> {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(addr);
    if (!m || Number(m[3]) > 65535) throw new ExitnodeError(AgentErrors.CONFIG_INVALID, `--metrics ${q(addr)} must be HOST:PORT (e.g. 127.0.0.1:9464)`);
    const host = m[1] ?? m[2]!;
    this.http = createServer((req, res) => {
      if (req.url === '/healthz') {
        const h = this.health();
        res.writeHead(h.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h) + '\n');
      } else if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.metrics.text());
      } else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /healthz, /metrics\n');
    });
    await new Promise<void>((res, rej) => {
      this.http!.once('error', (e) => rej(new ExitnodeError(AgentErrors.CONFIG_INVALID, `cannot listen on --metrics ${q(addr)}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
      this.http!.listen(Number(m[3]), host, () => res());
    });
    const a = this.http.address();
    const port = typeof a === 'object' && a ? a.port : Number(m[3]);
    this.metricsUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    mkdirSync(this.config.stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(this.config.stateDir, 'agent.json'), JSON.stringify({ pid: process.pid, node: this.config.node, metrics: this.metricsUrl, server: this.opts.server }) + '\n', { mode: 0o600 });
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
