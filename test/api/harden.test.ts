// Issue 11, in-process: what a hostile tenant, a hostile node and a careless farmer tried against
// the API, one describe per item of the issue (items 4, 8's own address and 11 need a real
// process or socket: harden-process.test.ts; item 10 is the CLI: test/cli/harden.test.ts).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, farm, harness, type Farm, type Harness } from './helpers.js';

const key = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');
const KEY1 = Buffer.alloc(32, 0x11).toString('base64');
const KEY2 = Buffer.alloc(32, 0x22).toString('base64');

/** A farm with slot 1 on g1, a network with an NR on w1. */
async function withNetwork(h: Harness, name: string, number: number): Promise<Farm & { net: string }> {
  const f = await farm(h, {
    name,
    tenant: `${name}t`,
    prefix: `2001:db8:${number.toString(16)}::/48`,
    number,
  });
  assert.equal(
    (await h.call('PUT', `/v1/allocations/${number}/slots/1`, f.farmToken, { node: `${name}-g1` })).statusCode,
    200,
  );
  const net = (await h.call('POST', '/v1/networks', f.tenantToken, { name: 'n' })).json().id as string;
  assert.equal(
    (await h.call('POST', `/v1/networks/${net}/resources`, f.tenantToken, { node: `${name}-w1` })).statusCode,
    201,
  );
  return { ...f, net };
}

describe('item 1: long-polls cannot stall the server', () => {
  let h: Harness;
  let f: Farm & { net: string };
  before(async () => {
    h = await harness({}, { maxPollsPerToken: 32, maxPolls: 40, rateLimit: false });
    f = await withNetwork(h, 'xts-lp', 0x1101);
  });
  after(() => h.close());

  it('caps long-polls per token with 429 and wakes the rest with one view built once', async () => {
    const N = f.nodeTokens['xts-lp-w1']!;
    const v0 = (await h.call('GET', '/v1/nodes/xts-lp-w1/view', N)).json().version as number;
    const polls = Array.from({ length: 200 }, () => h.call('GET', `/v1/nodes/xts-lp-w1/view?after=${v0}&wait=30`, N));
    // The refused ones answer at once; the others are held.
    const settled: { statusCode: number; headers: Record<string, unknown> }[] = [];
    polls.forEach((p) => void p.then((r) => settled.push(r)));
    for (let i = 0; i < 200 && settled.length < 168; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(settled.length, 168, 'the polls past the cap are answered at once');
    assert.ok(settled.every((r) => r.statusCode === 429));
    const refused = await polls[199]!;
    assert.equal(refused.statusCode, 429);
    assert.equal(refused.json().error.code, 'LONG_POLL_LIMIT');
    assert.match(refused.json().error.message, /limit per token \(32\)/);
    // Retry-After from 5 to 10 s, drawn per answer: the refused polls do not all come back in
    // the same instant (a herd that held the event loop for a second, heartbeats waiting behind it).
    const after = Number(refused.headers['retry-after']);
    assert.ok(Number.isInteger(after) && after >= 5 && after <= 10, String(after));
    assert.match(refused.json().error.message, new RegExp(`retry in ${after} s`));
    const spread = new Set(settled.map((r) => r.headers['retry-after']));
    assert.ok(spread.size >= 3, `168 refused polls were told ${[...spread].join(', ')}`);
    assert.equal(h.app.tnodb.polls.open, 32);

    // Health and another node's heartbeat answer while the polls wait.
    assert.equal((await h.call('GET', '/healthz')).statusCode, 200);
    assert.equal((await h.call('POST', '/v1/nodes/xts-lp-g1/heartbeat', f.nodeTokens['xts-lp-g1'])).statusCode, 200);

    const builds = h.app.tnodb.views.builds;
    assert.equal(
      (await h.call('POST', `/v1/networks/${f.net}/resources`, f.tenantToken, { node: 'xts-lp-w2' })).statusCode,
      201,
    );
    const answered = (await Promise.all(polls)).filter((r) => r.statusCode === 200);
    assert.equal(answered.length, 32);
    assert.ok(
      answered.every((r) => r.body === answered[0]!.body),
      'every waiter gets the same bytes',
    );
    assert.ok(answered[0]!.json().version > v0);
    assert.equal(h.app.tnodb.views.builds - builds, 1, 'the new version was built once for the 32 waiters');
    assert.equal(h.app.tnodb.polls.open, 0);
  });

  it('caps long-polls on the whole server, naming that limit', async () => {
    const a = f.nodeTokens['xts-lp-w1']!;
    const b = f.nodeTokens['xts-lp-w2']!;
    const va = (await h.call('GET', '/v1/nodes/xts-lp-w1/view', a)).json().version;
    const vb = (await h.call('GET', '/v1/nodes/xts-lp-w2/view', b)).json().version;
    const held = Array.from({ length: 32 }, () => h.call('GET', `/v1/nodes/xts-lp-w1/view?after=${va}&wait=0.5`, a));
    await new Promise((r) => setTimeout(r, 100));
    const more = await Promise.all(
      Array.from({ length: 10 }, () => h.call('GET', `/v1/nodes/xts-lp-w2/view?after=${vb}&wait=0.3`, b)),
    );
    const refused = more.filter((r) => r.statusCode === 429);
    assert.equal(refused.length, 2, 'the server holds 40 in all');
    assert.match(refused[0]!.json().error.message, /the server holds 40 view long-polls, its limit \(40\)/);
    await Promise.all(held);
  });
});

describe('item 2: quotas and rate limits', () => {
  let h: Harness;
  let f: Farm & { net: string };
  before(async () => {
    h = await harness({}, { rateLimit: false });
    f = await withNetwork(h, 'xts-q', 0x1201);
  });
  after(() => h.close());

  it('a tenant stops at its NR quota, set by the admin; concurrent requests do not pass it', async () => {
    const q0 = (await h.call('GET', '/v1/tenants/xts-qt/quota', f.tenantToken)).json();
    assert.deepEqual(q0, { networks: { limit: 256, used: 1 }, nrs: { limit: 1024, used: 2 } }, 'the defaults');
    assert.equal(
      (await h.call('PUT', '/v1/tenants/xts-qt/quota', f.tenantToken, { nrs: 5 })).statusCode,
      403,
      'only the admin sets quotas',
    );
    const set = await h.call('PUT', '/v1/tenants/xts-qt/quota', ADMIN, { nrs: 5 });
    assert.equal(set.statusCode, 200);
    assert.deepEqual(set.json().nrs, { limit: 5, used: 2 });
    const nets = [f.net];
    for (let i = 0; i < 3; i++) {
      const r = await h.call('POST', '/v1/networks', f.tenantToken, { name: `m${i}` });
      if (r.statusCode === 201) nets.push(r.json().id);
      else {
        assert.equal(r.statusCode, 409);
        assert.equal(r.json().error.code, 'QUOTA_EXCEEDED');
      }
    }
    assert.equal(nets.length, 4, 'three more networks, each with its ExitPoint NR: 5 NRs');
    const adds = await Promise.all(
      ['xts-q-w1', 'xts-q-w2', 'xts-q-g2'].flatMap((node) =>
        nets.map((n) => h.call('POST', `/v1/networks/${n}/resources`, f.tenantToken, { node })),
      ),
    );
    assert.equal(adds.filter((r) => r.statusCode === 201).length, 0, 'no NR past the quota');
    const e = adds.find((r) => r.statusCode === 409 && r.json().error.code === 'QUOTA_EXCEEDED')!.json().error;
    assert.match(e.message, /tenant "xts-qt" has reached its quota of 5 NRs \(quota "nrs"\)/);
    assert.match(e.message, /PUT \/v1\/tenants\/xts-qt\/quota/);
    assert.deepEqual((await h.call('GET', '/v1/tenants/xts-qt/quota', ADMIN)).json().nrs, { limit: 5, used: 5 });
    await h.call('PUT', '/v1/tenants/xts-qt/quota', ADMIN, { nrs: 6 });
    assert.equal(
      (await h.call('POST', `/v1/networks/${nets[1]}/resources`, f.tenantToken, { node: 'xts-q-w1' })).statusCode,
      201,
    );
    assert.equal((await h.call('GET', '/v1/tenants/xts-qt/quota', 'xn_nope')).statusCode, 401, 'quotas are not public');
  });

  it('a tenant stops at its network quota', async () => {
    await h.call('PUT', '/v1/tenants/xts-qt/quota', ADMIN, { networks: 4, nrs: 100 });
    const r = await h.call('POST', '/v1/networks', f.tenantToken, { name: 'one-too-many' });
    assert.equal(r.statusCode, 409);
    assert.match(r.json().error.message, /quota of 4 networks \(quota "networks"\)/);
  });

  it('a farm stops at 8 allocations by default, and at its node quota', async () => {
    const tok = f.farmToken;
    const codes: number[] = [];
    for (let i = 2; i <= 9; i++)
      codes.push(
        (await h.call('POST', '/v1/allocations', tok, { farm: 'xts-q', prefix: `2001:db8:12${i}0::/48` })).statusCode,
      );
    assert.deepEqual(codes, [201, 201, 201, 201, 201, 201, 201, 409], 'the 9th /48 is refused (default quota 8)');
    const last = await h.call('POST', '/v1/allocations', tok, { farm: 'xts-q', prefix: '2001:db8:12a0::/48' });
    assert.match(last.json().error.message, /farm "xts-q" has reached its quota of 8 allocations/);
    assert.deepEqual((await h.call('GET', '/v1/farms/xts-q/quota', tok)).json(), {
      allocations: { limit: 8, used: 8 },
      nodes: { limit: 256, used: 4 },
    });
    await h.call('PUT', '/v1/farms/xts-q/quota', ADMIN, { nodes: 4 });
    const n = await h.call('POST', '/v1/nodes', tok, { farm: 'xts-q', id: 'xts-q-w9', exitCapable: false });
    assert.equal(n.statusCode, 409);
    assert.match(n.json().error.message, /quota of 4 nodes \(quota "nodes"\)/);
    assert.equal((await h.call('PUT', '/v1/farms/xts-q/quota', ADMIN, { nodes: -1 })).statusCode, 400);
    assert.equal((await h.call('PUT', '/v1/farms/xts-q/quota', ADMIN, { nrs: 3 })).statusCode, 400);
    assert.equal((await h.call('PUT', '/v1/farms/xts-nope/quota', ADMIN, { nodes: 3 })).statusCode, 404);
  });

  it('limits the requests of a token, each token apart, with 429 naming the limit', async () => {
    const r = await harness({}, { rateLimit: { max: 5, windowMs: 60_000 } });
    try {
      const g = await farm(r, { name: 'xts-rl', tenant: 'xts-rlt', prefix: '2001:db8:1210::/48', number: 0x1210 });
      const codes: number[] = [];
      for (let i = 0; i < 7; i++) codes.push((await r.call('GET', '/v1/allocations', g.farmToken)).statusCode);
      // farm() made 1 allocation and 4 nodes with the farm token: its window is full already
      assert.ok(
        codes.every((c) => c === 429),
        codes.join(),
      );
      const e = await r.call('GET', '/v1/allocations', g.farmToken);
      assert.equal(e.json().error.code, 'RATE_LIMITED');
      assert.match(e.json().error.message, /more than 5 requests in 60 s, the rate limit per token/);
      // The window's end (at most 60 s away) plus up to one window more, drawn per answer.
      const after = Number(e.headers['retry-after']);
      assert.ok(after > 0 && after <= 120, String(after));
      assert.match(e.json().error.message, new RegExp(`retry in ${after} s`));
      const told = new Set<unknown>();
      for (let i = 0; i < 20; i++)
        told.add((await r.call('GET', '/v1/allocations', g.farmToken)).headers['retry-after']);
      assert.ok(told.size >= 3, `20 refused requests were told ${[...told].join(', ')}`);
      assert.equal(
        (await r.call('GET', '/v1/networks', g.tenantToken)).statusCode,
        200,
        'another token is not limited',
      );
      assert.equal((await r.call('GET', '/healthz')).statusCode, 200);
    } finally {
      await r.close();
    }
  });
});

describe('item 3: keys', () => {
  let h: Harness;
  let f: Farm & { net: string };
  before(async () => {
    h = await harness({}, { rateLimit: false });
    f = await withNetwork(h, 'xts-k', 0x1301);
    await h.call('POST', `/v1/networks/${f.net}/resources`, f.tenantToken, { node: 'xts-k-w2' });
  });
  after(() => h.close());

  it('refuses the all-zero key, the other low-order points and non-canonical encodings', async () => {
    const W1 = f.nodeTokens['xts-k-w1']!;
    const bad = [
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0100000000000000000000000000000000000000000000000000000000000000',
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
      '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      '0900000000000000000000000000000000000000000000000000000000000080',
    ];
    for (const hex of bad) {
      const r = await h.call('PUT', `/v1/networks/${f.net}/resources/1001/key`, W1, { publicKey: key(hex) });
      assert.equal(r.statusCode, 400, hex);
      assert.equal(r.json().error.code, 'KEY_INVALID', hex);
    }
    assert.equal(
      (await h.call('PUT', `/v1/networks/${f.net}/resources/1001/key`, W1, { publicKey: KEY1 })).statusCode,
      204,
    );
  });

  it("refuses another NR's key, without saying whose", async () => {
    const W2 = f.nodeTokens['xts-k-w2']!;
    const r = await h.call('PUT', `/v1/networks/${f.net}/resources/1002/key`, W2, { publicKey: KEY1 });
    assert.equal(r.statusCode, 409);
    assert.equal(r.json().error.code, 'KEY_TAKEN');
    assert.doesNotMatch(r.json().error.message, /1001|xts-k-w1/);
    assert.equal(
      (await h.call('PUT', `/v1/networks/${f.net}/resources/1002/key`, W2, { publicKey: KEY2 })).statusCode,
      204,
    );
    // The same NR publishing its own key again is fine.
    assert.equal(
      (await h.call('PUT', `/v1/networks/${f.net}/resources/1001/key`, f.nodeTokens['xts-k-w1'], { publicKey: KEY1 }))
        .statusCode,
      204,
    );
    const v = (await h.call('GET', '/v1/nodes/xts-k-g1/view', f.nodeTokens['xts-k-g1'])).json();
    const keys = v.networks[0].resources.map((x: { publicKey?: string }) => x.publicKey).filter(Boolean);
    assert.deepEqual(keys, [KEY1, KEY2], 'no node sees one key on two peers');
  });
});

describe('item 5: no control characters reach a terminal', () => {
  let h: Harness;
  let f: Farm & { net: string };
  before(async () => {
    h = await harness({}, { rateLimit: false });
    f = await withNetwork(h, 'xts-cc', 0x1501);
  });
  after(() => h.close());

  it('refuses a heartbeat reason with escape sequences, naming the field; a clean one is kept', async () => {
    const G = f.nodeTokens['xts-cc-g1']!;
    const r = await h.call('POST', '/v1/nodes/xts-cc-g1/heartbeat', G, {
      slots: [{ allocation: 0x1501, slot: 1, healthy: false, reason: '\u001b[2J\u001b[H1501/1  evil' }],
    });
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().error.code, 'CONTROL_CHARACTER');
    assert.match(r.json().error.message, /body\.slots\[0\]\.reason holds the control character U\+001B at position 0/);
    for (const reason of ['a\nfake row', 'tab\there', 'c1 \u009b2J', 'del \u007f', 'bidi \u202e']) {
      const x = await h.call('POST', '/v1/nodes/xts-cc-g1/heartbeat', G, {
        slots: [{ allocation: 0x1501, slot: 1, healthy: false, reason }],
      });
      assert.equal(x.statusCode, 400, JSON.stringify(reason));
    }
    const slot = (await h.call('GET', `/v1/allocations/${0x1501}`, f.farmToken)).json().slots[0];
    assert.equal(slot.health, undefined, 'nothing was stored');
    assert.equal(
      (await h.call('GET', `/v1/nodes?farm=${encodeURIComponent('x\u001by')}`, ADMIN)).json().error.code,
      'CONTROL_CHARACTER',
    );
  });
});

describe('item 6: strict JSON types', () => {
  let h: Harness;
  let f: Farm;
  before(async () => {
    h = await harness({}, { rateLimit: false });
    f = await farm(h, { name: 'xts-ty', tenant: 'xts-tyt', prefix: '2001:db8:1601::/48', number: 0x1601 });
  });
  after(() => h.close());

  it('refuses a wrong type with 400 naming the field, instead of coercing it', async () => {
    const pool = (prefixLength: unknown) => ({
      farm: 'xts-ty',
      prefix: '2001:db8:1602::/48',
      ipv4: { addresses: ['192.0.2.2'], prefixLength, gateway: '192.0.2.1' },
    });
    for (const v of [true, '24', 24.5, null, [24]]) {
      const r = await h.call('POST', '/v1/allocations', f.farmToken, pool(v));
      assert.equal(r.statusCode, 400, JSON.stringify(v));
      assert.match(r.json().error.message, /prefixLength/, JSON.stringify(v));
    }
    const n = await h.call('POST', '/v1/nodes', f.farmToken, { farm: 'xts-ty', id: 'xts-ty-x', exitCapable: 'true' });
    assert.equal(n.statusCode, 400);
    assert.match(n.json().error.message, /exitCapable/);
    const a = await h.call('POST', '/v1/allocations', f.farmToken, {
      farm: 'xts-ty',
      prefix: '2001:db8:1603::/48',
      number: '5',
    });
    assert.equal(a.statusCode, 400);
    assert.match(a.json().error.message, /number/);
    const N = f.nodeTokens['xts-ty-w1']!;
    for (const after of ['1e309', '1e3', '0x10', '1.5', '-1', ' 1', 'Infinity']) {
      const r = await h.call('GET', `/v1/nodes/xts-ty-w1/view?after=${encodeURIComponent(after)}&wait=0`, N);
      assert.equal(r.statusCode, 400, after);
      assert.match(r.json().error.message, /after/, after);
    }
    assert.equal((await h.call('GET', '/v1/nodes/xts-ty-w1/view?wait=1e2&after=1', N)).statusCode, 400);
    assert.equal((await h.call('GET', '/v1/nodes/xts-ty-w1/view?wait=301&after=1', N)).statusCode, 400);
    assert.equal((await h.call('GET', '/v1/nodes/xts-ty-w1/view?wait=0.05&after=1', N)).statusCode, 200);
    const ok = await h.call('POST', '/v1/allocations', f.farmToken, pool(24));
    assert.equal(ok.statusCode, 201);
    assert.equal(ok.json().ipv4.prefixLength, 24);
  });
});

describe('item 7: existence does not leak', () => {
  let h: Harness;
  let a: Farm & { net: string };
  let b: Farm & { net: string };
  before(async () => {
    h = await harness({}, { rateLimit: false });
    a = await withNetwork(h, 'xts-la', 0x1701);
    b = await withNetwork(h, 'xts-lb', 0x1702);
  });
  after(() => h.close());

  /** Status and body of two requests, with the differing id put back to one name. */
  async function same(
    [m, u1, u2]: [string, string, string],
    token: string,
    body?: (x: string) => unknown,
    [x1, x2]: [string, string] = ['', ''],
  ): Promise<void> {
    const r1 = await h.call(m, u1, token, body?.(x1));
    const r2 = await h.call(m, u2, token, body?.(x2));
    assert.equal(r1.statusCode, 404, `${m} ${u1}: ${r1.body}`);
    assert.equal(r2.statusCode, r1.statusCode, `${m} ${u2}`);
    const norm = (s: string, x: string) => (x ? s.replaceAll(x, 'X') : s);
    assert.equal(norm(r2.body, x2 || u2), norm(r1.body, x1 || u1), `${m} ${u1} / ${u2}`);
    assert.doesNotMatch(norm(r1.body, x1 || u1), /xts-lb/, 'no message names the other farm');
  }

  it("answers the same 404 for another farm's allocation, node and farm as for none", async () => {
    const T = a.farmToken;
    const body = await h.call('GET', `/v1/allocations/${0x1702}`, T);
    const none = await h.call('GET', '/v1/allocations/9999', T);
    assert.equal(body.statusCode, 404);
    assert.equal(none.statusCode, 404);
    assert.equal(body.body.replace(String(0x1702), 'N'), none.body.replace('9999', 'N'));
    await same(['GET', '/v1/nodes/xts-lb-g1', '/v1/nodes/xts-zz-g1'], T, undefined, ['xts-lb-g1', 'xts-zz-g1']);
    await same(['GET', '/v1/nodes/xts-lb-g1/view', '/v1/nodes/xts-zz-g1/view'], T, undefined, [
      'xts-lb-g1',
      'xts-zz-g1',
    ]);
    await same(['GET', '/v1/farms/xts-lb', '/v1/farms/xts-zz'], T, undefined, ['xts-lb', 'xts-zz']);
    await same(
      ['PUT', `/v1/allocations/${0x1701}/slots/2`, `/v1/allocations/${0x1701}/slots/2`],
      T,
      (n) => ({ node: n }),
      ['xts-lb-g2', 'xts-zz-g2'],
    );
    await same(
      ['POST', `/v1/allocations/${0x1701}/slots/1/move`, `/v1/allocations/${0x1701}/slots/1/move`],
      T,
      (n) => ({ to: n }),
      ['xts-lb-g2', 'xts-zz-g2'],
    );
    await same(['POST', '/v1/nodes', '/v1/nodes'], T, (f) => ({ farm: f, id: 'xts-new', exitCapable: true }), [
      'xts-lb',
      'xts-zz',
    ]);
  });

  it("answers the same for a tenant's NR on another farm's node and on no node", async () => {
    await same(
      ['POST', `/v1/networks/${a.net}/resources`, `/v1/networks/${a.net}/resources`],
      a.tenantToken,
      (n) => ({ node: n }),
      ['xts-lb-w2', 'xts-zz-w2'],
    );
  });

  it("answers the same for a node's key on an NR it does not host, whether it exists or not", async () => {
    const W = a.nodeTokens['xts-la-w1']!;
    const k = { publicKey: KEY1 };
    const other = await h.call('PUT', `/v1/networks/${b.net}/resources/1001/key`, W, k);
    const none = await h.call('PUT', '/v1/networks/tn-000000000000/resources/1001/key', W, k);
    const notHosted = await h.call('PUT', `/v1/networks/${a.net}/resources/1000/key`, W, k);
    for (const r of [other, none, notHosted]) {
      assert.equal(r.statusCode, 404);
      assert.equal(r.json().error.code, 'NR_UNKNOWN');
    }
    assert.equal(other.body.replace(b.net, 'N'), none.body.replace('tn-000000000000', 'N'));
  });
});

describe('item 8: /metrics needs the admin token', () => {
  let h: Harness;
  let f: Farm;
  before(async () => {
    h = await harness({}, { rateLimit: false });
    f = await farm(h, { name: 'xts-m', tenant: 'xts-mt', prefix: '2001:db8:1801::/48', number: 0x1801 });
  });
  after(() => h.close());

  it('answers 401 without a token, 403 to a farm, the metrics to the admin', async () => {
    const none = await h.call('GET', '/metrics');
    assert.equal(none.statusCode, 401);
    assert.doesNotMatch(none.body, /xts-m/);
    const farmer = await h.call('GET', '/metrics', f.farmToken);
    assert.equal(farmer.statusCode, 403);
    assert.match(farmer.json().error.message, /needs an admin token/);
    const ok = await h.call('GET', '/metrics', ADMIN);
    assert.equal(ok.statusCode, 200);
    assert.match(ok.body, /exitnode_longpolls_open 0/);
  });
});

describe('item 9: careless values are refused with the rule named', () => {
  let h: Harness;
  let f: Farm;
  before(async () => {
    h = await harness({}, { rateLimit: false });
    f = await farm(h, { name: 'xts-cv', tenant: 'xts-cvt', prefix: '2001:db8:1901::/48', number: 0x1901 });
  });
  after(() => h.close());

  it("refuses a node's public address that is unspecified, broadcast, multicast or loopback", async () => {
    const cases: [string, string, RegExp][] = [
      ['publicIPv4', '0.0.0.0', /0\.0\.0\.0\/8/],
      ['publicIPv4', '255.255.255.255', /limited broadcast/],
      ['publicIPv4', '224.0.0.1', /multicast/],
      ['publicIPv4', '127.0.0.1', /loopback/],
      ['publicIPv4', '169.254.1.1', /link-local/],
      ['publicIPv4', '240.0.0.1', /reserved/],
      ['publicIPv6', '::', /unspecified/],
      ['publicIPv6', '::1', /loopback/],
      ['publicIPv6', 'ff02::1', /multicast/],
      ['publicIPv6', 'fe80::1', /link-local/],
      ['publicIPv6', '::ffff:198.51.100.1', /IPv4-mapped/],
    ];
    for (const [field, value, rule] of cases) {
      const r = await h.call('POST', '/v1/nodes', f.farmToken, {
        farm: 'xts-cv',
        id: 'xts-cv-x',
        exitCapable: true,
        [field]: value,
      });
      assert.equal(r.statusCode, 400, `${field} ${value}`);
      assert.equal(r.json().error.code, 'NODE_ADDRESS');
      assert.match(r.json().error.message, rule);
      assert.match(r.json().error.message, new RegExp(value.replaceAll('.', '\\.')));
    }
    const ok = await h.call('POST', '/v1/nodes', f.farmToken, {
      farm: 'xts-cv',
      id: 'xts-cv-ok',
      exitCapable: true,
      publicIPv4: '10.1.2.3',
    });
    assert.equal(ok.statusCode, 201, "a private address is a farm's business");
  });

  it('refuses an IPv4 pool of prefix length 1, and pool addresses a slot cannot use', async () => {
    const pool = (addresses: string[], prefixLength: number, gateway: string) =>
      h.call('POST', '/v1/allocations', f.farmToken, {
        farm: 'xts-cv',
        prefix: '2001:db8:1902::/48',
        ipv4: { addresses, prefixLength, gateway },
      });
    const cases: [string[], number, string, RegExp][] = [
      [['128.0.0.2'], 1, '128.0.0.1', /prefixLength 1 must be a whole number from 16 to 32/],
      [['0.0.0.0'], 16, '0.0.1.1', /is in 0\.0\.0\.0\/8/],
      [['192.0.2.255'], 24, '192.0.2.1', /broadcast address of 192\.0\.2\.0\/24/],
      [['192.0.2.0'], 24, '192.0.2.1', /network address of 192\.0\.2\.0\/24/],
      [['192.0.2.5'], 24, '192.0.2.255', /IPv4 gateway "192\.0\.2\.255" is the broadcast address/],
      [['224.0.0.5'], 24, '224.0.0.1', /multicast/],
    ];
    for (const [addresses, len, gw, rule] of cases) {
      const r = await pool(addresses, len, gw);
      assert.equal(r.statusCode, 400, `${addresses} /${len} via ${gw}: ${r.body}`);
      assert.equal(r.json().error.code, 'IPV4_POOL');
      assert.match(r.json().error.message, rule);
    }
    assert.equal((await pool(['192.0.2.5'], 24, '192.0.2.1')).statusCode, 201);
  });
});
