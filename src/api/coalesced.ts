// One check at a time, none lost: a kick while a check runs schedules exactly one more after it.
// The view watch (watch.ts) and the event watch (event-watch.ts) wake their waiters this way on
// every store notification and poll tick, so that a burst of changes costs at most two reads.

export class Coalesced {
  private running = false;
  private again = false;

  /** CHECK runs when kicked while WANTED() (e.g. someone waits). */
  constructor(
    private readonly check: () => Promise<void>,
    private readonly wanted: () => boolean,
  ) {}

  kick(): void {
    if (!this.wanted()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.check().finally(() => {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }
}
