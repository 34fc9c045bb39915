// exitnode events: the farm's history (a farm token: its farm; a tenant token: its networks), with
// filters, and --follow to keep printing what happens (a long-poll tail of GET /v1/events).
import { flag, opt, parse, positionals, usageError } from '../args.js';
import type { Io } from '../io.js';
import { clientFrom, clientOptions, CLIENT_USAGE } from '../client.js';
import type { EventQuery, EventRecord } from '../../client/index.js';

export const summary =
  "the farm's events: slot moves and failovers with their cost, nodes, networks; --follow for live";
export const usage = [
  `exitnode events [--follow] [--kind K[,K…]] [--slot A/E] [--node N] [--network ID] [--since 10m|ISO-TIME] [--until …] [--limit N] [--farm F] ${CLIENT_USAGE}`,
  '  kinds: slot.assigned slot.move-planned slot.moved failover gateway.unhealthy gateway.healthy slot.advisory slot.full',
  '         node.up node.silent node.back node.drift-repaired node.status network.created network.deleted nr.added nr.removed',
  '         (a prefix with *: "node.*"; docs/events.md). --json prints one event per line.',
].join('\n');

/** "10m", "2h", "1d", "30s" before now, or an ISO time; milliseconds since the epoch. */
export function parseTime(v: string, name: string, now = Date.now()): number {
  const rel = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(v);
  if (rel) return Math.round(now - Number(rel[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[rel[2] as 's']);
  const t = Date.parse(v);
  if (Number.isNaN(t))
    throw usageError(`--${name} ${JSON.stringify(v)} must be like 10m, 2h, 1d or an ISO time`, usage);
  return t;
}

function local(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function eventLine(e: EventRecord): string {
  return `${local(e.at)}  ${e.kind.padEnd(19)} ${e.text}`;
}

export async function run(argv: string[], io: Io, signal?: AbortSignal): Promise<number> {
  const p = parse(
    argv,
    {
      ...clientOptions,
      follow: { type: 'boolean', short: 'f' },
      kind: { type: 'string' },
      slot: { type: 'string' },
      node: { type: 'string' },
      network: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      farm: { type: 'string' },
    },
    usage,
  );
  positionals(p, [], usage);
  const c = clientFrom(p);
  const json = flag(p, 'json');
  const limit = opt(p, 'limit');
  if (limit !== undefined && !/^\d{1,4}$/.test(limit))
    throw usageError(`--limit ${JSON.stringify(limit)} must be 1 to 1000`, usage);
  const since = opt(p, 'since');
  const until = opt(p, 'until');
  const q: EventQuery = {
    ...(opt(p, 'farm') ? { farm: opt(p, 'farm') } : {}),
    ...(opt(p, 'kind') ? { kind: opt(p, 'kind') } : {}),
    ...(opt(p, 'slot') ? { slot: opt(p, 'slot') } : {}),
    ...(opt(p, 'node') ? { node: opt(p, 'node') } : {}),
    ...(opt(p, 'network') ? { network: opt(p, 'network') } : {}),
    ...(since ? { since: parseTime(since, 'since') } : {}),
    ...(until ? { until: parseTime(until, 'until') } : {}),
  };
  const print = (es: EventRecord[]): void => {
    if (es.length) io.out(es.map((e) => (json ? JSON.stringify(e) : eventLine(e))).join('\n'));
  };
  const first = await c.events({ ...q, limit: Number(limit ?? (flag(p, 'follow') ? 20 : 100)) });
  if (!json && !first.events.length && !flag(p, 'follow')) io.out('no events');
  if (!json && first.more) io.out(`(older events: --limit or --until ${new Date(first.events[0]!.at).toISOString()})`);
  print(first.events);
  if (!flag(p, 'follow')) return 0;
  const stop = new AbortController();
  const onSig = (): void => stop.abort();
  process.once('SIGINT', onSig);
  signal?.addEventListener('abort', onSig, { once: true });
  let after = first.next;
  let backoff = 500;
  try {
    while (!stop.signal.aborted) {
      try {
        const r = await c.events({ ...q, after, wait: 30, limit: 1000 }, { signal: stop.signal });
        print(r.events);
        after = r.next;
        backoff = 500;
      } catch (e) {
        if (stop.signal.aborted) break;
        io.err(`exitnode: ${(e as Error).message}; retrying in ${backoff / 1000} s`);
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  } finally {
    process.off('SIGINT', onSig);
  }
  return 0;
}
