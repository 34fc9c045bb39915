// Long-poll support. A request waiting for a node's view to pass a version registers here; one
// batched version query (store.versions) decides who to wake. It runs at once after a write
// through this instance, and every POLL_MS while anyone waits, which catches writes made through
// other instances sharing the database (well inside the 100 ms the agents are promised).
import { performance } from 'node:perf_hooks';
import type { Store } from '../store/index.js';
import { Coalesced } from './coalesced.js';

export const POLL_MS = 40;

/** What a woken waiter is told: the version seen and when (performance.now()). */
export interface Seen {
  version: number;
  at: number;
}

interface Waiter {
  after: number;
  done(seen: Seen | undefined): void;
}

export class ViewWatch {
  private waiters = new Map<string, Set<Waiter>>();
  private off: () => void;
  private timer: NodeJS.Timeout | undefined;
  private readonly checks = new Coalesced(
    () => this.check(),
    () => this.waiters.size > 0,
  );
  /** Set at shutdown: waits end at once so that the server can close. */
  closed = false;

  constructor(
    private store: Store,
    private pollMs = POLL_MS,
  ) {
    this.off = store.onViewChange(() => this.kick());
  }

  /** Resolves true once the node's version is above `after`, false after `ms`. */
  async waitFor(node: string, after: number, ms: number): Promise<boolean> {
    return (await this.waitForVersion(node, after, ms)) !== undefined;
  }

  /** Resolves with the version seen once the node's version is above `after`, undefined after `ms`. */
  waitForVersion(node: string, after: number, ms: number): Promise<Seen | undefined> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(undefined);
      let set = this.waiters.get(node);
      if (!set) this.waiters.set(node, (set = new Set()));
      const w: Waiter = {
        after,
        done: (seen) => {
          clearTimeout(t);
          set!.delete(w);
          if (!set!.size) this.waiters.delete(node);
          if (!this.waiters.size && this.timer) {
            clearInterval(this.timer);
            this.timer = undefined;
          }
          resolve(seen);
        },
      };
      const t = setTimeout(() => w.done(undefined), ms);
      set.add(w);
      if (!this.timer) {
        this.timer = setInterval(() => this.kick(), this.pollMs);
        this.timer.unref();
      }
      // The version may have moved between the caller's read and this registration.
      this.kick();
    });
  }

  private kick(): void {
    this.checks.kick();
  }

  private async check(): Promise<void> {
    let v: Map<string, number>;
    try {
      v = await this.store.versions([...this.waiters.keys()]);
    } catch {
      return; // the next poll tries again
    }
    const at = performance.now();
    for (const [node, set] of this.waiters) {
      const now = v.get(node);
      if (now === undefined) continue;
      for (const w of [...set]) if (now > w.after) w.done({ version: now, at });
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w.done(undefined);
    this.off();
  }
}
