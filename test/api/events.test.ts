// The farm's history and the dashboard's reads through the API (issue 12), in-process on PGlite:
// GET /v1/events scoped and filtered, its long-poll and the SSE stream over real HTTP, the
// overview, network summaries, a slot's NRs, explain completed by TNoDB, the agents' reports, the
// static dashboard at /ui/ with its Content-Security-Policy, and `exitnode events`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, farm, harness, type Farm, type Harness } from './helpers.js';
import type { EventRecord } from '../../src/store/index.js';
import { run as eventsCli, parseTime } from '../../src/cli/commands/events.js';

describe('events and dashboard API', () => {
  let h: Harness;
  let a: Farm; // xev-a: allocation 951
  let b: Farm; // xev-b: allocation 952
  let netA: { id: string; exit: string };
  let netB: { id: string };
  let url: string;

  const json = async <T>(method: string, path: string, token?: string, body?: unknown, status = 200): Promise<T> => {
    const r = await h.call(method, path, token, body);
    assert.equal(r.statusCode, status, `${method} ${path}: ${r.body}`);
    return (r.body ? r.json() : undefined) as T;
  };
  const beat = (f: Farm, node: string, body?: unknown) =>
    json('POST', `/v1/nodes/${node}/heartbeat`, f.nodeTokens[node], body ?? {});

  before(async () => {
    h = await harness();
    h.now.t += 10_000; // past the store's start-up grace
    a = await farm(h, { name: 'xev-a', tenant: 'xev-ta', prefix: '2001:db8:5100::/48', number: 951 });
    b = await farm(h, { name: 'xev-b', tenant: 'xev-tb', prefix: '2001:db8:5200::/48', number: 952 });
    for (const n of Object.keys(a.nodeTokens)) await beat(a, n);
    for (const n of Object.keys(b.nodeTokens)) await beat(b, n);
    await json('PUT', '/v1/allocations/951/slots/1', a.farmToken, { node: 'xev-a-g1' });
    await json('PUT', '/v1/allocations/952/slots/2', b.farmToken, { node: 'xev-b-g1' });
    netA = await json('POST', '/v1/networks', a.tenantToken, { name: 'web' }, 201);
    await json('POST', `/v1/networks/${netA.id}/resources`, a.tenantToken, { node: 'xev-a-w1' }, 201);
    netB = await json('POST', '/v1/networks', b.tenantToken, { name: 'db' }, 201);
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const addr = h.app.server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  after(() => h.close());

  it('scopes the history: a farm its farm, a tenant its networks, the admin all; nodes none', async () => {
    type Page = { events: EventRecord[]; next: number; more: boolean };
    const fa = await json<Page>('GET', '/v1/events?limit=1000', a.farmToken);
    assert.ok(fa.events.length >= 6);
    assert.ok(fa.events.every((e) => e.farm === 'xev-a'));
    assert.deepEqual(
      fa.events.filter((e) => e.kind === 'slot.assigned').map((e) => e.text),
      ['slot 951/1 assigned to xev-a-g1, epoch 1'],
    );
    const ta = await json<Page>('GET', '/v1/events', a.tenantToken);
    assert.deepEqual(
      ta.events.map((e) => [e.kind, e.network]),
      [
        ['network.created', netA.id],
        ['nr.added', netA.id],
      ],
    );
    const all = await json<Page>('GET', '/v1/events?limit=1000', ADMIN);
    assert.ok(all.events.some((e) => e.farm === 'xev-b') && all.events.some((e) => e.farm === 'xev-a'));
    const onlyB = await json<Page>('GET', '/v1/events?farm=xev-b', ADMIN);
    assert.ok(onlyB.events.length && onlyB.events.every((e) => e.farm === 'xev-b'));
    assert.equal((await h.call('GET', '/v1/events?farm=xev-b', a.farmToken)).statusCode, 403);
    assert.equal((await h.call('GET', '/v1/events?farm=xev-a', a.tenantToken)).statusCode, 403);
    assert.equal((await h.call('GET', '/v1/events', a.nodeTokens['xev-a-g1'])).statusCode, 403);
    assert.equal((await h.call('GET', '/v1/events')).statusCode, 401);
  });

  it('filters by kind, slot and node, and refuses a malformed filter with 400', async () => {
    type Page = { events: EventRecord[] };
    const nodes = await json<Page>('GET', '/v1/events?kind=node.*', a.farmToken);
    assert.ok(nodes.events.length >= 4 && nodes.events.every((e) => e.kind.startsWith('node.')));
    const s1 = await json<Page>('GET', '/v1/events?slot=951/1&kind=slot.assigned,network.created', a.farmToken);
    assert.deepEqual(s1.events.map((e) => e.kind).sort(), ['network.created', 'slot.assigned']);
    const s1b = await json<Page>('GET', '/v1/events?slot=1&allocation=951&kind=slot.assigned', a.farmToken);
    assert.equal(s1b.events.length, 1);
    const w1 = await json<Page>('GET', '/v1/events?node=xev-a-w1', a.farmToken);
    assert.ok(w1.events.every((e) => e.node === 'xev-a-w1'));
    for (const bad of ['kind=DROP%20TABLE', 'slot=16', 'slot=1/2/3', 'node=%20x', 'limit=0', 'since=-1', 'x=1'])
      assert.equal((await h.call('GET', `/v1/events?${bad}`, a.farmToken)).statusCode, 400, bad);
  });

  it('long-polls: a tail with ?wait answers when an event of its scope arrives, not for other farms', async () => {
    const { next } = await json<{ next: number }>('GET', '/v1/events?limit=1', a.farmToken);
    const t0 = Date.now();
    const waiting = json<{ events: EventRecord[]; next: number }>(
      'GET',
      `/v1/events?after=${next}&wait=20`,
      a.farmToken,
    );
    await new Promise((r) => setTimeout(r, 300));
    // Farm B's event first: farm A's tail keeps waiting.
    await json('POST', `/v1/networks/${netB.id}/resources`, b.tenantToken, { node: 'xev-b-w1' }, 201);
    await new Promise((r) => setTimeout(r, 500));
    await json('POST', `/v1/networks/${netA.id}/resources`, a.tenantToken, { node: 'xev-a-w2' }, 201);
    const page = await waiting;
    const waited = Date.now() - t0;
    assert.deepEqual(
      page.events.map((e) => [e.kind, e.node]),
      [['nr.added', 'xev-a-w2']],
    );
    assert.ok(waited >= 800 && waited < 5000, `answered after ${waited} ms`);
    assert.equal(page.next, page.events[0]!.id);
    const empty = await json<{ events: EventRecord[] }>('GET', `/v1/events?after=${page.next}&wait=0.3`, a.farmToken);
    assert.deepEqual(empty.events, []);
  });

  it('streams Server-Sent Events over HTTP, from Last-Event-ID, scoped', async () => {
    const { next } = await json<{ next: number }>('GET', '/v1/events?limit=1', a.farmToken);
    const ctrl = new AbortController();
    const res = await fetch(`${url}/v1/events/stream?kind=gateway.*,failover,slot.*`, {
      headers: { authorization: `Bearer ${a.farmToken}`, 'last-event-id': String(next) },
      signal: ctrl.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    const got: EventRecord[] = [];
    const reading = (async () => {
      let buf = '';
      while (got.length < 2) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        const frames = buf.split('\n\n');
        buf = frames.pop()!;
        for (const f of frames) {
          const data = f
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('');
          if (data) got.push(JSON.parse(data) as EventRecord);
        }
      }
    })();
    await beat(b, 'xev-b-g1', { slots: [{ allocation: 952, slot: 2, healthy: true }] }); // not farm A's
    await beat(a, 'xev-a-g1', { slots: [{ allocation: 951, slot: 1, healthy: false, reason: 'no answer' }] });
    await beat(a, 'xev-a-g1', { slots: [{ allocation: 951, slot: 1, healthy: true }] });
    await Promise.race([reading, new Promise((r) => setTimeout(r, 10_000))]);
    ctrl.abort();
    assert.deepEqual(
      got.map((e) => [e.kind, e.farm, e.data.reason]),
      [
        ['gateway.unhealthy', 'xev-a', 'no answer'],
        ['gateway.healthy', 'xev-a', undefined],
      ],
    );
    const bad = await fetch(`${url}/v1/events/stream`, {
      headers: { authorization: `Bearer ${a.nodeTokens['xev-a-w1']}` },
    });
    assert.equal(bad.status, 403);
  });

  it('serves the overview: 15 slots with candidates and fill, nodes with their agent reports', async () => {
    await json(
      'POST',
      '/v1/nodes/xev-a-w1/report',
      a.nodeTokens['xev-a-w1'],
      {
        status: 'degraded',
        appliedVersion: 4,
        viewVersion: 5,
        serverReachable: true,
        served: [],
        lastPass: { agoMs: 120, ms: 35.5, full: false, size: 4, failures: 1 },
        drift: { seq: '9-1', objects: ['route 2001:db8:5100:1001::/64'], agoMs: 50 },
      },
      204,
    );
    // A node reports for itself only; the body is checked.
    const okReport = { status: 'ok', appliedVersion: 1, viewVersion: 1, serverReachable: true, served: [] };
    assert.equal(
      (await h.call('POST', '/v1/nodes/xev-a-w2/report', a.nodeTokens['xev-a-w1'], okReport)).statusCode,
      403,
    );
    assert.equal(
      (await h.call('POST', '/v1/nodes/xev-a-w1/report', a.nodeTokens['xev-a-w1'], { status: 'fine' })).statusCode,
      400,
    );
    assert.equal((await h.call('POST', '/v1/nodes/xev-a-w1/report', a.farmToken, okReport)).statusCode, 403);
    const o = await json<{
      allocations: {
        number: number;
        slots: { slot: number; node: string | null; capacity: number; candidates: unknown[]; nrs: number }[];
      }[];
      nodes: { id: string; agent?: { status: string }; viewVersion: number }[];
      networks: number;
      resources: number;
      warnings: string[];
    }>('GET', '/v1/farms/xev-a/overview', a.farmToken);
    assert.equal(o.allocations.length, 1);
    assert.equal(o.allocations[0]!.slots.length, 15);
    const s1 = o.allocations[0]!.slots[0]!;
    assert.deepEqual([s1.node, s1.capacity, s1.nrs], ['xev-a-g1', 4096, 3]);
    assert.deepEqual(s1.candidates, [{ node: 'xev-a-g1', role: 'holder' }]);
    assert.equal(o.nodes.find((n) => n.id === 'xev-a-w1')!.agent?.status, 'degraded');
    assert.deepEqual([o.networks, o.resources], [1, 3]);
    assert.equal((await h.call('GET', '/v1/farms/xev-b/overview', a.farmToken)).statusCode, 403);
    assert.equal((await h.call('GET', '/v1/farms/xev-a/overview', a.tenantToken)).statusCode, 403);
    const ev = await json<{ events: EventRecord[] }>(
      'GET',
      '/v1/events?kind=node.drift-repaired,node.status',
      a.farmToken,
    );
    assert.deepEqual(
      ev.events.map((e) => e.kind),
      ['node.drift-repaired', 'node.status'],
    );
  });

  it("lists a farm's networks and a slot's NRs; a tenant cannot", async () => {
    const nets = await json<{ id: string; nrs: number; exitNode: string; tenant: string }[]>(
      'GET',
      '/v1/farms/xev-a/networks',
      a.farmToken,
    );
    assert.deepEqual(
      nets.map((n) => [n.id, n.nrs, n.exitNode, n.tenant]),
      [[netA.id, 3, 'xev-a-g1', 'xev-ta']],
    );
    const nrs = await json<{ id: string; exit: boolean; prefix: string; node: string }[]>(
      'GET',
      '/v1/allocations/951/slots/1/resources',
      a.farmToken,
    );
    assert.deepEqual(
      nrs.map((r) => [r.id, r.exit, r.node]),
      [
        ['1000', true, 'xev-a-g1'],
        ['1001', false, 'xev-a-w1'],
        ['1002', false, 'xev-a-w2'],
      ],
    );
    assert.equal(nrs[1]!.prefix, '2001:db8:5100:1001::/64');
    const one = await json<unknown[]>('GET', `/v1/allocations/951/slots/1/resources?network=${netB.id}`, a.farmToken);
    assert.deepEqual(one, []);
    assert.equal((await h.call('GET', '/v1/farms/xev-a/networks', a.tenantToken)).statusCode, 403);
    assert.equal((await h.call('GET', '/v1/allocations/951/slots/1/resources', b.farmToken)).statusCode, 403);
  });

  it('explains an address with what TNoDB knows; a tenant only its own', async () => {
    type Ex = {
      kind: string;
      nr?: string;
      tnodb: { network?: string; node?: string; exit?: string; slotHolder?: string };
      path: { at: string }[];
    };
    const e = await json<Ex>('GET', '/v1/explain?address=2001:db8:5100:1001::9', a.farmToken);
    assert.equal(e.nr, '1001');
    assert.deepEqual(
      [e.tnodb.network, e.tnodb.node, e.tnodb.exit, e.tnodb.slotHolder],
      [netA.id, 'xev-a-w1', '1000', 'xev-a-g1'],
    );
    assert.ok(e.path.some((x) => x.at.startsWith('ExitPoint')));
    const mine = await json<Ex>('GET', '/v1/explain?address=10.16.1.7', a.tenantToken);
    assert.equal(mine.nr, '1001');
    const other = await h.call('GET', '/v1/explain?address=2001:db8:5200:2000::1', a.tenantToken);
    assert.equal(other.statusCode, 404);
    assert.equal((await h.call('GET', '/v1/explain?address=2001:db8:5100:1001::9', b.tenantToken)).statusCode, 404);
    const pz = await json<Ex>('GET', '/v1/explain?address=2001:db8:5100::1', a.farmToken);
    assert.equal(pz.kind, 'prefixzero');
    assert.equal((await h.call('GET', '/v1/explain?address=nonsense', a.farmToken)).statusCode, 400);
  });

  it('answers /v1/session with the scope and the constants of the page', async () => {
    const s = await json<{ scope: string; subject: string; routers: string[]; eventKinds: Record<string, unknown> }>(
      'GET',
      '/v1/session',
      a.tenantToken,
    );
    assert.deepEqual([s.scope, s.subject], ['tenant', 'xev-ta']);
    assert.ok(s.routers.includes('frr') && s.routers.includes('mikrotik'));
    assert.ok('failover' in s.eventKinds);
    assert.equal((await h.call('GET', '/v1/session')).statusCode, 401);
  });

  it('serves the dashboard at /ui/ with its libraries, a strict CSP and no token', async () => {
    const r = await h.call('GET', '/ui/');
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.match(r.body, /<script type="module" src="\.\/app\.js">/);
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    assert.doesNotMatch(csp, /unsafe/);
    assert.equal((await h.call('GET', '/ui')).headers.location, '/ui/');
    for (const f of [
      'app.js',
      'style.css',
      'lib/live.js',
      'views/map.js',
      'vendor/preact.mjs',
      'vendor/hooks.mjs',
      'vendor/htm.mjs',
    ]) {
      const x = await h.call('GET', `/ui/${f}`);
      assert.equal(x.statusCode, 200, f);
      const again = await h.call('GET', `/ui/${f}`, undefined, undefined, { 'if-none-match': String(x.headers.etag) });
      assert.equal(again.statusCode, 304, f);
    }
    assert.match((await h.call('GET', '/ui/app.js')).body, /^\/\/ The exitnode dashboard/);
    assert.equal((await h.call('GET', '/ui/../package.json')).statusCode, 404);
    assert.equal((await h.call('GET', '/ui/nope.js')).statusCode, 404);
  });

  it('exitnode events prints the history, filtered, and --follow prints what comes', async () => {
    const out: string[] = [];
    const io = { out: (t: string) => void out.push(t), err: (t: string) => void out.push(`ERR ${t}`) };
    assert.equal(await eventsCli(['--server', url, '--token', a.farmToken, '--kind', 'slot.*'], io), 0);
    assert.match(out.join('\n'), /slot\.assigned\s+slot 951\/1 assigned to xev-a-g1, epoch 1/);
    out.length = 0;
    assert.equal(await eventsCli(['--server', url, '--token', a.farmToken, '--json', '--limit', '2'], io), 0);
    assert.equal(out.join('\n').split('\n').length, 2);
    assert.ok(
      out
        .join('\n')
        .split('\n')
        .every((l) => (JSON.parse(l) as EventRecord).farm === 'xev-a'),
    );
    out.length = 0;
    const stop = new AbortController();
    const following = eventsCli(['--server', url, '--token', a.tenantToken, '--follow', '--json'], io, stop.signal);
    await new Promise((r) => setTimeout(r, 500));
    const before = out.length;
    const nr = await json<{ id: string }>(
      'POST',
      `/v1/networks/${netA.id}/resources`,
      a.tenantToken,
      { node: 'xev-a-g2' },
      201,
    );
    for (let i = 0; i < 50 && out.length === before; i++) await new Promise((r) => setTimeout(r, 100));
    stop.abort();
    assert.equal(await following, 0);
    const last = JSON.parse(out[out.length - 1]!) as EventRecord;
    assert.deepEqual([last.kind, last.nr, last.node], ['nr.added', nr.id, 'xev-a-g2']);
    assert.equal(parseTime('10m', 'since', 1_000_000), 400_000);
    assert.equal(parseTime('2026-01-02T00:00:00Z', 'since'), Date.parse('2026-01-02T00:00:00Z'));
  });
});
