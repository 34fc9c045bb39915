// Limits on open view long-polls: per token and on the whole server. A node's agent holds one;
// a token that opens more than its share gets 429 LONG_POLL_LIMIT at once (not a held socket).
import { ExitnodeError } from '../core/errors.js';
import { ApiErrors } from './errors.js';

export const DEFAULT_MAX_POLLS_PER_TOKEN = 32;
export const DEFAULT_MAX_POLLS = 4096;
/** What a refused poll is told to wait before asking again (Retry-After): at least this, ... */
export const POLL_RETRY_AFTER_S = 5;
/** ... plus up to this many seconds more, drawn per answer. One Retry-After for all would bring
 *  every refused poll back in the same instant (2,000 at once: a second of the event loop, in
 *  which heartbeats wait); spread over 5 s they come back a few at a time. */
export const POLL_RETRY_SPREAD_S = 5;

/** BASE seconds plus a whole number from 0 to SPREAD drawn at random (a Retry-After). */
export function spreadRetry(base: number, spread: number): number {
  return base + Math.floor(Math.random() * (spread + 1));
}

export class PollLimits {
  private perToken = new Map<string, number>();
  private total = 0;
  /** Polls refused since start, by limit (for /metrics). */
  readonly refused = { token: 0, server: 0 };

  constructor(
    readonly maxPerToken = DEFAULT_MAX_POLLS_PER_TOKEN,
    readonly maxTotal = DEFAULT_MAX_POLLS,
  ) {}

  get open(): number {
    return this.total;
  }

  /** Takes a place for one poll of `token` (its hash) or throws LONG_POLL_LIMIT; returns the release. */
  take(token: string): () => void {
    const mine = this.perToken.get(token) ?? 0;
    if (mine >= this.maxPerToken) {
      this.refused.token++;
      const after = spreadRetry(POLL_RETRY_AFTER_S, POLL_RETRY_SPREAD_S);
      throw new ExitnodeError(
        ApiErrors.LONG_POLL_LIMIT,
        `this token has ${mine} view long-polls open, the limit per token (${this.maxPerToken}); retry in ${after} s, or read the view without ?after`,
        { retryAfterS: after },
      );
    }
    if (this.total >= this.maxTotal) {
      this.refused.server++;
      const after = spreadRetry(POLL_RETRY_AFTER_S, POLL_RETRY_SPREAD_S);
      throw new ExitnodeError(
        ApiErrors.LONG_POLL_LIMIT,
        `the server holds ${this.total} view long-polls, its limit (${this.maxTotal}); retry in ${after} s`,
        { retryAfterS: after },
      );
    }
    this.perToken.set(token, mine + 1);
    this.total++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.total--;
      const n = (this.perToken.get(token) ?? 1) - 1;
      if (n > 0) this.perToken.set(token, n);
      else this.perToken.delete(token);
    };
  }
}
