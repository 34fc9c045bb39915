// A minimal Prometheus text-format registry for the agent daemon: gauges, counters and
// histograms with labels. No dependency: the agent exposes a handful of series and the format
// (https://prometheus.io/docs/instrumenting/exposition_formats/) is a few lines of text.

type Labels = Record<string, string>;

function key(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]!.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}

interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter' | 'histogram';
  values: Map<string, number>;
  buckets?: number[];
  hist?: Map<string, { counts: number[]; sum: number; count: number }>;
}

export class Metrics {
  private readonly families = new Map<string, Family>();

  private family(name: string, help: string, type: Family['type'], buckets?: number[]): Family {
    let f = this.families.get(name);
    if (!f) {
      f = { name, help, type, values: new Map(), ...(buckets ? { buckets, hist: new Map() } : {}) };
      this.families.set(name, f);
    }
    return f;
  }

  gauge(name: string, help: string, value: number, labels: Labels = {}): void {
    this.family(name, help, 'gauge').values.set(key(labels), value);
  }

  /** Replaces every series of a gauge (e.g. objects by kind, which may disappear). */
  gaugeSet(name: string, help: string, series: { labels: Labels; value: number }[]): void {
    const f = this.family(name, help, 'gauge');
    f.values.clear();
    for (const s of series) f.values.set(key(s.labels), s.value);
  }

  inc(name: string, help: string, by = 1, labels: Labels = {}): void {
    const f = this.family(name, help, 'counter');
    const k = key(labels);
    f.values.set(k, (f.values.get(k) ?? 0) + by);
  }

  observe(
    name: string,
    help: string,
    seconds: number,
    labels: Labels = {},
    buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  ): void {
    const f = this.family(name, help, 'histogram', buckets);
    const k = key(labels);
    let h = f.hist!.get(k);
    if (!h) f.hist!.set(k, (h = { counts: buckets.map(() => 0), sum: 0, count: 0 }));
    buckets.forEach((b, i) => {
      if (seconds <= b) h!.counts[i]!++;
    });
    h.sum += seconds;
    h.count++;
  }

  text(): string {
    const out: string[] = [];
    for (const f of this.families.values()) {
      out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
      const wrap = (k: string, extra = ''): string => {
        const all = [k, extra].filter((x) => x !== '').join(',');
        return all ? `{${all}}` : '';
      };
      if (f.type === 'histogram') {
        for (const [k, h] of f.hist!) {
          f.buckets!.forEach((b, i) => out.push(`${f.name}_bucket${wrap(k, `le="${b}"`)} ${h.counts[i]}`));
          out.push(
            `${f.name}_bucket${wrap(k, 'le="+Inf"')} ${h.count}`,
            `${f.name}_sum${wrap(k)} ${h.sum}`,
            `${f.name}_count${wrap(k)} ${h.count}`,
          );
        }
      } else {
        for (const [k, v] of f.values) out.push(`${f.name}${wrap(k)} ${v}`);
      }
    }
    return out.join('\n') + '\n';
  }
}
