// The VRRP follower (stage 2, DESIGN.md 8.2): keepalived runs in each vrrp slot's gateway and
// decides who answers; this follows what it says. Only the master's ExitPoints speak:
//
//   MASTER              the slot's ExitPoint WireGuard links up at once (kernel.setLinksUp, all in
//                       parallel), then a handshake with every peer (kernel.wgKick: the new master
//                       speaks first), then a pass (which adds the routes a down link cannot hold)
//   BACKUP/FAULT/...    the links down at once, then a pass
//   stepDown (view)     kernel.vrrpDrain once while master (priority 0: a planned handover)
//
// Every transition is one log line with the time from keepalived's notify to the links switched.
// As master, the ExitPoints' learned peer endpoints go to TNoDB with every heartbeat, so that the
// other candidates reach peers behind NAT at once after a failover.

import type { CompileRuntime } from '../compile/config.js';
import { gatewayNamespace, keyFileName, nrNamespace } from '../core/ownership.js';
import type { NodeView } from '../core/view.js';
import type { Kernel } from '../kernel/kernel.js';
import type { AgentContext } from './context.js';
import { floatingExits } from './exit-keys.js';
import { SlotMap, slotKey, type SlotRef } from './slot.js';
import type { HeartbeatBody, VrrpSlot, VrrpState } from './state.js';

// until i10-vrrp lands: these are methods of Kernel (src/kernel/kernel.ts), in linux.ts and fake.ts.
export interface VrrpKernel {
  vrrpStates(stateDir: string): Map<string, { state: VrrpState; priority: number; since: number }>;
  watchVrrp(
    stateDir: string,
    onChange: (states: Map<string, { state: VrrpState; priority: number; since: number }>) => void,
  ): () => void;
  vrrpDrain(stateDir: string, ns: string): Promise<void>;
  setLinksUp(items: readonly { ns: string; dev: string; up: boolean }[]): Promise<void>;
  wgKick(names: readonly string[]): Promise<void>;
  wgEndpoints(names: readonly string[]): Promise<Map<string, Map<string, string>>>;
}

// until i10-vrrp lands: the kernel itself, once every Kernel has these methods.
export function vrrpKernel(k: Kernel): VrrpKernel | undefined {
  const x = k as Kernel & Partial<VrrpKernel>;
  return typeof x.watchVrrp === 'function' && typeof x.vrrpStates === 'function' ? (x as VrrpKernel) : undefined;
}

const STATES: VrrpState[] = ['MASTER', 'BACKUP', 'FAULT', 'STOPPED'];

/**
 * The compile runtime of a pass without a daemon (`agent apply`, `agent check`): the masters as
 * keepalived's state files say, and the ExitPoints this node may not build for want of their key
 * (the daemon writes sealed keys; a one-shot pass never makes a shared key of its own).
 */
export function runtimeFromKernel(kernel: Kernel, stateDir: string, prefix: string, view: NodeView): CompileRuntime {
  const k = vrrpKernel(kernel);
  const states = k ? k.vrrpStates(stateDir) : new Map<string, { state: VrrpState }>();
  const masters = new Set(
    vrrpSlots(view)
      .filter((s) => states.get(gatewayNamespace(prefix, s.slot, s.allocation))?.state === 'MASTER')
      .map((s) => slotKey(s)),
  );
  const withoutKey = new Set(
    floatingExits(view)
      .filter((f) => !(f.first && f.exit.publicKey === undefined))
      .filter((f) => !kernel.privateKeys(stateDir, [{ name: f.name, keyFile: keyFileName(f.name) }]).has(f.name))
      .map((f) => f.name),
  );
  return { masters, withoutKey };
}

/** The view's vrrp slots. */
export function vrrpSlots(view: NodeView | undefined): NodeView['slots'] {
  return (view?.slots ?? []).filter((s) => s.candidates !== undefined);
}

export class VrrpFollower {
  private unwatch?: () => void;
  private busy = false;
  private again = false;

  constructor(private readonly ctx: AgentContext) {}

  /** The slots (slotKey) whose gateway is master here now: compile brings their ExitPoints up. */
  masters(): Set<string> {
    return new Set(
      this.ctx.state.vrrp
        .entries()
        .filter(([, v]) => v.state === 'MASTER')
        .map(([s]) => slotKey(s)),
    );
  }

  /**
   * Takes keepalived's state of every vrrp slot of VIEW this follower has not seen yet, without
   * acting on it: a pass compiles with the masters as they are, so that a restarted agent's first
   * pass leaves a master's ExitPoint links up (the watcher's first look then finds no change).
   */
  prime(view: NodeView): void {
    const { state, config } = this.ctx;
    const k = vrrpKernel(this.ctx.kernel);
    const fresh = vrrpSlots(view).filter((s) => !state.vrrp.has(s));
    if (!k || !fresh.length) return;
    const states = k.vrrpStates(config.stateDir);
    for (const s of fresh) {
      const e = states.get(gatewayNamespace(config.namespacePrefix, s.slot, s.allocation));
      if (!e) continue;
      state.vrrp.set(s, { state: e.state, priority: e.priority, since: e.since, at: this.ctx.clock.now(), links: 0 });
      this.ctx.log('vrrp.state', { slot: slotKey(s), state: e.state, priority: e.priority, since: e.since || null });
    }
  }

  start(): void {
    const k = vrrpKernel(this.ctx.kernel);
    if (!k) return;
    this.unwatch = k.watchVrrp(this.ctx.config.stateDir, () => void this.check());
    void this.check();
  }

  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
  }

  /**
   * Reads keepalived's states and acts on every change (and on a view's stepDown). Serialised: a
   * call while one runs makes it look again when done. Never rejects.
   */
  async check(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      do {
        this.again = false;
        await this.look();
      } while (this.again && this.ctx.running());
    } catch (e) {
      this.ctx.log('vrrp.error', { error: (e as Error).message }, 'error');
    } finally {
      this.busy = false;
    }
  }

  /**
   * After a pass compiled with MASTERS: when keepalived changed its mind meanwhile, that pass may
   * have switched the links back; switch them again at once (and the next pass follows).
   */
  async afterPass(masters: ReadonlySet<string>): Promise<void> {
    const now = this.masters();
    const changed = [...new Set([...masters, ...now])].filter((k) => masters.has(k) !== now.has(k));
    const k = vrrpKernel(this.ctx.kernel);
    if (!changed.length || !k || !this.ctx.state.view) return;
    const refs = vrrpSlots(this.ctx.state.view).filter((s) => changed.includes(slotKey(s)));
    try {
      await k.setLinksUp(refs.flatMap((s) => this.links(s).map((l) => ({ ...l, up: now.has(slotKey(s)) }))));
    } catch (e) {
      this.ctx.log('vrrp.links.failed', { error: (e as Error).message }, 'error');
    }
    this.ctx.requestPass(
      refs.some((s) => !now.has(slotKey(s))),
      'vrrp changed during a pass',
    );
  }

  /** The ExitPoint links of SLOT this node builds (those without their key are left out). */
  private links(slot: SlotRef): { ns: string; dev: string }[] {
    const { state, config } = this.ctx;
    if (!state.view) return [];
    return floatingExits(state.view)
      .filter((f) => slotKey(f.slot) === slotKey(slot) && !state.withoutKey.has(f.name))
      .map((f) => ({ ns: nrNamespace(config.namespacePrefix, f.exit.id, f.network.allocation), dev: f.name }));
  }

  private async look(): Promise<void> {
    const { ctx } = this;
    const { state, config } = ctx;
    const k = vrrpKernel(ctx.kernel);
    if (!k) return;
    const slots = vrrpSlots(state.view);
    const states = k.vrrpStates(config.stateDir);
    for (const s of slots) {
      const ns = gatewayNamespace(config.namespacePrefix, s.slot, s.allocation);
      const e = states.get(ns) ?? { state: 'STOPPED' as const, priority: 0, since: 0 };
      const prev = state.vrrp.get(s);
      if (!prev || prev.state !== e.state) await this.transition(k, s, prev, e);
      else if (prev.priority !== e.priority) state.vrrp.set(s, { ...prev, priority: e.priority });
      const cur = state.vrrp.get(s)!;
      // A planned handover or a dual master resolved by TNoDB: priority 0 now, once per episode.
      if (s.stepDown && cur.state === 'MASTER' && !cur.drained) {
        state.vrrp.set(s, { ...cur, drained: true });
        ctx.log('vrrp.drain', { slot: slotKey(s), priority: cur.priority }, 'warn');
        // Not awaited: it resolves once keepalived is back as a backup, and the transitions on
        // the way (MASTER → FAULT) must switch the links meanwhile.
        void k
          .vrrpDrain(config.stateDir, ns)
          .catch((err: unknown) =>
            ctx.log('vrrp.drain.failed', { slot: slotKey(s), error: (err as Error).message }, 'error'),
          );
      } else if (!s.stepDown && cur.drained) state.vrrp.set(s, { ...cur, drained: false });
    }
    const listed = new SlotMap(slots.map((s) => [s, true] as const));
    for (const ref of state.vrrp.refs()) if (!listed.has(ref)) state.vrrp.delete(ref);
    this.gauges();
  }

  private async transition(
    k: VrrpKernel,
    s: NodeView['slots'][number],
    prev: VrrpSlot | undefined,
    e: { state: VrrpState; priority: number; since: number },
  ): Promise<void> {
    const { ctx } = this;
    const up = e.state === 'MASTER';
    // Before the first pass the links may not exist yet: that pass compiles with this state.
    const links = ctx.passCount() > 0 ? this.links(s) : [];
    let error: string | undefined;
    try {
      if (links.length) await k.setLinksUp(links.map((l) => ({ ...l, up })));
    } catch (err) {
      error = (err as Error).message;
    }
    const at = ctx.clock.now();
    const linksMs = e.since > 0 ? Math.max(0, at - e.since) : undefined;
    ctx.state.vrrp.set(s, {
      state: e.state,
      priority: e.priority,
      since: e.since,
      at,
      links: links.length,
      ...(linksMs !== undefined ? { linksMs } : {}),
      ...(prev?.drained ? { drained: true } : {}),
    });
    let kickError: string | undefined;
    if (up && links.length)
      await k.wgKick(links.map((l) => l.dev)).catch((err: unknown) => (kickError = (err as Error).message));
    ctx.log(
      'vrrp.transition',
      {
        slot: slotKey(s),
        from: prev?.state ?? null,
        to: e.state,
        priority: e.priority,
        since: e.since > 0 ? new Date(e.since).toISOString() : null,
        notifyToLinksMs: linksMs ?? null,
        links: links.length,
        ...(up ? { kicked: links.length } : {}),
        ...(error ? { error } : {}),
        ...(kickError ? { kickError } : {}),
      },
      error ? 'error' : e.state === 'FAULT' ? 'warn' : 'info',
    );
    const labels = { allocation: String(s.allocation), slot: String(s.slot) };
    ctx.metrics.inc('exitnode_agent_vrrp_transitions_total', "Transitions of a slot gateway's VRRP state", 1, {
      ...labels,
      to: e.state,
    });
    if (linksMs !== undefined)
      ctx.metrics.observe(
        'exitnode_agent_vrrp_links_seconds',
        "From keepalived's notify to the slot's ExitPoint links switched up or down",
        linksMs / 1000,
        { to: up ? 'up' : 'down' },
      );
    // Up: an incremental pass adds the routes a down link could not hold (the time-critical case).
    // Down: the kernel dropped the links' routes and IPv6 addresses itself, so the pass re-reads
    // it (full) instead of deleting what is gone; so does one after a failed switch.
    ctx.requestPass(error !== undefined || !up, `vrrp ${e.state} ${slotKey(s)}`);
  }

  private gauges(): void {
    const { state, metrics } = this.ctx;
    const entries = state.vrrp.entries();
    metrics.gaugeSet(
      'exitnode_agent_vrrp_state',
      "keepalived's state of each candidate slot's gateway (1 for the current state)",
      entries.flatMap(([s, v]) =>
        STATES.map((st) => ({
          labels: { allocation: String(s.allocation), slot: String(s.slot), state: st },
          value: v.state === st ? 1 : 0,
        })),
      ),
    );
    metrics.gaugeSet(
      'exitnode_agent_vrrp_priority',
      "The VRRP priority keepalived reports for each candidate slot's gateway",
      entries.map(([s, v]) => ({
        labels: { allocation: String(s.allocation), slot: String(s.slot) },
        value: v.priority,
      })),
    );
  }

  /** The heartbeat's `vrrp[]`. */
  report(): NonNullable<HeartbeatBody['vrrp']> {
    return this.ctx.state.vrrp.entries().map(([s, v]) => ({
      allocation: s.allocation,
      slot: s.slot,
      state: v.state,
      priority: v.priority,
      since: v.since,
    }));
  }

  /**
   * The endpoints the master ExitPoints learnt from their peers' packets, by network and NR (for
   * the next heartbeat); a peer's own public endpoint is not news. Never rejects.
   */
  async refreshEndpoints(): Promise<void> {
    const { state } = this.ctx;
    const k = vrrpKernel(this.ctx.kernel);
    if (!k || !state.view) return;
    const masters = this.masters();
    const exits = floatingExits(state.view).filter(
      (f) => masters.has(slotKey(f.slot)) && !state.withoutKey.has(f.name),
    );
    if (!exits.length) {
      state.endpoints = [];
      return;
    }
    try {
      const got = await k.wgEndpoints(exits.map((f) => f.name));
      const out: typeof state.endpoints = [];
      for (const f of exits) {
        for (const [peer, endpoint] of got.get(f.name) ?? []) {
          const r = f.network.resources.find((x) => x.publicKey === peer && x.id !== f.exit.id);
          if (r && endpoint !== r.endpoint) out.push({ network: f.network.id, nr: r.id, endpoint });
        }
      }
      state.endpoints = out;
    } catch (e) {
      this.ctx.log('vrrp.endpoints.failed', { error: (e as Error).message }, 'warn');
    }
  }
}
