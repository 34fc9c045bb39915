// Which metrics the Grafana dashboard names, and whether they exist. Used by
// test/release/grafana.test.ts (a live server, the agent's source) and by scripts/release-check.sh
// against the live server and agents of a simulated farm:
//   node --import tsx scripts/grafana-metrics.ts DASHBOARD.json URL|FILE…   exit 1 when a metric is missing
// Every URL or file is Prometheus text; a histogram family exposes NAME_bucket, NAME_sum, NAME_count.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Panel {
  targets?: { expr: string }[];
  panels?: Panel[];
}
export interface Dashboard {
  panels?: Panel[];
  templating?: { list: { query?: unknown }[] };
}

/** Metric names in the dashboard's queries (exitnode_… identifiers). */
export function dashboardMetrics(dashboard: Dashboard): Set<string> {
  const out = new Set<string>();
  const walk = (panels: Panel[] | undefined): void => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) for (const m of t.expr.matchAll(/\bexitnode_[a-z0-9_]+\b/g)) out.add(m[0]);
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  for (const v of dashboard.templating?.list ?? [])
    for (const m of JSON.stringify(v.query ?? '').matchAll(/\bexitnode_[a-z0-9_]+\b/g)) out.add(m[0]);
  return out;
}

function withSeries(name: string, type: string, into: Set<string>): void {
  into.add(name);
  if (type === 'histogram' || type === 'summary') for (const s of ['_bucket', '_sum', '_count']) into.add(name + s);
}

/** Names a Prometheus text exposes: its # TYPE families (with a histogram's series) and every sample. */
export function exposedNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) withSeries(t[1]!, t[2]!, out);
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (s) out.add(s[1]!);
  }
  return out;
}

/** Families the agent registers in its source: metrics.gauge|gaugeSet|inc|observe('name', …). */
export function agentFamilies(sources: string[]): Set<string> {
  const out = new Set<string>();
  for (const src of sources)
    for (const m of src.matchAll(/\.(gauge|gaugeSet|inc|observe)\(\s*'(exitnode_agent_[a-z0-9_]+)'/g))
      withSeries(m[2]!, m[1] === 'observe' ? 'histogram' : m[1] === 'inc' ? 'counter' : 'gauge', out);
  return out;
}

/** The dashboard's metrics that are not in `known`, sorted. */
export function missingMetrics(dashboard: Dashboard, known: Set<string>): string[] {
  return [...dashboardMetrics(dashboard)].filter((m) => !known.has(m)).sort();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, ...sources] = process.argv.slice(2);
  const dashboard = JSON.parse(readFileSync(file!, 'utf8')) as Dashboard;
  const known = new Set<string>();
  for (const s of sources) {
    const text = /^https?:/.test(s) ? await (await fetch(s)).text() : readFileSync(s, 'utf8');
    for (const n of exposedNames(text)) known.add(n);
  }
  const all = [...dashboardMetrics(dashboard)].sort();
  const missing = missingMetrics(dashboard, known);
  console.log(
    `dashboard names ${all.length} metrics; ${all.length - missing.length} exposed by ${sources.length} live sources`,
  );
  if (missing.length) {
    console.log(`not exposed: ${missing.join(', ')}`);
    process.exit(1);
  }
}
