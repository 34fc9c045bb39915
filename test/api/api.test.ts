// The API end to end, in-process (app.inject) on PGlite: shapes, scopes, errors, idempotency,
// leases through heartbeats, long-poll latency over real HTTP, OpenAPI and metrics.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, farm, harness, type Farm, type Harness } from './helpers.js';
import { startServer } from '../../src/server/index.js';
import { TnodbClient } from '../../src/client/index.js';
import { VERSION } from '../../src/core/version.js';
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pgCluster, pgSkipReason } from '../support/pg.js';
import { join } from 'node:path';

const KEY = Buffer.alloc(32, 7).toString('base64');

describe('TNoDB API', () => {
  let h: Harness;
  let a: Farm; // xts-a: allocation 941
  let b: Farm; // xts-b: allocation 942
  let netA: string;
  let netB: string;

  before(async () => {
    h = await harness();
    a = await farm(h, { name: 'xts-a', tenant: 'xts-ta', prefix: '2001:db8:4100::/48', number: 941 });
    b = await farm(h, { name: 'xts-b', tenant: 'xts-tb', prefix: '2001:db8:4200::/48', number: 942 });
  });
  after(async () => {
    await h.close();
  });

  it('answers 401 without a token and with an unknown one', async () => {
    for (const [m, u] of [
      ['GET', '/v1/networks'],
      ['POST', '/v1/farms'],
      ['GET', '/v1/nodes/xts-a-g1/view'],
      ['POST', '/v1/nodes/xts-a-g1/heartbeat'],
      ['GET', '/v1/allocations/941'],
    ] as const) {
      const r = await h.call(m, u, undefined, m === 'POST' ? {} : undefined);
      assert.equal(r.statusCode, 401, `${m} ${u}`);
      assert.equal(r.json().error.code, 'UNAUTHORIZED');
      assert.equal((await h.call(m, u, 'xn_nope')).statusCode, 401);
    }
    assert.equal(
      (await h.call('GET', '/v1/networks', undefined, undefined, { authorization: 'Basic abc' })).statusCode,
      401,
    );
  });

  it('refuses 409 until a slot has a node, then creates a network with its ExitPoint', async () => {
    const r0 = await h.call('POST', '/v1/networks', a.tenantToken, { name: 'web', allocation: 941 });
    assert.equal(r0.statusCode, 409);
    assert.match(r0.json().error.message, /assign one/);
    const s = await h.call('PUT', '/v1/allocations/941/slots/1', a.farmToken, { node: 'xts-a-g1' });
    assert.equal(s.statusCode, 200);
    const { allocation, slot, node, epoch, ipv4, leaseExpiresAt, nrs } = s.json();
    assert.deepEqual(
      { allocation, slot, node, epoch, ipv4, leaseExpiresAt, nrs },
      {
        allocation: 941,
        slot: 1,
        node: 'xts-a-g1',
        epoch: 1,
        leaseExpiresAt: h.now.t + 5000,
        nrs: 0,
        ipv4: '192.0.2.21/24',
      },
    );
    assert.equal(
      (await h.call('PUT', '/v1/allocations/942/slots/1', b.farmToken, { node: 'xts-b-g1' })).statusCode,
      200,
    );
    const r = await h.call('POST', '/v1/networks', a.tenantToken, { name: 'web', allocation: 941 });
    assert.equal(r.statusCode, 201);
    const n = r.json();
    assert.match(n.id, /^tn-[0-9a-f]{12}$/);
    assert.deepEqual(
      { ...n, id: 'x' },
      {
        id: 'x',
        name: 'web',
        allocation: 941,
        slot: 1,
        exit: '1000',
        resources: [{ id: '1000', node: 'xts-a-g1', prefix: '2001:db8:4100:1000::/64' }],
      },
    );
    netA = n.id;
    netB = (await h.call('POST', '/v1/networks', b.tenantToken, { name: 'db', allocation: 942 })).json().id;
    // A retried creation with its Idempotency-Key gets the same network; a new key and the same name: 409.
    const k1 = await h.call(
      'POST',
      '/v1/networks',
      a.tenantToken,
      { name: 'api', allocation: 942 },
      { 'idempotency-key': 'xts-net-1' },
    );
    const k2 = await h.call(
      'POST',
      '/v1/networks',
      a.tenantToken,
      { name: 'api', allocation: 942 },
      { 'idempotency-key': 'xts-net-1' },
    );
    assert.equal(k2.statusCode, 201);
    assert.deepEqual(k2.json(), k1.json());
    assert.equal(k2.headers['idempotent-replayed'], 'true');
    assert.equal(
      (
        await h.call(
          'POST',
          '/v1/networks',
          a.tenantToken,
          { name: 'api', allocation: 942 },
          { 'idempotency-key': 'xts-net-2' },
        )
      ).statusCode,
      409,
    );
    assert.equal(
      (
        await h.call('POST', '/v1/networks', a.tenantToken, { name: 'other' }, { 'idempotency-key': 'xts-net-1' })
      ).json().error.code,
      'IDEMPOTENCY_MISMATCH',
    );
    assert.equal((await h.call('DELETE', `/v1/networks/${k1.json().id}`, a.tenantToken)).statusCode, 204);
  });

  it('adds NRs with Idempotency-Key: a retry returns the same NR', async () => {
    const r1 = await h.call(
      'POST',
      `/v1/networks/${netA}/resources`,
      a.tenantToken,
      { node: 'xts-a-w1' },
      { 'idempotency-key': 'xts-req-1' },
    );
    assert.equal(r1.statusCode, 201);
    assert.deepEqual(r1.json(), { id: '1001', node: 'xts-a-w1', prefix: '2001:db8:4100:1001::/64' });
    const r2 = await h.call(
      'POST',
      `/v1/networks/${netA}/resources`,
      a.tenantToken,
      { node: 'xts-a-w1' },
      { 'idempotency-key': 'xts-req-1' },
    );
    assert.equal(r2.statusCode, 201);
    assert.deepEqual(r2.json(), r1.json());
    assert.equal(r2.headers['idempotent-replayed'], 'true');
    const bad = await h.call(
      'POST',
      `/v1/networks/${netA}/resources`,
      a.tenantToken,
      { node: 'xts-a-w2' },
      { 'idempotency-key': 'has space' },
    );
    assert.equal(bad.statusCode, 400);
    const dup = await h.call('POST', `/v1/networks/${netA}/resources`, a.tenantToken, { node: 'xts-a-w1' });
    assert.equal(dup.statusCode, 409);
    assert.equal(dup.json().error.code, 'NR_NODE_TAKEN');
  });

  it('keeps tenants, farms and nodes apart (403/404)', async () => {
    const T = a.tenantToken;
    // another tenant's network: 404, as if it did not exist
    for (const [m, u, body] of [
      ['GET', `/v1/networks/${netB}`],
      ['DELETE', `/v1/networks/${netB}`],
      ['POST', `/v1/networks/${netB}/resources`, { node: 'xts-b-w1' }],
      ['DELETE', `/v1/networks/${netB}/resources/1001`],
    ] as const)
      assert.equal((await h.call(m, u, T, body)).statusCode, 404, `${m} ${u}`);
    assert.deepEqual(
      (await h.call('GET', '/v1/networks', T)).json().map((n: { id: string }) => n.id),
      [netA],
    );
    // a tenant's NR only on nodes of its allocation's farm; another farm's node answers as unknown (issue 11)
    assert.equal((await h.call('POST', `/v1/networks/${netA}/resources`, T, { node: 'xts-b-w1' })).statusCode, 404);
    // farm tokens: only their farm; another farm's things answer 404 as if they did not exist (issue 11)
    assert.equal(
      (await h.call('PUT', '/v1/allocations/942/slots/2', a.farmToken, { node: 'xts-b-g2' })).statusCode,
      404,
    );
    assert.equal((await h.call('GET', '/v1/allocations/942', a.farmToken)).statusCode, 404);
    assert.equal((await h.call('GET', '/v1/farms/xts-b', a.farmToken)).statusCode, 404);
    assert.equal(
      (await h.call('POST', '/v1/nodes', a.farmToken, { farm: 'xts-b', id: 'xts-evil', exitCapable: true })).statusCode,
      404,
    );
    assert.equal(
      (await h.call('POST', '/v1/allocations', a.farmToken, { farm: 'xts-b', prefix: '2001:db8:4300::/48' }))
        .statusCode,
      404,
    );
    assert.equal((await h.call('GET', '/v1/nodes/xts-b-g1/view', a.farmToken)).statusCode, 404);
    // nodes: only their own view, heartbeat and keys
    const N = a.nodeTokens['xts-a-w1']!;
    assert.equal((await h.call('GET', '/v1/nodes/xts-a-w2/view', N)).statusCode, 403);
    assert.equal((await h.call('POST', '/v1/nodes/xts-a-w2/heartbeat', N)).statusCode, 403);
    // an NR the node does not host: 404, whether or not the network or the NR exists (issue 11)
    assert.equal(
      (await h.call('PUT', `/v1/networks/${netA}/resources/1000/key`, N, { publicKey: KEY })).statusCode,
      404,
    );
    assert.equal(
      (await h.call('PUT', `/v1/networks/${netB}/resources/1000/key`, N, { publicKey: KEY })).statusCode,
      404,
    );
    // scopes: nobody but the admin makes farms and tenants; tenants cannot touch farms; nodes cannot act as tenants
    for (const tok of [a.farmToken, T, N])
      assert.equal((await h.call('POST', '/v1/farms', tok, { name: 'xts-x' })).statusCode, 403);
    assert.equal((await h.call('PUT', '/v1/allocations/941/slots/2', T, { node: 'xts-a-g2' })).statusCode, 403);
    assert.equal((await h.call('POST', '/v1/networks', N, { name: 'x' })).statusCode, 403);
    assert.equal((await h.call('GET', `/v1/networks/${netA}`, N)).statusCode, 403);
    assert.equal(
      (await h.call('POST', '/v1/nodes/xts-a-w1/heartbeat', ADMIN)).statusCode,
      403,
      'a heartbeat comes from the node only',
    );
  });

  it('serves the node view and wakes a long-poll on a key change', async () => {
    const N = a.nodeTokens['xts-a-w1']!;
    const v = (await h.call('GET', '/v1/nodes/xts-a-w1/view', N)).json();
    assert.deepEqual(v.networks, [
      {
        id: netA,
        allocation: 941,
        exit: '1000',
        resources: [
          { id: '1000', node: 'xts-a-g1', endpoint: '198.51.100.11:4096' },
          { id: '1001', node: 'xts-a-w1', endpoint: '[2001:db8:ff::1]:4097' },
        ],
      },
    ]);
    assert.deepEqual(v.allocations, [
      {
        number: 941,
        prefix: '2001:db8:4100::/48',
        upstream: { ll: 'fe80::1', ip6: '2001:db8:4100::1', ipv4Gateway: '192.0.2.1', ipv4PrefixLength: 24 },
      },
    ]);
    const same = await h.call('GET', `/v1/nodes/xts-a-w1/view?after=${v.version}&wait=0.2`, N);
    assert.equal(same.json().version, v.version, 'nothing changed: the same version after the wait');
    const waiting = h.call('GET', `/v1/nodes/xts-a-w1/view?after=${v.version}&wait=10`, N);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(
      (await h.call('PUT', `/v1/networks/${netA}/resources/1001/key`, N, { publicKey: 'not-a-key' })).statusCode,
      400,
    );
    assert.equal(
      (
        await h.call('PUT', `/v1/networks/${netA}/resources/1001/key`, N, {
          publicKey: Buffer.alloc(31).toString('base64'),
        })
      ).statusCode,
      400,
    );
    assert.equal(
      (await h.call('PUT', `/v1/networks/${netA}/resources/1001/key`, N, { publicKey: KEY })).statusCode,
      204,
    );
    const v2 = (await waiting).json();
    assert.ok(v2.version > v.version);
    assert.equal(v2.networks[0].resources[1].publicKey, KEY);
    assert.equal((await h.call('GET', '/v1/nodes/xts-a-w1/view?after=-1', N)).statusCode, 400);
    assert.equal((await h.call('GET', '/v1/nodes/xts-a-w1/view?wait=9999&after=1', N)).statusCode, 400);
  });

  it('moves a lapsed slot with epoch + 1; the heartbeat of the holder keeps it', async () => {
    const g1 = a.nodeTokens['xts-a-g1']!;
    const g2 = a.nodeTokens['xts-a-g2']!;
    // Only the leases: the answer may carry more (server time, TTL) for the agent's fencing.
    const hb = async (tok: string, id: string) => ({
      slots: (await h.call('POST', `/v1/nodes/${id}/heartbeat`, tok)).json().slots,
    });
    assert.deepEqual(await hb(g1, 'xts-a-g1'), {
      slots: [{ allocation: 941, slot: 1, epoch: 1, leaseExpiresAt: h.now.t + 5000 }],
    });
    await hb(g2, 'xts-a-g2');
    for (let i = 0; i < 3; i++) {
      h.now.t += 4000;
      await hb(g1, 'xts-a-g1');
      await hb(g2, 'xts-a-g2');
    }
    const before = (await h.call('GET', '/v1/nodes/xts-a-w1/view', a.nodeTokens['xts-a-w1'])).json();
    assert.equal(before.networks[0].resources[0].node, 'xts-a-g1');
    h.now.t += 4000;
    await hb(g2, 'xts-a-g2');
    h.now.t += 1000; // g1's lease ends now
    const v = (await h.call('GET', '/v1/nodes/xts-a-g2/view', g2)).json();
    assert.deepEqual(v.slots, [{ allocation: 941, slot: 1, epoch: 2, ipv4: '192.0.2.21' }]);
    const w = (await h.call('GET', '/v1/nodes/xts-a-w1/view', a.nodeTokens['xts-a-w1'])).json();
    assert.ok(w.version > before.version);
    assert.deepEqual(w.networks[0].resources[0], { id: '1000', node: 'xts-a-g2', endpoint: '198.51.100.12:4096' });
    assert.deepEqual(await hb(g1, 'xts-a-g1'), { slots: [] }, 'the old holder learns it holds nothing');
    assert.deepEqual((await h.call('GET', '/v1/nodes/xts-a-g1/view', g1)).json().slots, []);
  });

  it('removes NRs (not the ExitPoint alone) and deletes networks', async () => {
    const T = a.tenantToken;
    assert.equal((await h.call('DELETE', `/v1/networks/${netA}/resources/1000`, T)).statusCode, 409);
    assert.equal((await h.call('DELETE', `/v1/networks/${netA}/resources/2001`, T)).statusCode, 400);
    assert.equal((await h.call('DELETE', `/v1/networks/${netA}/resources/zz`, T)).statusCode, 400);
    assert.equal((await h.call('DELETE', `/v1/networks/${netA}/resources/1001`, T)).statusCode, 204);
    assert.equal((await h.call('DELETE', `/v1/networks/${netA}/resources/1001`, T)).statusCode, 404);
    assert.equal((await h.call('DELETE', `/v1/networks/${netA}`, T)).statusCode, 204);
    assert.equal((await h.call('GET', `/v1/networks/${netA}`, T)).statusCode, 404);
    assert.equal((await h.call('GET', '/v1/networks/not-an-id', T)).statusCode, 400);
  });

  it('maps bad requests to 4xx with {error: {code, message}}', async () => {
    const cases: [string, string, Record<string, string>, string | undefined, number][] = [
      ['POST', '/v1/farms', { 'content-type': 'application/json' }, '{"name":', 400],
      ['POST', '/v1/farms', { 'content-type': 'application/json' }, '{"name":"xts-z","extra":1}', 400],
      ['POST', '/v1/farms', { 'content-type': 'text/plain' }, 'hello', 415],
      ['POST', '/v1/farms', { 'content-type': 'application/json' }, JSON.stringify({ name: 'x'.repeat(100_000) }), 413],
      ['POST', '/v1/farms', { 'content-type': 'application/json' }, '{"name":"Bad Name"}', 400],
      ['GET', '/v1/nope', {}, undefined, 404],
      [
        'POST',
        '/v1/allocations',
        { 'content-type': 'application/json' },
        '{"farm":"xts-a","prefix":"2001:db8:4100::/47"}',
        400,
      ],
      [
        'POST',
        '/v1/allocations',
        { 'content-type': 'application/json' },
        '{"farm":"xts-a","prefix":"2001:db8:4100::/48"}',
        409,
      ],
      ['PUT', '/v1/allocations/941/slots/0', { 'content-type': 'application/json' }, '{"node":"xts-a-g1"}', 400],
      ['PUT', '/v1/allocations/941/slots/16', { 'content-type': 'application/json' }, '{"node":"xts-a-g1"}', 400],
      ['PUT', '/v1/allocations/99999/slots/1', { 'content-type': 'application/json' }, '{"node":"xts-a-g1"}', 400],
      ['GET', '/v1/allocations/941/upstream?router=nope&iface=swp1', {}, undefined, 400],
    ];
    for (const [method, url, headers, payload, status] of cases) {
      const r = await h.app.inject({
        method: method as 'GET',
        url,
        headers: { authorization: `Bearer ${ADMIN}`, ...headers },
        ...(payload !== undefined ? { payload } : {}),
      });
      assert.equal(r.statusCode, status, `${method} ${url} ${payload?.slice(0, 60)}: ${r.body}`);
      const e = r.json().error;
      assert.equal(typeof e.code, 'string');
      assert.ok(e.message.length > 0 && !e.message.includes('\n    at '), 'one line, no stack');
    }
    const farmName = await h.call('POST', '/v1/farms', ADMIN, { name: 'Bad Name' });
    assert.match(farmName.json().error.message, /"Bad Name"/, 'the message names the value');
  });

  it('renders the upstream configuration of the slots that have a node', async () => {
    const r = await h.call('GET', '/v1/allocations/941/upstream?router=frr&iface=swp1', a.farmToken);
    assert.equal(r.statusCode, 200);
    assert.match(r.headers['content-type'] as string, /^text\/plain/);
    assert.match(r.body, /ipv6 route 2001:db8:4100:1000::\/52 fe80::1000:0:0:1 swp1/);
    assert.doesNotMatch(r.body, /2001:db8:4100:2000::\/52/);
  });

  it('serves OpenAPI, health, metrics and the farm status', async () => {
    const doc = (await h.call('GET', '/docs/json')).json();
    assert.equal(doc.openapi.slice(0, 2), '3.');
    assert.ok(doc.paths['/v1/networks/{id}/resources'].post.requestBody);
    assert.deepEqual((await h.call('GET', '/healthz')).json(), { status: 'ok', driver: 'pglite', version: VERSION });
    assert.equal((await h.call('GET', '/metrics')).statusCode, 401, 'metrics name every farm: admin only (issue 11)');
    const m = (await h.call('GET', '/metrics', ADMIN)).body;
    assert.match(m, /^exitnode_slot_nrs\{allocation="942",slot="1"\} 1$/m);
    assert.match(
      m,
      /exitnode_http_request_duration_seconds_bucket\{method="POST",route="\/v1\/networks",code="201",le="\+Inf"\} \d+/,
    );
    const st = (await h.call('GET', '/v1/farms/xts-a', a.farmToken)).json();
    assert.deepEqual(
      st.allocations[0].slots.map((s: { slot: number; node: string; epoch: number }) => [s.slot, s.node, s.epoch]),
      [[1, 'xts-a-g2', 2]],
    );
    assert.equal(st.nodes.length, 4);
  });
});

async function longPoll(waitOn: string, changeThrough: string, adminToken: string, number: number): Promise<number[]> {
  const admin = new TnodbClient({ server: changeThrough, token: adminToken });
  const farmName = `xts-lp${number}`;
  const f = admin.as((await admin.createFarm(farmName)).token);
  const t = admin.as((await admin.createTenant(`${farmName}t`)).token);
  await f.addAllocation({ farm: farmName, prefix: `2001:db8:${number.toString(16)}::/48`, number });
  await f.addNode({ farm: farmName, id: `${farmName}-g`, exitCapable: true });
  const w = new TnodbClient({
    server: waitOn,
    token: (await f.addNode({ farm: farmName, id: `${farmName}-w`, exitCapable: false })).token,
  });
  await f.assignSlot(number, 1, `${farmName}-g`);
  const net = await t.createNetwork('lp');
  const lat: number[] = [];
  for (let i = 0; i < 6; i++) {
    const v = await w.view(`${farmName}-w`);
    const waiting = w.view(`${farmName}-w`, { after: v.version, waitS: 20 });
    const mine =
      i % 2 === 0 ? undefined : (await t.getNetwork(net.id)).resources.find((r) => r.node === `${farmName}-w`)!.id;
    await new Promise((r) => setTimeout(r, 100));
    // The latency counts from the moment the change is acknowledged (its request answered), not
    // from when it was sent: under load the write itself can take longer than the bound, which
    // says nothing about how fast a waiter is woken. A waiter answered first counts as 0.
    let woken = 0;
    const changed = waiting.then((x) => ((woken = performance.now()), x));
    if (mine === undefined) await t.addResource(net.id, `${farmName}-w`);
    else await t.removeResource(net.id, mine);
    const acked = performance.now();
    assert.ok((await changed).version > v.version);
    lat.push(Math.max(0, woken - acked));
  }
  return lat.sort((x, y) => x - y);
}

/**
 * A waiter is woken by the change, not by a poll: the median of six wakes is under 100 ms and none
 * takes a second (a poll loop or a missed notification shows as ~1 s or the 20 s wait). One wake
 * over 100 ms is tolerated: on a shared 2-core machine a single scheduling delay is not the code's.
 */
function assertWakes(lat: number[], what: string): void {
  const text = `${what} ${lat.map((x) => x.toFixed(1)).join(', ')} ms`;
  assert.ok(lat[Math.floor(lat.length / 2)]! < 100, text);
  assert.ok(lat[lat.length - 2]! < 100 && lat[lat.length - 1]! < 1000, text);
}

describe('TNoDB server over HTTP', () => {
  it('answers a waiting view request within 100 ms of a change made through the API being acknowledged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xts-srv-'));
    const srv = await startServer({ data: dir, listen: '127.0.0.1:0', leaseTtlMs: 3_600_000 });
    try {
      const tokenFile = join(dir, 'admin.token');
      assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
      const lat = await longPoll(srv.url, srv.url, readFileSync(tokenFile, 'utf8').trim(), 0x945);
      assertWakes(lat, 'long-poll latencies');
    } finally {
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it(
    'wakes a waiter on instance A within 100 ms of a change made through instance B (PostgreSQL)',
    { skip: pgSkipReason() },
    async () => {
      const url = await (await pgCluster()).createDb();
      const dirs = [mkdtempSync(join(tmpdir(), 'xts-srv-')), mkdtempSync(join(tmpdir(), 'xts-srv-'))];
      const [a, b] = await Promise.all(
        dirs.map((d) =>
          startServer({
            db: url,
            data: d,
            listen: '127.0.0.1:0',
            adminToken: ADMIN,
            noTokenFile: true,
            leaseTtlMs: 3_600_000,
          }),
        ),
      );
      try {
        const lat = await longPoll(a!.url, b!.url, ADMIN, 0x946);
        assertWakes(lat, 'long-poll latencies across instances');
      } finally {
        await Promise.all([a!.close(), b!.close()]);
        for (const d of dirs) rmSync(d, { recursive: true, force: true });
      }
    },
  );
});
