// The real clock: the wall clock and timers (see Clock in src/kernel/kernel.ts).
import type { Clock } from './kernel.js';

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((res) => {
      if (signal?.aborted) return res();
      const done = (): void => {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        res();
      };
      const t = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
    }),
};
