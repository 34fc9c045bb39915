// `exitnode agent run`: the long-running node agent. Its parts share one state (src/agent/state.ts)
// and one pass queue, each in its own file:
//
//   view loop       src/agent/view-loop.ts   long-polls the view; a new version queues an incremental pass
//   heartbeat loop  src/agent/heartbeat.ts   every heartbeatMs; the answer is this node's leases
//   resync timer    here                     queues a full pass (re-reads the kernel, repairs drift) every resyncMs
//   fence timer     src/agent/fencing.ts     every FENCE_TICK_MS: fences what may no longer be served
//   probes          src/agent/health.ts      after each heartbeat: does the upstream answer on each uplink
//   pass worker     src/agent/passes.ts      one pass at a time: servable(view) → applyView → keys → report
//   key publishing  src/agent/keys.ts        public keys of this node's NRs to TNoDB
//   report          src/agent/report.ts      after each heartbeat: how this agent is, to TNoDB (the dashboard)
//   HTTP endpoint   src/agent/http.ts        /healthz and /metrics
//
// `servable()` is the one place that decides which slots this node may serve: by default
// `leasePolicy` (src/agent/fencing.ts) — only slots with a live lease of the view's epoch, not
// given up. Everything the daemon does to the node goes through its Kernel, and every wait and
// timestamp through its Clock (src/kernel/kernel.ts): the CLI gives the real ones, the unit tests
// the in-memory fakes.
//
// Restarting the agent must not drop traffic: startup applies the saved view with a full pass,
// which changes nothing when the kernel already holds it; wireguard-go runs detached with its
// output in a file (src/kernel/apply.ts), so it outlives the agent; SIGTERM stops the loops and
// exits without touching the data plane.

import type { Server } from 'node:http';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseNodeView, type NodeView } from '../core/view.js';
import { VERSION } from '../core/version.js';
import { TnodbClient } from '../client/index.js';
import type { Clock, Kernel } from '../kernel/kernel.js';
import type { NodeConfig } from './config.js';
import type { AgentContext, LogLevel } from './context.js';
import { DEFAULT_AGENT_MARGIN_MS, FENCE_TICK_MS, Fencer, leasePolicy } from './fencing.js';
import { announceUplink, Prober } from './health.js';
import { DEFAULT_HEARTBEAT_MS, Heartbeat, loadLeases } from './heartbeat.js';
import { healthReport, listen } from './http.js';
import { viewFile } from './index.js';
import { publishableKeys, publishKeys } from './keys.js';
import { Metrics } from './metrics.js';
import { PassWorker } from './passes.js';
import { Reporter } from './report.js';
import { sameSlot, slotKey } from './slot.js';
import { newDaemonState, type DaemonState, type SlotPolicy } from './state.js';
import { DEFAULT_VIEW_WAIT_S, viewLoop } from './view-loop.js';
import { nodeKeyOf, prepareExitKeys, publishNodeKey, sealExitKeys } from './exit-keys.js';
import { VrrpFollower } from './vrrp.js';

export type { DaemonState, Lease, SlotPolicy } from './state.js';
export { followView } from './fencing.js';
export { DEFAULT_HEARTBEAT_MS } from './heartbeat.js';

export interface DaemonOptions {
  config: NodeConfig;
  server: string;
  token: string;
  /** The node's kernel (src/kernel/linux.ts; tests: src/kernel/fake.ts). */
  kernel: Kernel;
  /** Time for every timestamp and wait (src/kernel/clock.ts; tests: src/kernel/fake-clock.ts). */
  clock: Clock;
  /** HOST:PORT of /healthz and /metrics; port 0 picks one (written to STATE/agent.json). */
  metrics?: string;
  resyncMs?: number;
  heartbeatMs?: number;
  /** Long-poll wait in seconds. */
  waitS?: number;
  policy?: SlotPolicy;
  log?: (line: string) => void;
  /** The node gives up a slot this long before its lease lapses (default 1000 ms; see fencing.ts). */
  agentMarginMs?: number;
  /** Probe the upstream router from each gateway every heartbeat (default true). */
  healthCheck?: boolean;
}

export const DEFAULT_RESYNC_MS = 60_000;

export class AgentDaemon implements AgentContext {
  readonly state: DaemonState;
  readonly metrics = new Metrics();
  readonly client: TnodbClient;
  readonly config: NodeConfig;
  readonly server: string;
  readonly kernel: Kernel;
  readonly clock: Clock;
  metricsUrl?: string;
  private readonly opts: DaemonOptions;
  private readonly policy: SlotPolicy;
  private readonly abort = new AbortController();
  private readonly worker: PassWorker;
  private readonly fencer: Fencer;
  private readonly prober: Prober;
  private readonly heartbeat: Heartbeat;
  private readonly reporter: Reporter;
  readonly vrrp: VrrpFollower;
  private isRunning = false;
  private http?: Server;
  private loops: Promise<void>[] = [];

  constructor(opts: DaemonOptions) {
    this.opts = opts;
    this.config = opts.config;
    this.server = opts.server;
    this.kernel = opts.kernel;
    this.clock = opts.clock;
    this.policy = opts.policy ?? leasePolicy(() => this.clock.now());
    this.client = new TnodbClient({ server: opts.server, token: opts.token, timeoutMs: 5000 });
    this.state = newDaemonState(opts.config.node, this.clock.now());
    this.fencer = new Fencer(this);
    this.vrrp = new VrrpFollower(this);
    this.prober = new Prober(this, opts.healthCheck !== false);
    this.heartbeat = new Heartbeat(this, {
      everyMs: opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
      marginMs: opts.agentMarginMs ?? DEFAULT_AGENT_MARGIN_MS,
      checkFences: () => this.fencer.check(),
      probe: () => {
        void this.prober.round();
        // Off the lease path: the reporter logs its own failures and never rejects.
        void this.reporter.send();
        void publishNodeKey(this);
        void this.vrrp.refreshEndpoints();
      },
      extra: () => ({ vrrp: this.vrrp.report(), endpoints: this.state.endpoints }),
    });
    this.reporter = new Reporter(this);
    this.worker = new PassWorker(this, {
      built: (view, slot) => {
        // A vrrp slot's addresses are keepalived's, and so are its NA/GARP on becoming master.
        if (view.slots.some((s) => sameSlot(s, slot) && s.candidates !== undefined)) return;
        void announceUplink(this.kernel, this.clock, this.config, view, slot).then((r) =>
          this.log('slot.announced', { slot: slotKey(slot), ...r }, r.failed.length ? 'warn' : 'info'),
        );
      },
      publish: (view, keys, failures) => publishKeys(this, view, publishableKeys(failures, keys)),
      checkFences: () => void this.fencer.check(),
      runtime: (served) => {
        this.vrrp.prime(served);
        const withoutKey = prepareExitKeys(this, served);
        this.state.withoutKey = withoutKey;
        return { masters: this.vrrp.masters(), withoutKey };
      },
      passed: async (served, runtime) => {
        await sealExitKeys(this, served);
        void publishNodeKey(this);
        await this.vrrp.afterPass(runtime.masters ?? new Set());
        // A new view may carry a new vrrp slot or a stepDown.
        void this.vrrp.check();
      },
    });
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  running(): boolean {
    return this.isRunning;
  }

  log(event: string, fields: Record<string, unknown> = {}, level: LogLevel = 'info'): void {
    const line = JSON.stringify({
      ts: new Date(this.clock.now()).toISOString(),
      level,
      node: this.config.node,
      event,
      ...fields,
    });
    (this.opts.log ?? ((l: string) => process.stderr.write(l + '\n')))(line);
  }

  async start(): Promise<void> {
    this.isRunning = true;
    if (this.opts.metrics) {
      const h = await listen(this, this.opts.metrics);
      this.http = h.server;
      this.metricsUrl = h.url;
    }
    // Leases as last granted, so that a fencing SlotPolicy can judge the saved view's slots at
    // start, before the first heartbeat answers (serving them on means no drop on restart).
    this.state.leases = loadLeases(this.config.stateDir);
    // Stage 2: the node key exists from the first start on (its public half goes to TNoDB).
    nodeKeyOf(this);
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
    this.vrrp.start();
    const resyncMs = this.opts.resyncMs ?? DEFAULT_RESYNC_MS;
    this.loops.push(
      viewLoop(this, this.opts.waitS ?? DEFAULT_VIEW_WAIT_S),
      this.heartbeat.loop(),
      this.every(resyncMs, () => this.requestPass(true, 'resync')),
      this.every(FENCE_TICK_MS, () => void this.fencer.check()),
    );
    this.log('agent.started', {
      version: VERSION,
      server: this.opts.server,
      metrics: this.metricsUrl,
      resyncMs,
      heartbeatMs: this.opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    });
  }

  /** Stops the loops; the data plane stays exactly as it is. */
  async stop(reason = 'stop'): Promise<void> {
    if (!this.isRunning) return;
    this.isRunning = false;
    this.abort.abort();
    this.vrrp.stop();
    // A pass in flight finishes: interrupting `ip -batch` half-way would leave work for the next start.
    await this.worker.stop();
    await Promise.allSettled(this.loops);
    await new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r()));
    rmSync(join(this.config.stateDir, 'agent.json'), { force: true });
    this.log('agent.stopped', { reason, appliedVersion: this.state.appliedVersion });
  }

  /** Runs FN every MS until the daemon stops. */
  private async every(ms: number, fn: () => void): Promise<void> {
    while (this.isRunning) {
      await this.clock.sleep(ms, this.abort.signal);
      if (this.isRunning) fn();
    }
  }

  requestPass(full: boolean, reason: string): void {
    this.worker.request(full, reason);
  }

  passBusy(): boolean {
    return this.worker.busy();
  }

  passCount(): number {
    return this.worker.count;
  }

  wakeHeartbeat(): void {
    this.heartbeat.wakeNow();
  }

  servable(view: NodeView): NodeView {
    return { ...view, slots: this.policy.servable(view, this.state) };
  }

  /** Fences what may no longer be served (the fence timer's work; see src/agent/fencing.ts). */
  checkFences(): Promise<void> {
    return this.fencer.check();
  }

  /** The /healthz document. */
  health(): Record<string, unknown> {
    return healthReport(this);
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
