// The live tail: GET /v1/events/stream (Server-Sent Events) read with fetch, because EventSource
// cannot send the bearer token and the token must not go into a URL (logs, history). It reconnects
// from the last event id with a growing pause, and tells the page its state: "connecting", "live",
// or "lost" (since when, and why), so that a lost connection is shown, never silently stale.

/** A stream that sends nothing (not even its 15 s keep-alive) for this long is taken as lost. */
const SILENCE_MS = 35_000;

export function connectLive({ token, after, onEvents, onState }) {
  let stopped = false;
  let ctrl;
  let cursor = after;
  let lostSince;

  const lost = (why) => {
    lostSince ??= Date.now();
    onState({ state: 'lost', since: lostSince, why });
  };

  async function loop() {
    let pause = 500;
    while (!stopped) {
      ctrl = new AbortController();
      let silence;
      const arm = () => {
        clearTimeout(silence);
        silence = setTimeout(() => ctrl.abort(new Error(`nothing heard for ${SILENCE_MS / 1000} s`)), SILENCE_MS);
      };
      try {
        if (lostSince === undefined) onState({ state: 'connecting' });
        const res = await fetch(`/v1/events/stream?after=${cursor}`, {
          headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
          signal: ctrl.signal,
          cache: 'no-store',
        });
        if (!res.ok) throw new Error(`the server answered ${res.status}`);
        arm();
        const wasLost = lostSince;
        lostSince = undefined;
        onState({ state: 'live', resumed: wasLost !== undefined, lostFor: wasLost ? Date.now() - wasLost : 0 });
        pause = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          arm();
          buf += value;
          const frames = buf.split('\n\n');
          buf = frames.pop();
          const batch = [];
          for (const f of frames) {
            let data = '';
            for (const line of f.split('\n')) if (line.startsWith('data: ')) data += line.slice(6);
            if (!data) continue;
            const e = JSON.parse(data);
            batch.push(e);
            cursor = Math.max(cursor, e.id);
          }
          if (batch.length) onEvents(batch);
        }
        throw new Error('the server closed the stream');
      } catch (e) {
        if (stopped) return;
        lost(ctrl.signal.reason?.message ?? e.message);
        await new Promise((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, 5000);
      } finally {
        clearTimeout(silence);
      }
    }
  }
  void loop();
  return {
    stop() {
      stopped = true;
      ctrl?.abort();
    },
    get cursor() {
      return cursor;
    },
  };
}
