// Live events from the stream go to every view that listens (useLive), in batches as they arrive.
// A batch of [{kind: 'resync'}] follows a reconnection: views reload what they show.
import { useEffect, useRef } from 'preact/hooks';

const listeners = new Set();

export function publish(batch) {
  for (const l of listeners) l(batch);
}

export function useLive(fn) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    const l = (batch) => ref.current(batch);
    listeners.add(l);
    return () => listeners.delete(l);
  }, []);
}
