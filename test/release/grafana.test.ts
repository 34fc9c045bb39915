// The Grafana dashboard (deploy/grafana/exitnode.json) is valid dashboard JSON and every metric
// it names exists: the server's in the /metrics of a real TNoDB server started here, the agent's
// among the families the agent registers (src/agent, read from the source: most agent series
// appear only after a pass, a heartbeat or a fence). The live agents of a simulated farm are
// checked by scripts/release-check.sh with scripts/grafana-metrics.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../src/server/index.js';
import {
  agentFamilies,
  dashboardMetrics,
  exposedNames,
  missingMetrics,
  readSources,
} from '../../scripts/grafana-metrics.js';

const root = new URL('../../', import.meta.url);
const dashboard = JSON.parse(readFileSync(new URL('deploy/grafana/exitnode.json', root), 'utf8')) as {
  title: string;
  uid: string;
  schemaVersion: number;
  templating: { list: { name: string; type: string; query?: unknown }[] };
  panels: {
    id: number;
    type: string;
    title: string;
    gridPos: { x: number; y: number; w: number; h: number };
    datasource?: { uid: string };
    targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
  }[];
};

test('the dashboard is Grafana dashboard JSON: ids, grid, data source variable, one query per target', () => {
  assert.equal(dashboard.uid, 'exitnode-farm');
  assert.ok(dashboard.title && dashboard.schemaVersion >= 36);
  const vars = new Map(dashboard.templating.list.map((v) => [v.name, v.type]));
  assert.equal(vars.get('datasource'), 'datasource');
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of dashboard.panels) {
    const g = p.gridPos;
    assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0 && g.y >= 0, `${p.title}: grid ${JSON.stringify(g)}`);
    if (p.type === 'row') continue;
    assert.equal(p.datasource?.uid, '${datasource}', `${p.title} uses the data source variable`);
    assert.ok(p.targets?.length, `${p.title} has queries`);
    const refs = p.targets.map((t) => t.refId);
    assert.equal(new Set(refs).size, refs.length, `${p.title}: refIds unique`);
    for (const t of p.targets) {
      let depth = 0;
      for (const c of t.expr) {
        depth += c === '(' || c === '{' || c === '[' ? 1 : c === ')' || c === '}' || c === ']' ? -1 : 0;
        assert.ok(depth >= 0, `${p.title}: brackets in ${t.expr}`);
      }
      assert.equal(depth, 0, `${p.title}: brackets in ${t.expr}`);
      for (const v of t.expr.matchAll(/\$(\w+)/g))
        assert.ok(vars.has(v[1]!) || v[1]!.startsWith('__'), `${p.title}: $${v[1]} is a dashboard variable`);
    }
  }
  // Rows do not overlap panels: every panel's cells are its own.
  const cells = new Set<string>();
  for (const p of dashboard.panels)
    for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
      for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
        assert.ok(!cells.has(`${x},${y}`), `${p.title} overlaps another panel at ${x},${y}`);
        cells.add(`${x},${y}`);
      }
});

test('the dashboard covers slots, leases, failovers, reconcile times and agent health', () => {
  const names = dashboardMetrics(dashboard);
  for (const m of [
    'exitnode_slot_epoch',
    'exitnode_slot_nrs',
    'exitnode_agent_lease_seconds_left',
    'exitnode_agent_fences_total',
    'exitnode_agent_reconcile_seconds_bucket',
    'exitnode_agent_heartbeat_ok',
    'exitnode_agent_slot_healthy',
  ])
    assert.ok(names.has(m), `the dashboard shows ${m}`);
});

test('every metric the dashboard names exists: server ones in a live /metrics, agent ones in src/agent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xn-grafana-'));
  const s = await startServer({ data: dir, listen: '127.0.0.1:0', noTokenFile: true });
  try {
    const text = await (await fetch(`${s.url}/metrics`)).text();
    const server = exposedNames(text);
    assert.ok(server.has('exitnode_slot_epoch') && server.has('exitnode_http_request_duration_seconds_bucket'));
    const agent = agentFamilies(readSources(new URL('src/agent/', root).pathname));
    assert.ok(agent.has('exitnode_agent_heartbeat_ok'), 'the agent source is read');
    const missing = missingMetrics(dashboard, new Set([...server, ...agent]));
    assert.deepEqual(missing, [], `metrics the dashboard names that nobody exposes: ${missing.join(', ')}`);
    // And the check can fail: a dashboard naming a metric nobody exposes is caught.
    assert.deepEqual(missingMetrics({ panels: [{ targets: [{ expr: 'rate(exitnode_nope_total[5m])' }] }] }, server), [
      'exitnode_nope_total',
    ]);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
