// Work that may come in bursts — long-polls and 429 answers — goes at most PER_TURN at a time
// per turn of the event loop, the rest on the next turns. One turn reads every socket that is
// ready: 2,000 polls arriving together, each answered in the same turn, held the loop for half
// a second while the heartbeats and health checks read in the same turn waited behind them.
// Paced, the burst takes as long, but a heartbeat waits for one share (a few milliseconds).

export const PER_TURN = 32;

export class Pacer {
  private waiting: (() => void)[] = [];
  /** Admitted in this turn (reset when the queue is served, on the next turn). */
  private used = 0;
  private scheduled = false;
  /** Admissions that waited for a later turn (for tests and /metrics). */
  deferred = 0;

  constructor(private readonly perTurn = PER_TURN) {}

  /** Undefined while this turn's share lasts (go on at once), else a promise of a later turn. */
  turn(): Promise<void> | undefined {
    this.schedule();
    if (!this.waiting.length && this.used < this.perTurn) {
      this.used++;
      return undefined;
    }
    this.deferred++;
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const now = this.waiting.splice(0, this.perTurn);
      this.used = now.length;
      for (const go of now) go();
      if (this.waiting.length || this.used) this.schedule();
    });
  }
}
