// Stage 2 over the API (issue 10): a 'vrrp' allocation, the slot's ordered candidates, node keys,
// sealed keys (the client's publishNodeKey / publishSealedKeys over real HTTP), heartbeats with
// VRRP states and learned endpoints (strictly typed), the view's stage-2 fields as served, the
// dual-master step-down, `slot list` and /metrics.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ADMIN, harness, type Harness } from './helpers.js';
import { TnodbClient } from '../../src/client/index.js';
import { generateNodeKey, openSealed, seal } from '../../src/core/seal.js';
import { parseNodeView, type NodeView } from '../../src/core/view.js';
import { run as slotCli } from '../../src/cli/commands/slot.js';

const A = 961;
const F = 'xca-farm';
const [G1, G2, G3, W1] = ['xca-g1', 'xca-g2', 'xca-g3', 'xca-w1'] as const;

describe('stage 2 over the API', () => {
  let h: Harness;
  let url = '';
  let farmToken = '';
  let tenantToken = '';
  const tokens: Record<string, string> = {};
  const keys = { [G1]: generateNodeKey(), [G2]: generateNodeKey(), [G3]: generateNodeKey() };
  let net = '';
  let exit = '';
  let wnr = '';
  const client = (t: string): TnodbClient => new TnodbClient({ server: url, token: t });
  const view = async (n: string): Promise<NodeView> => {
    const r = await h.call('GET', `/v1/nodes/${n}/view`, tokens[n]);
    assert.equal(r.statusCode, 200, r.body);
    const v = r.json() as NodeView;
    assert.deepEqual(parseNodeView(v), v);
    return v;
  };

  before(async () => {
    h = await harness();
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const addr = h.app.server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    farmToken = (await h.call('POST', '/v1/farms', ADMIN, { name: F })).json().token;
    tenantToken = (await h.call('POST', '/v1/tenants', ADMIN, { name: 'xca-t' })).json().token;
    for (const [id, exitCapable] of [
      [G1, true],
      [G2, true],
      [G3, true],
      [W1, false],
    ] as const)
      tokens[id] = (
        await h.call('POST', '/v1/nodes', farmToken, {
          farm: F,
          id,
          exitCapable,
          ...(id === W1 ? { publicIPv4: '198.51.100.71' } : {}),
        })
      ).json().token;
    h.now.t += 6000;
    for (const n of [G1, G2, G3, W1]) await h.call('POST', `/v1/nodes/${n}/heartbeat`, tokens[n]);
  });
  after(async () => {
    await h.close();
  });

  it('registers a vrrp allocation and refuses a bad mode', async () => {
    const bad = await h.call('POST', '/v1/allocations', farmToken, {
      farm: F,
      prefix: '2001:db8:6a00::/48',
      failover: 'bgp',
    });
    assert.equal(bad.statusCode, 400);
    const r = await h.call('POST', '/v1/allocations', farmToken, {
      farm: F,
      prefix: '2001:db8:6a00::/48',
      number: A,
      ipv4: { addresses: ['192.0.2.71'], prefixLength: 24, gateway: '192.0.2.1' },
      failover: 'vrrp',
      candidates: 2,
    });
    assert.equal(r.statusCode, 201, r.body);
    assert.deepEqual([r.json().failover, r.json().candidates], ['vrrp', 2]);
    assert.equal((await h.call('GET', `/v1/allocations/${A}`, farmToken)).json().failover, 'vrrp');
  });

  it('takes an ordered list of candidates, validated', async () => {
    const put = (body: unknown) => h.call('PUT', `/v1/allocations/${A}/slots/1`, farmToken, body);
    for (const [body, status, code] of [
      [{ nodes: [] }, 400, 'BAD_REQUEST'],
      [{ node: G1, nodes: [G1] }, 400, 'BAD_REQUEST'],
      [{ nodes: [G1, G1] }, 400, 'CANDIDATES_INVALID'],
      [{ nodes: [G1, G2, G3] }, 400, 'CANDIDATES_INVALID'],
      [{ nodes: [G1, W1] }, 409, 'NODE_NOT_EXIT_CAPABLE'],
      [{ nodes: [G1, 'xca-nope'] }, 404, 'NODE_UNKNOWN'],
      [{ nodes: 'xca-g1' }, 400, 'BAD_REQUEST'],
    ] as const) {
      const r = await put(body);
      assert.equal(r.statusCode, status, `${JSON.stringify(body)}: ${r.body}`);
      assert.equal(r.json().error.code, code, JSON.stringify(body));
    }
    // Through the client, over HTTP.
    const s = await client(farmToken).assignSlot(A, 1, [G2, G1]);
    assert.equal(s.node, G2);
    assert.deepEqual(
      s.candidates!.map((c) => [c.node, c.rank, c.priority]),
      [
        [G2, 0, 250],
        [G1, 1, 200],
      ],
    );
    const { slots } = (await h.call('GET', `/v1/allocations/${A}`, farmToken)).json() as {
      slots: { candidates?: { node: string }[] }[];
    };
    assert.deepEqual(
      slots[0]!.candidates!.map((c) => c.node),
      [G2, G1],
    );
  });

  it('publishes node keys (the node itself) and sealed keys (the ExitPoint node only)', async () => {
    for (const n of [G1, G2, G3]) await client(tokens[n]!).publishNodeKey(n, keys[n].publicKey);
    const other = await h.call('PUT', `/v1/nodes/${G1}/node-key`, tokens[G2], { publicKey: keys[G2].publicKey });
    assert.equal(other.statusCode, 403);
    const farmer = await h.call('PUT', `/v1/nodes/${G1}/node-key`, farmToken, { publicKey: keys[G1].publicKey });
    assert.equal(farmer.statusCode, 403);
    const bad = await h.call('PUT', `/v1/nodes/${G1}/node-key`, tokens[G1], { publicKey: 'abc' });
    assert.deepEqual([bad.statusCode, bad.json().error.code], [400, 'KEY_SYNTAX']);

    const n = await h.call('POST', '/v1/networks', tenantToken, { name: 'web', allocation: A });
    assert.equal(n.statusCode, 201, n.body);
    net = n.json().id;
    exit = n.json().exit;
    wnr = (await h.call('POST', `/v1/networks/${net}/resources`, tenantToken, { node: W1 })).json().id;
    const plain = randomBytes(32);
    const sealed = seal(plain, keys[G1].publicKey);
    const path = `/v1/networks/${net}/resources/${exit}/sealed`;
    for (const [tok, body, status, code] of [
      [tokens[G1], { keys: [{ node: G3, sealed }] }, 404, 'NR_UNKNOWN'], // g2 hosts the ExitPoint
      [tokens[G2], { keys: [{ node: W1, sealed }] }, 409, 'NODE_NOT_EXIT_CAPABLE'],
      [tokens[G2], { keys: [{ node: G1, sealed: 'bm90IGEga2V5' }] }, 400, 'SEALED_INVALID'],
      [tokens[G2], { keys: [{ node: G1, sealed: '!!!' }] }, 400, 'SEALED_INVALID'],
      [tokens[G2], { keys: [{ node: G1, sealed, extra: 1 }] }, 400, 'BAD_REQUEST'],
      [tokens[G2], { keys: [] }, 400, 'BAD_REQUEST'],
      [farmToken, { keys: [{ node: G1, sealed }] }, 403, 'FORBIDDEN'],
    ] as const) {
      const r = await h.call('PUT', path, tok, body);
      assert.equal(r.statusCode, status, `${JSON.stringify(body)}: ${r.body}`);
      assert.equal(r.json().error.code, code, JSON.stringify(body));
    }
    await client(tokens[G2]!).publishSealedKeys(net, exit, [
      { node: G1, sealed },
      { node: G3, sealed: seal(plain, keys[G3].publicKey) },
    ]);
    const g1 = await view(G1);
    assert.deepEqual(g1.slots, [
      { allocation: A, slot: 1, epoch: 1, ipv4: '192.0.2.71', candidates: [G2, G1], priority: 200 },
    ]);
    assert.deepEqual(
      g1.sealTo!.map((x) => x.node),
      [G2, G3],
    );
    const e = g1.networks[0]!.resources.find((x) => x.id === exit)!;
    assert.equal(e.endpoint, `192.0.2.71:${parseInt(exit, 16)}`, 'the floating endpoint');
    assert.deepEqual(openSealed(e.sealedKey!, keys[G1].privateKey), plain);
    const w = await view(W1);
    assert.equal(w.sealTo, undefined);
    assert.equal(w.networks[0]!.resources.find((x) => x.id === exit)!.endpoint, e.endpoint);
  });

  it('takes VRRP states and learned endpoints in the heartbeat, strictly', async () => {
    const hb = (n: string, body: unknown) => h.call('POST', `/v1/nodes/${n}/heartbeat`, tokens[n], body);
    const t = h.now.t;
    for (const body of [
      { vrrp: [{ allocation: A, slot: 1, state: 'master', priority: 250, since: t }] },
      { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: '250', since: t }] },
      { vrrp: [{ allocation: A, slot: 16, state: 'MASTER', priority: 250, since: t }] },
      { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: 250, since: t, extra: true }] },
      { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: 256, since: t }] },
      { endpoints: [{ network: net, nr: wnr, endpoint: '203.0.113.7:99999' }] },
      { endpoints: [{ network: net, nr: wnr, endpoint: '203.0.113.7:51820\n' }] },
      { endpoints: [{ network: net, nr: 'zz', endpoint: '203.0.113.7:51820' }] },
      { endpoints: [{ network: 'tn-x', nr: wnr, endpoint: '203.0.113.7:51820' }] },
    ]) {
      const r = await hb(G2, body);
      assert.equal(r.statusCode, 400, `${JSON.stringify(body)}: ${r.body}`);
    }
    assert.equal(
      (await hb(G2, { vrrp: [{ allocation: A, slot: 1, state: 'MASTER', priority: 250, since: t }] })).statusCode,
      200,
    );
    assert.equal(
      (await hb(G1, { vrrp: [{ allocation: A, slot: 1, state: 'BACKUP', priority: 200, since: t }] })).statusCode,
      200,
    );
    const r = await hb(G2, { endpoints: [{ network: net, nr: wnr, endpoint: '203.0.113.7:51820' }] });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(
      (await view(G1)).networks[0]!.resources.find((x) => x.id === wnr)!.learnedEndpoint,
      '203.0.113.7:51820',
    );
    assert.equal((await view(W1)).networks[0]!.resources.find((x) => x.id === wnr)!.learnedEndpoint, undefined);
  });

  it('orders a step-down on two masters, shows it in slot list, events and /metrics', async () => {
    const hb = (n: string, state: string) =>
      h.call('POST', `/v1/nodes/${n}/heartbeat`, tokens[n], {
        vrrp: [{ allocation: A, slot: 1, state, priority: 200, since: h.now.t }],
      });
    h.now.t += 300;
    await hb(G1, 'MASTER');
    h.now.t += 300;
    await hb(G2, 'MASTER');
    assert.equal((await view(G1)).slots[0]!.stepDown, true);
    const ev = (await h.call('GET', '/v1/events?kind=slot.dual_master', farmToken)).json().events;
    assert.equal(ev.length, 1);
    assert.deepEqual(ev[0].data, { masters: [G2, G1], kept: G2, stepDown: [G1] });

    const out: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => out.push(s) };
    assert.equal(await slotCli(['list', String(A), '--server', url, '--token', farmToken], io as never), 0);
    const text = out.join('\n');
    assert.match(text, new RegExp(`${A}/1\\s+${G2}\\s+0\\s+250\\s+MASTER`));
    assert.match(text, new RegExp(`${A}/1\\s+${G1}\\s+1\\s+200\\s+MASTER\\s+200\\s+.*heartbeating\\s+yes`));

    const m = (await h.call('GET', '/metrics', ADMIN)).body;
    assert.match(
      m,
      new RegExp(`exitnode_vrrp_state\\{allocation="${A}",slot="1",node="${G2}",rank="0",state="MASTER"\\} 1`),
    );
    assert.match(
      m,
      new RegExp(`exitnode_vrrp_state\\{allocation="${A}",slot="1",node="${G1}",rank="1",state="BACKUP"\\} 0`),
    );
    assert.match(m, new RegExp(`exitnode_vrrp_transitions_total\\{allocation="${A}",slot="1"\\} 3`));

    // The dashboard draws each candidate with the role its agent reports.
    const o = (await h.call('GET', `/v1/farms/${F}/overview`, farmToken)).json() as {
      allocations: { number: number; slots: { candidates: { node: string; role: string; stepDown?: boolean }[] }[] }[];
    };
    assert.deepEqual(
      o.allocations.find((x) => x.number === A)!.slots[0]!.candidates.map((c) => [c.node, c.role, c.stepDown]),
      [
        [G2, 'master', false],
        [G1, 'master', true],
      ],
    );

    await hb(G1, 'BACKUP');
    assert.equal((await view(G1)).slots[0]!.stepDown, undefined);
  });

  it('slot assign --nodes and slot move (a planned handover) from the CLI', async () => {
    const out: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => out.push(s) };
    const cli = (...a: string[]) => slotCli([...a, '--server', url, '--token', farmToken], io as never);
    assert.equal(await cli('assign', String(A), '2', '--nodes', `${G3},${G1}`), 0);
    assert.match(out.at(-1)!, new RegExp(`slot 2 of allocation ${A} → node ${G3}, epoch 1, candidates ${G3}, ${G1}`));
    await assert.rejects(cli('assign', String(A), '2', '--nodes', `${G3},${G3}`), /names a node twice/);
    assert.equal(await cli('move', `${A}/1`, '--to', G1), 0);
    assert.match(out.at(-1)!, new RegExp(`handover to ${G1} planned`));
    const s = (await h.call('GET', `/v1/allocations/${A}`, farmToken)).json().slots[0];
    assert.deepEqual([s.node, s.handoverTo], [G1, G1]);
  });
});
