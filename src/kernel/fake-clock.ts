// A clock that moves only when told (tests): `advance(ms)` wakes every sleeper due on the way, in
// order of their deadlines, and lets each woken task run (and sleep again) before the next one.
// With `auto`, a sleep moves the clock itself: for code that waits alone, step by step.
import type { Clock } from './kernel.js';

interface Sleeper {
  at: number;
  seq: number;
  wake: () => void;
}

export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private sleepers: Sleeper[] = [];
  private readonly auto: boolean;

  constructor(opts: { start?: number; auto?: boolean } = {}) {
    this.t = opts.start ?? 1_700_000_000_000;
    this.auto = opts.auto ?? false;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.auto) {
      this.t += Math.max(0, ms);
      return new Promise((res) => setImmediate(res));
    }
    return new Promise((res) => {
      if (signal?.aborted) return res();
      const s: Sleeper = {
        at: this.t + Math.max(0, ms),
        seq: this.seq++,
        wake: () => {
          this.sleepers = this.sleepers.filter((x) => x !== s);
          signal?.removeEventListener('abort', s.wake);
          res();
        },
      };
      this.sleepers.push(s);
      signal?.addEventListener('abort', s.wake, { once: true });
    });
  }

  /** Sleepers waiting now. */
  get waiting(): number {
    return this.sleepers.length;
  }

  /** Moves time forward by MS, waking the sleepers due on the way one at a time. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = this.sleepers.filter((s) => s.at <= end).sort((x, y) => x.at - y.at || x.seq - y.seq)[0];
      if (!due) break;
      this.t = Math.max(this.t, due.at);
      due.wake();
      // Let the woken task run up to its next await (it may sleep again within this advance).
      await new Promise((res) => setImmediate(res));
    }
    this.t = end;
  }
}
