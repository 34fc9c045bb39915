// One check at a time, none lost: a kick while a check runs schedules exactly one more after it.
// The view watch (watch.ts) and the event watch (event-watch.ts) wake their waiters this way on
// every store notification and poll tick, so that a burst of changes costs at most two reads.
//
// A check begins on the next turn of the event loop (setImmediate), not inside kick(): every
// kick of one turn shares it. On PGlite a read finishes within the turn that started it, so a
// check begun at once would be over before the next request of the same burst is parsed, and
// 1,000 long-polls arriving together would each cost a version query of their own.

export class Coalesced {
  /** idle; scheduled (begins on the next turn: a kick now is covered); running (a kick now needs one more). */
  private state: 'idle' | 'scheduled' | 'running' = 'idle';
  private again = false;

  /** CHECK runs when kicked while WANTED() (e.g. someone waits). */
  constructor(
    private readonly check: () => Promise<void>,
    private readonly wanted: () => boolean,
  ) {}

  kick(): void {
    if (!this.wanted() || this.state === 'scheduled') return;
    if (this.state === 'running') {
      this.again = true;
      return;
    }
    this.state = 'scheduled';
    setImmediate(() => {
      this.state = 'running';
      // Wanted when kicked, perhaps not any more (the waiter timed out or was woken meanwhile).
      const run = this.wanted() ? this.check() : Promise.resolve();
      void run.finally(() => {
        this.state = 'idle';
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
    });
  }
}
