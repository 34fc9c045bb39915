// Node views as bytes, computed once per version. A view is a handful of queries and a JSON
// serialisation; with 2,000 long-polls woken by one write, computing it per request stalled the
// server for seconds (issue 11). Here every request for a node's view shares one build:
//   - a build is for one node; while it runs, callers that need a state at least as new as its
//     start join it, the others queue for ONE next build (which starts after they asked);
//   - a build first reads the node's view version: if the cached view has it, its bytes are the
//     answer (a version changes with every write that changes the view, in the same transaction);
//   - a woken long-poll asks for "version >= V" (V the version the watch saw) and takes the
//     cached bytes when they are that new: the 2,000 get the same string, built once.
import { performance } from 'node:perf_hooks';
import type { Store } from '../store/index.js';

export interface ViewBytes {
  version: number;
  /** The view as JSON text, sent as is. */
  body: string;
}

interface Build {
  /** performance.now() when it began: it shows the state of that moment or later. */
  started: number;
  p: Promise<ViewBytes>;
}

/** A build asked for, not begun yet; `min`: the highest version a caller knows the node has. */
interface Queued {
  min: number | undefined;
  p: Promise<ViewBytes>;
}

export class ViewCache {
  private latest = new Map<string, ViewBytes>();
  private bytes = 0;
  private running = new Map<string, Build>();
  private queued = new Map<string, Queued>();
  /** Views assembled (a version not cached yet). */
  builds = 0;
  /** Answers from the cache (the version unchanged, or a woken poll). */
  hits = 0;

  constructor(
    private store: Store,
    /** Bytes of views kept (the least recently built go first). */
    private maxBytes = 64 * 1024 * 1024,
  ) {}

  /**
   * The view of `node` as of `since` (a performance.now() value: the caller's arrival) or later;
   * with `min`, any view of version >= min will do, from the cache when it has one.
   */
  get(node: string, since: number, min?: number): Promise<ViewBytes> {
    const cached = this.latest.get(node);
    if (min !== undefined && cached && cached.version >= min) {
      this.hits++;
      return Promise.resolve(cached);
    }
    const p = this.round(node, since, min);
    // A build that began before the version was seen (on a pooled database its snapshot may be
    // older): ask once more, now.
    return min === undefined ? p : p.then((v) => (v.version >= min ? v : this.round(node, performance.now())));
  }

  private round(node: string, since: number, min?: number): Promise<ViewBytes> {
    const r = this.running.get(node);
    if (r && r.started >= since) return r.p;
    // The next build, begun on the next turn of the event loop (and after the running one): every
    // caller until then shares it. Begun at once, a build on PGlite would be over before the next
    // request of a burst is parsed, and 1,000 polls arriving together would cost 1,000 rounds.
    const q = this.queued.get(node);
    if (q) {
      if (min !== undefined) q.min = Math.max(q.min ?? min, min);
      return q.p;
    }
    const next: Queued = { min, p: Promise.resolve(undefined as unknown as ViewBytes) };
    next.p = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() =>
        this.running.get(node)?.p.then(
          () => undefined,
          () => undefined,
        ),
      )
      .then(() => {
        this.queued.delete(node);
        return this.start(node, next.min).p;
      });
    this.queued.set(node, next);
    return next.p;
  }

  private start(node: string, min?: number): Build {
    const b: Build = { started: performance.now(), p: Promise.resolve(undefined as unknown as ViewBytes) };
    b.p = this.build(node, min).finally(() => {
      if (this.running.get(node) === b) this.running.delete(node);
    });
    this.running.set(node, b);
    return b;
  }

  /** `min`: a version known to be newer than the cached one (a woken poll's): no need to ask. */
  private async build(node: string, min?: number): Promise<ViewBytes> {
    const cached = this.latest.get(node);
    if (cached && (min === undefined || cached.version >= min)) {
      // Lapsed leases move before anyone is shown the old holder (store.view sweeps too; when
      // the version is unchanged this is the only sweep).
      await this.store.sweep();
      if ((await this.store.viewVersion(node)) === cached.version) {
        this.hits++;
        return cached;
      }
    }
    const view = await this.store.view(node);
    this.builds++;
    const v: ViewBytes = { version: view.version, body: JSON.stringify(view) };
    const now = this.latest.get(node);
    if (!now || now.version <= v.version) this.keep(node, v);
    return v;
  }

  private keep(node: string, v: ViewBytes): void {
    const old = this.latest.get(node);
    if (old) {
      this.bytes -= old.body.length;
      this.latest.delete(node);
    }
    this.latest.set(node, v);
    this.bytes += v.body.length;
    for (const [k, e] of this.latest) {
      if (this.bytes <= this.maxBytes || k === node) break;
      this.latest.delete(k);
      this.bytes -= e.body.length;
    }
  }
}
