// The pass worker: one pass at a time over the newest view — servable(view) → applyView →
// announce new gateways → publish keys → report (state, metrics, log). Requests coalesce; a pass
// with failures is retried after a second; the next incremental pass diffs against the last
// pass that had none.

import type { DesiredState } from '../compile/desired.js';
import { Compiler, type CompileRuntime } from '../compile/index.js';
import { ExitnodeError } from '../core/errors.js';
import type { NodeView } from '../core/view.js';
import type { StepFailure } from '../kernel/kernel.js';
import { failureText, objectText } from '../reconcile/objects.js';
import type { AgentContext } from './context.js';
import { applyView, type PassResult } from './index.js';
import { SlotMap, slotKey, type SlotRef } from './slot.js';

/** How long a pass with failures waits before it is tried again (ms). */
const RETRY_MS = 1000;

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

export class PassWorker {
  private passes = 0;
  private previous?: DesiredState;
  /** Its history makes an incremental pass cost the delta (see Compiler). */
  private readonly compiler = new Compiler();
  private pending: { full: boolean; reasons: string[] } | undefined;
  private working: Promise<void> | undefined;
  private retrying = false;

  constructor(
    private readonly ctx: AgentContext,
    private readonly after: {
      /** A gateway this pass built that the last one had not. */
      built: (view: NodeView, slot: SlotRef) => void;
      /** The public keys of this pass, by interface name, and its failures. */
      publish: (view: NodeView, keys: Record<string, string>, failures: readonly StepFailure[]) => Promise<void>;
      /** A pass that started before a fence may have put the uplink back: look again. */
      checkFences: () => void;
      /** Stage 2: what compile needs of the present (VRRP masters, ExitPoints without their key). */
      runtime?: (served: NodeView) => CompileRuntime;
      /** Stage 2: after the pass, with the runtime it compiled with. */
      passed?: (view: NodeView, runtime: CompileRuntime) => Promise<void>;
    },
  ) {}

  /** Queues a pass over the newest view; a full pass re-reads the kernel. Coalesces requests. */
  request(full: boolean, reason: string): void {
    if (!this.ctx.running() || !this.ctx.state.view) return;
    if (this.pending) {
      this.pending.full ||= full;
      this.pending.reasons.push(reason);
    } else this.pending = { full, reasons: [reason] };
    this.kick();
  }

  /** Passes completed. */
  get count(): number {
    return this.passes;
  }

  busy(): boolean {
    return this.pending !== undefined || this.working !== undefined;
  }

  /** Drops what is queued and waits for the pass in flight (interrupting `ip -batch` would leave work). */
  async stop(): Promise<void> {
    this.pending = undefined;
    await this.working;
  }

  private kick(): void {
    if (this.working || !this.pending || !this.ctx.running()) return;
    // A request that lands between the worker's last look and its promise settling is picked up here.
    this.working = this.work().finally(() => {
      this.working = undefined;
      this.kick();
    });
  }

  private async work(): Promise<void> {
    while (this.pending && this.ctx.running()) {
      const { full, reasons } = this.pending;
      this.pending = undefined;
      await this.pass(full || !this.previous, reasons);
    }
  }

  private async pass(full: boolean, reasons: string[]): Promise<void> {
    const { ctx } = this;
    const { state } = ctx;
    const view = state.view!;
    const t0 = performance.now();
    let r: PassResult;
    const served = ctx.servable(view);
    const runtime = this.after.runtime?.(served) ?? {};
    try {
      r = await applyView(
        served,
        ctx.config,
        full
          ? { kernel: ctx.kernel, compiler: this.compiler, runtime }
          : { kernel: ctx.kernel, compiler: this.compiler, previous: this.previous, runtime },
      );
    } catch (e) {
      this.previous = undefined;
      const msg = e instanceof ExitnodeError ? e.message : String((e as Error).stack ?? e);
      state.lastPass = {
        at: ctx.clock.now(),
        version: view.version,
        full,
        size: 0,
        failures: [msg],
        ms: performance.now() - t0,
      };
      ctx.metrics.inc('exitnode_agent_pass_errors_total', 'Passes that threw before applying');
      ctx.log('pass.error', { version: view.version, error: msg }, 'error');
      return;
    }
    const ms = performance.now() - t0;
    const before = state.served;
    state.served = new SlotMap(served.slots.map((s) => [s, s] as const));
    this.passes++;
    for (const [ref, s] of state.served.entries()) {
      if (before.has(ref)) continue;
      ctx.log('slot.built', { slot: slotKey(ref), epoch: s.epoch, version: view.version, ms: Math.round(ms) });
      this.after.built(view, ref);
    }
    const failures = r.failures.map(failureText);
    this.previous = failures.length ? undefined : r.desired;
    state.lastPass = { at: ctx.clock.now(), version: view.version, full, size: r.size, failures, ms };
    const changed = r.plan.steps.flatMap((s) => s.objects);
    const kind = full ? 'full' : 'incremental';
    ctx.metrics.observe(
      'exitnode_agent_reconcile_seconds',
      'Duration of a reconcile pass (compile, observe, diff, apply)',
      ms / 1000,
      { kind },
    );
    ctx.metrics.inc('exitnode_agent_passes_total', 'Reconcile passes', 1, {
      kind,
      result: failures.length ? 'failed' : 'ok',
    });
    ctx.metrics.gaugeSet(
      'exitnode_agent_objects',
      'Kernel objects this node holds for its view, by kind',
      counts(r.desired),
    );
    // A full pass that changes something while the view is the one already applied is drift repair.
    if (full && r.size > 0 && state.appliedVersion === view.version) {
      ctx.metrics.inc(
        'exitnode_agent_drift_repairs_total',
        'Objects a full pass found different from the applied view and repaired',
        changed.length,
      );
      const objects = changed.map(objectText);
      ctx.log('drift.repaired', { version: view.version, objects });
      state.drift = { n: (state.drift?.n ?? 0) + 1, at: ctx.clock.now(), objects, version: view.version };
    }
    if (!failures.length) {
      state.appliedVersion = view.version;
      state.appliedAt = ctx.clock.now();
      ctx.metrics.gauge(
        'exitnode_agent_applied_view_version',
        'Version of the last view applied without failures',
        view.version,
      );
    } else {
      ctx.metrics.inc('exitnode_agent_apply_failures_total', 'Objects that failed to apply', failures.length);
      // Do not wait for the next view or resync: a slot's rebuild may be what failed.
      if (!this.retrying) {
        this.retrying = true;
        void ctx.clock.sleep(RETRY_MS, ctx.signal).then(() => {
          this.retrying = false;
          this.request(true, 'retry after failures');
        });
      }
    }
    if (r.size > 0 || failures.length) {
      ctx.log(
        failures.length ? 'pass.failed' : 'pass.applied',
        {
          version: view.version,
          kind,
          reasons,
          size: r.size,
          ms: Math.round(ms),
          changed: changed.slice(0, 50).map(objectText),
          ...(changed.length > 50 ? { more: changed.length - 50 } : {}),
          failures,
        },
        failures.length ? 'error' : 'info',
      );
    }
    await this.after.publish(view, r.publicKeys, r.failures);
    await this.after.passed?.(served, runtime);
    this.after.checkFences();
  }
}
