// What every route file gets: the store, token checks, the view watch, views as bytes, the
// long-poll limits and the metrics.
import type { Store } from '../store/index.js';
import type { Auth } from './auth.js';
import type { ViewWatch } from './watch.js';
import type { Metrics } from './metrics.js';
import type { ViewCache } from './views.js';
import type { PollLimits } from './polls.js';
import type { EventWatch } from './event-watch.js';
import type { Pacer } from './pacer.js';

export interface ApiContext {
  store: Store;
  auth: Auth;
  watch: ViewWatch;
  views: ViewCache;
  polls: PollLimits;
  metrics: Metrics;
  maxWaitS: number;
  /** Live tails of the farm's events (src/api/event-watch.ts). */
  events: EventWatch;
  /** Long-polls and 429 answers go a share per event-loop turn (src/api/pacer.ts). */
  pacer: Pacer;
}

/** Past this many NRs on a slot the farmer is told to enable another ExitNode (DESIGN.md section 5). */
export const SLOT_WARN_NRS = 2048;

export function slotWarning(allocation: number, slot: number, nrs: number): string | undefined {
  return nrs > SLOT_WARN_NRS
    ? `slot ${slot} of allocation ${allocation} holds ${nrs} NRs (more than ${SLOT_WARN_NRS} of 4096): enable another ExitNode (assign a node to a free slot) so that new networks go there`
    : undefined;
}
