// The agent's report to TNoDB (src/agent/report.ts): sent when it changes, else every
// REPORT_EVERY_MS; a 404 (an older server) backs off; failures are logged once per run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../kernel/fake-clock.js';
import type { AgentContext } from './context.js';
import { Reporter, REPORT_EVERY_MS } from './report.js';
import { newDaemonState } from './state.js';

function harness(fail?: () => Error) {
  const clock = new ManualClock({ start: 1_000_000 });
  const state = newDaemonState('n1', clock.now());
  const sent: { path: string; body: Record<string, unknown> }[] = [];
  const logs: string[] = [];
  const ctx = {
    config: { node: 'n1' },
    state,
    clock,
    client: {
      request: (_m: string, path: string, body: Record<string, unknown>) => {
        if (fail) return Promise.reject(fail());
        sent.push({ path, body });
        return Promise.resolve({});
      },
    },
    servable: (v: unknown) => v,
    log: (e: string) => logs.push(e),
  } as unknown as AgentContext;
  return { r: new Reporter(ctx), clock, state, sent, logs };
}

test('sends when the report changes, else every REPORT_EVERY_MS', async () => {
  const h = harness();
  await h.r.send();
  assert.equal(h.sent.length, 1);
  assert.equal(h.sent[0]!.path, '/v1/nodes/n1/report');
  assert.equal(h.sent[0]!.body.status, 'degraded', 'nothing applied yet');
  await h.clock.advance(1000);
  await h.r.send();
  assert.equal(h.sent.length, 1, 'unchanged: not sent again within the interval');
  h.state.serverReachable = true;
  await h.r.send();
  assert.equal(h.sent.length, 2, 'changed: sent at once');
  await h.clock.advance(REPORT_EVERY_MS);
  await h.r.send();
  assert.equal(h.sent.length, 3, 'unchanged but due');
  h.state.drift = { n: 1, at: h.clock.now(), objects: ['route 2001:db8::/64'], version: 3 };
  await h.r.send();
  assert.equal(h.sent.length, 4, 'a drift repair is sent at once');
  assert.deepEqual((h.sent[3]!.body.drift as { objects: string[] }).objects, ['route 2001:db8::/64']);
});

test('a server without the route (404) is asked again after 10 minutes; failures are logged once', async () => {
  const h = harness(() => Object.assign(new Error('not found'), { details: { status: 404 } }));
  await h.r.send();
  h.state.serverReachable = true;
  await h.r.send();
  assert.deepEqual(h.logs, ['report.failed'], 'one log line for the run of failures, and no retry before 10 min');
});
