// Live tails of the farm's events (GET /v1/events?after=…&wait=…, GET /v1/events/stream). A tail
// waits here until the store's settled event id (src/store/events.ts) passes the cursor it holds;
// then it reads its own page, with its own scope and filters. One head query serves every waiter:
// it runs every POLL_MS while anyone waits (events come from every instance sharing the database,
// and from heartbeats that change no view) and at once after a write through this instance.
import type { Store } from '../store/index.js';
import { Coalesced } from './coalesced.js';

export const POLL_MS = 200;

interface Waiter {
  known: number;
  done(moved: boolean): void;
}

export class EventWatch {
  private waiters = new Set<Waiter>();
  private timer: NodeJS.Timeout | undefined;
  private readonly checks = new Coalesced(
    () => this.check(),
    () => this.waiters.size > 0,
  );
  private off: () => void;
  /** Set at shutdown: waits end at once, streams close. */
  closed = false;
  private closers = new Set<() => void>();

  constructor(
    private store: Store,
    private pollMs = POLL_MS,
  ) {
    this.off = store.onViewChange(() => this.kick());
  }

  /** Resolves true once the settled event id is above `known`, false after `ms` (or at shutdown). */
  wait(known: number, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(false);
      const w: Waiter = {
        known,
        done: (moved) => {
          clearTimeout(t);
          this.waiters.delete(w);
          if (!this.waiters.size && this.timer) {
            clearInterval(this.timer);
            this.timer = undefined;
          }
          resolve(moved);
        },
      };
      const t = setTimeout(() => w.done(false), ms);
      this.waiters.add(w);
      if (!this.timer) {
        this.timer = setInterval(() => this.kick(), this.pollMs);
        this.timer.unref();
      }
      this.kick();
    });
  }

  /** Registers a stream to end at shutdown; returns the unregister function. */
  onClose(fn: () => void): () => void {
    this.closers.add(fn);
    return () => this.closers.delete(fn);
  }

  private kick(): void {
    this.checks.kick();
  }

  private async check(): Promise<void> {
    let head: number;
    try {
      head = await this.store.events.head();
    } catch {
      return; // the next poll tries again
    }
    for (const w of [...this.waiters]) if (head > w.known) w.done(true);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const w of [...this.waiters]) w.done(false);
    for (const c of [...this.closers]) c();
    this.off();
  }
}
