// Which metrics the Grafana dashboard names, and whether they exist. Used by
// test/release/grafana.test.ts (a live server, the agent's source) and by scripts/release-check.sh
// against the live server and agents of a simulated farm:
//   node --import tsx scripts/grafana-metrics.ts DASHBOARD.json [--agent-source DIR [--counters-only]] URL|FILE…
// exits 1 when a metric of the dashboard is missing.
// Every URL or file is Prometheus text; a histogram family exposes NAME_bucket, NAME_sum, NAME_count.
// --agent-source DIR also accepts the families the agent's source registers (--counters-only: only
// its counters, which appear after an event such as a fence; gauges and histograms must be live).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
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

/** Families the agent registers in its source: metrics.gauge|gaugeSet|inc|observe('name', …), with their type. */
export function agentFamilyTypes(sources: string[]): Map<string, 'gauge' | 'counter' | 'histogram'> {
  const out = new Map<string, 'gauge' | 'counter' | 'histogram'>();
  for (const src of sources)
    for (const m of src.matchAll(/\.(gauge|gaugeSet|inc|observe)\(\s*'(exitnode_agent_[a-z0-9_]+)'/g))
      out.set(m[2]!, m[1] === 'observe' ? 'histogram' : m[1] === 'inc' ? 'counter' : 'gauge');
  return out;
}

/** The names (a histogram's with its series) of the agent's families, of the given types. */
export function agentFamilies(sources: string[], types = ['gauge', 'counter', 'histogram']): Set<string> {
  const out = new Set<string>();
  for (const [name, type] of agentFamilyTypes(sources)) if (types.includes(type)) withSeries(name, type, out);
  return out;
}

/** The .ts sources of a folder and its subfolders, tests left out. */
export function readSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? readSources(join(dir, e.name))
      : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')
        ? [readFileSync(join(dir, e.name), 'utf8')]
        : [],
  );
}

/** The dashboard's metrics that are not in `known`, sorted. */
export function missingMetrics(dashboard: Dashboard, known: Set<string>): string[] {
  return [...dashboardMetrics(dashboard)].filter((m) => !known.has(m)).sort();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const take = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i === -1 ? undefined : args.splice(i, 2)[1];
  };
  const agentDir = take('--agent-source');
  const countersOnly = args.includes('--counters-only')
    ? (args.splice(args.indexOf('--counters-only'), 1), true)
    : false;
  const [file, ...sources] = args;
  if (!file) {
    console.error('usage: grafana-metrics.ts DASHBOARD.json [--agent-source DIR [--counters-only]] URL|FILE…');
    process.exit(2);
  }
  const dashboard = JSON.parse(readFileSync(file, 'utf8')) as Dashboard;
  const live = new Set<string>();
  // The server's /metrics is the admin's (issue 11): EXITNODE_TOKEN_FILE names the admin token file.
  const tokenFile = process.env.EXITNODE_TOKEN_FILE;
  const headers: Record<string, string> = tokenFile
    ? { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` }
    : {};
  for (const s of sources) {
    const text = /^https?:/.test(s) ? await (await fetch(s, { headers })).text() : readFileSync(s, 'utf8');
    for (const n of exposedNames(text)) live.add(n);
  }
  // An agent family that only an event creates (a fence, a drift repair) is a counter: with
  // --counters-only those are the only ones taken from the source, every gauge and histogram must be live.
  const fromSource = agentDir
    ? agentFamilies(readSources(agentDir), countersOnly ? ['counter'] : undefined)
    : new Set<string>();
  const all = [...dashboardMetrics(dashboard)].sort();
  const missing = missingMetrics(dashboard, new Set([...live, ...fromSource]));
  const seen = all.filter((m) => live.has(m));
  const bySource = all.filter((m) => !live.has(m) && fromSource.has(m));
  console.log(
    `dashboard names ${all.length} metrics: ${seen.length} in the ${sources.length} live /metrics, ${bySource.length} registered by the agent's source only${bySource.length ? ` (${bySource.join(', ')})` : ''}, ${missing.length} nowhere`,
  );
  if (missing.length) {
    console.log(`missing: ${missing.join(', ')}`);
    process.exit(1);
  }
}
