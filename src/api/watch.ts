// Long-poll support: a request waiting for a node's view to pass a version sleeps here until the
// store reports a change for that node (in-process, or LISTEN/NOTIFY from another instance).
import type { Store } from '../store/index.js';

export class ViewWatch {
  private waiters = new Map<string, Set<() => void>>();
  private off: () => void;
  /** Set at shutdown: waits end at once so that the server can close. */
  closed = false;

  constructor(store: Store) {
    this.off = store.onViewChange((nodes) => {
      const all = nodes.includes('*');
      for (const [node, set] of this.waiters) {
        if (all || nodes.includes(node)) for (const w of set) w();
      }
    });
  }

  /** Resolves when the node's view may have changed, or after `ms`. */
  wait(node: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      let set = this.waiters.get(node);
      if (!set) this.waiters.set(node, (set = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        set!.delete(done);
        if (!set!.size) this.waiters.delete(node);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  /** Wakes every waiter (shutdown). */
  wakeAll(): void {
    for (const set of this.waiters.values()) for (const w of [...set]) w();
  }

  close(): void {
    this.closed = true;
    this.wakeAll();
    this.off();
  }
}
