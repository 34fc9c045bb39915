// The agent's Prometheus text: families with HELP and TYPE once, label values escaped, histogram
// buckets cumulative with +Inf, _sum and _count; a replaced gauge drops series that went away.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from './metrics.js';

test('gauges, counters and histograms in the text exposition format', () => {
  const m = new Metrics();
  m.gauge('g', 'a gauge', 3);
  m.inc('c_total', 'a counter', 1, { kind: 'full' });
  m.inc('c_total', 'a counter', 2, { kind: 'full' });
  m.inc('c_total', 'a counter', 1, { kind: 'say "hi"\\' });
  m.observe('h_seconds', 'a histogram', 0.2, {}, [0.1, 0.5]);
  m.observe('h_seconds', 'a histogram', 0.05, {}, [0.1, 0.5]);
  m.observe('h_seconds', 'a histogram', 7, {}, [0.1, 0.5]);
  assert.equal(
    m.text(),
    [
      '# HELP g a gauge',
      '# TYPE g gauge',
      'g 3',
      '# HELP c_total a counter',
      '# TYPE c_total counter',
      'c_total{kind="full"} 3',
      'c_total{kind="say \\"hi\\"\\\\"} 1',
      '# HELP h_seconds a histogram',
      '# TYPE h_seconds histogram',
      'h_seconds_bucket{le="0.1"} 1',
      'h_seconds_bucket{le="0.5"} 2',
      'h_seconds_bucket{le="+Inf"} 3',
      'h_seconds_sum 7.25',
      'h_seconds_count 3',
    ].join('\n') + '\n',
  );
});

test('gaugeSet replaces every series (objects by kind, leases that lapsed)', () => {
  const m = new Metrics();
  m.gaugeSet('lease', 'leases', [
    { labels: { slot: '1' }, value: 4 },
    { labels: { slot: '2' }, value: 3 },
  ]);
  m.gaugeSet('lease', 'leases', [{ labels: { slot: '2' }, value: 2 }]);
  assert.equal(m.text(), '# HELP lease leases\n# TYPE lease gauge\nlease{slot="2"} 2\n');
});
