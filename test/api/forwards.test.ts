// The forwards and inbound policy API (issue 13): status codes, one-line errors naming the value,
// OpenAPI, tenants seeing only their own networks.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { farm, harness, type Farm, type Harness } from './helpers.js';
import { main } from '../../src/cli/main.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) });
  return { code, out, err };
}

describe('forwards and the inbound policy over the API', () => {
  let h: Harness;
  let a: Farm;
  let net: { id: string; exit: string; slot: number };
  const v4 = (id: string, host: number): string => `10.${parseInt(id, 16) >> 8}.${parseInt(id, 16) & 255}.${host}`;

  before(async () => {
    h = await harness();
    a = await farm(h, { name: 'xts-f', tenant: 'xts-ft', prefix: '2001:db8:4100::/48', number: 951 });
    assert.equal(
      (await h.call('PUT', '/v1/allocations/951/slots/1', a.farmToken, { node: 'xts-f-g1' })).statusCode,
      200,
    );
    net = (await h.call('POST', '/v1/networks', a.tenantToken, { name: 'svc', allocation: 951 })).json();
  });
  after(async () => h?.close());

  it('adds, lists, replays and removes a forward', async () => {
    const body = { protocol: 'tcp', port: 8443, target: v4(net.exit, 10), targetPort: 443 };
    const r = await h.call('POST', `/v1/networks/${net.id}/forwards`, a.tenantToken, body, {
      'idempotency-key': 'f-1',
    });
    assert.equal(r.statusCode, 201, r.body);
    assert.deepEqual(r.json(), {
      network: net.id,
      allocation: 951,
      slot: 1,
      protocol: 'tcp',
      port: 8443,
      address: '192.0.2.21',
      target: v4(net.exit, 10),
      targetPort: 443,
    });
    // The node view over HTTP carries it (the response schema must not strip it).
    const view = (await h.call('GET', '/v1/nodes/xts-f-g1/view', a.farmToken)).json();
    assert.deepEqual(view.networks.find((n: { id: string }) => n.id === net.id).forwards, [
      { protocol: 'tcp', port: 8443, target: v4(net.exit, 10), targetPort: 443 },
    ]);
    const again = await h.call('POST', `/v1/networks/${net.id}/forwards`, a.tenantToken, body, {
      'idempotency-key': 'f-1',
    });
    assert.equal(again.statusCode, 201);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    const taken = await h.call('POST', `/v1/networks/${net.id}/forwards`, a.tenantToken, body);
    assert.equal(taken.statusCode, 409);
    assert.equal(taken.json().error.code, 'FORWARD_PORT_TAKEN');
    const list = await h.call('GET', `/v1/networks/${net.id}/forwards`, a.tenantToken);
    assert.deepEqual(
      list.json().map((f: { port: number }) => f.port),
      [8443],
    );
    assert.equal((await h.call('DELETE', `/v1/networks/${net.id}/forwards/tcp/8443`, a.tenantToken)).statusCode, 204);
    const gone = await h.call('DELETE', `/v1/networks/${net.id}/forwards/tcp/8443`, a.tenantToken);
    assert.equal(gone.statusCode, 404);
    assert.equal(gone.json().error.code, 'FORWARD_UNKNOWN');
  });

  it('refuses bad input with 4xx and a one-line message naming the value', async () => {
    const post = (b: unknown) => h.call('POST', `/v1/networks/${net.id}/forwards`, a.tenantToken, b);
    for (const [b, status, code, needle] of [
      [{ protocol: 'icmp', target: v4(net.exit, 10), targetPort: 1 }, 400, 'FORWARD_INVALID', '"icmp"'],
      [{ protocol: 'tcp', port: 0, target: v4(net.exit, 10), targetPort: 1 }, 400, 'FORWARD_INVALID', '0'],
      [{ protocol: 'tcp', target: '10.200.0.9', targetPort: 1 }, 400, 'FORWARD_INVALID', '10.200.0.9'],
      [{ protocol: 'tcp', target: v4(net.exit, 255), targetPort: 1 }, 400, 'FORWARD_INVALID', '.255'],
      [{ protocol: 'udp', port: 4100, target: v4(net.exit, 10), targetPort: 1 }, 409, 'FORWARD_PORT_RESERVED', '4100'],
    ] as const) {
      const r = await post(b);
      assert.equal(r.statusCode, status, r.body);
      assert.equal(r.json().error.code, code);
      assert.ok(r.json().error.message.includes(needle), r.json().error.message);
      assert.ok(!r.json().error.message.includes('\n'));
    }
    const bad = await h.call('DELETE', `/v1/networks/${net.id}/forwards/tcp/eighty`, a.tenantToken);
    assert.equal(bad.statusCode, 400);
    const rule = await h.call('POST', `/v1/networks/${net.id}/inbound/rules`, a.tenantToken, {
      protocol: 'tcp',
      ports: '90-80',
    });
    assert.equal(rule.statusCode, 400);
    assert.match(rule.json().error.message, /90-80/);
    const pol = await h.call('PUT', `/v1/networks/${net.id}/inbound`, a.tenantToken, { policy: 'ajar' });
    assert.equal(pol.statusCode, 400);
    assert.equal(pol.json().error.code, 'INBOUND_POLICY_INVALID');
  });

  it('sets the inbound policy and its rules', async () => {
    assert.deepEqual((await h.call('GET', `/v1/networks/${net.id}/inbound`, a.tenantToken)).json(), {
      network: net.id,
      policy: 'open',
      rules: [],
    });
    const put = await h.call('PUT', `/v1/networks/${net.id}/inbound`, a.tenantToken, { policy: 'closed' });
    assert.equal(put.statusCode, 200);
    const r = await h.call('POST', `/v1/networks/${net.id}/inbound/rules`, a.tenantToken, {
      protocol: 'tcp',
      ports: 443,
      source: '2001:db8:ff::/48',
    });
    assert.equal(r.statusCode, 201, r.body);
    const overlap = await h.call('POST', `/v1/networks/${net.id}/inbound/rules`, a.tenantToken, {
      protocol: 'tcp',
      ports: '400-500',
    });
    assert.equal(overlap.statusCode, 409);
    assert.equal(overlap.json().error.code, 'INBOUND_RULE_OVERLAP');
    const view = (await h.call('GET', '/v1/nodes/xts-f-g1/view', a.farmToken)).json();
    assert.deepEqual(view.networks.find((n: { id: string }) => n.id === net.id).inbound, {
      policy: 'closed',
      rules: [{ protocol: 'tcp', from: 443, to: 443, source: '2001:db8:ff::/48' }],
    });
    const got = (await h.call('GET', `/v1/networks/${net.id}/inbound`, a.tenantToken)).json();
    assert.deepEqual(got.rules, [{ id: r.json().id, protocol: 'tcp', ports: '443', source: '2001:db8:ff::/48' }]);
    assert.equal(
      (await h.call('DELETE', `/v1/networks/${net.id}/inbound/rules/${r.json().id}`, a.tenantToken)).statusCode,
      204,
    );
    const doc = (await h.call('GET', '/docs/json')).json();
    for (const p of [
      '/v1/networks/{id}/forwards',
      '/v1/networks/{id}/forwards/{protocol}/{port}',
      '/v1/networks/{id}/inbound',
      '/v1/networks/{id}/inbound/rules',
    ])
      assert.ok(doc.paths[p], `OpenAPI documents ${p}`);
  });

  it('the CLI: network forward add|rm|list and network policy, --json, bad input exit 2 in one line', async () => {
    const url = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const t = ['--server', url, '--token', a.tenantToken];
    const add = await cli('network', 'forward', 'add', net.id, 'udp', `${v4(net.exit, 20)}:53`, '--json', ...t);
    assert.equal(add.code, 0, add.err);
    const f = JSON.parse(add.out) as { port: number; address: string };
    assert.equal(f.address, '192.0.2.21');
    const list = await cli('network', 'forward', 'list', net.id, ...t);
    assert.match(
      list.out,
      new RegExp(`udp +192\\.0\\.2\\.21:${f.port} +${v4(net.exit, 20).replaceAll('.', '\\.')}:53`),
    );
    const ex = await cli('explain', `192.0.2.21:${f.port}`, ...t);
    assert.equal(ex.code, 0, ex.err);
    assert.match(ex.out, new RegExp(`udp port ${f.port} of GWPubIP4 192\\.0\\.2\\.21 \\(slot 1\\): forwarded to`));
    assert.match(ex.out, /exitnode-nat map fwd4: udp \. \d+ : 10\.\d+\.\d+\.20 \. 53/);
    const none = await cli('explain', '192.0.2.21:9', ...t);
    assert.equal(none.code, 2, none.err);
    assert.match(none.err, /no forward of yours is on "192\.0\.2\.21:9"/);
    assert.equal((await cli('network', 'forward', 'rm', net.id, 'udp', String(f.port), ...t)).code, 0);
    const closed = await cli('network', 'policy', 'set', net.id, 'closed', ...t);
    assert.equal(closed.code, 0, closed.err);
    const allow = await cli(
      'network',
      'policy',
      'allow',
      net.id,
      'tcp',
      '8000-8080',
      '--from',
      '2001:db8:ff::/48',
      '--json',
      ...t,
    );
    assert.equal(allow.code, 0, allow.err);
    const show = await cli('network', 'policy', 'show', net.id, ...t);
    assert.match(show.out, /closed/);
    assert.match(show.out, /8000-8080 +2001:db8:ff::\/48/);
    assert.equal((await cli('network', 'policy', 'rm', net.id, String(JSON.parse(allow.out).id), ...t)).code, 0);
    for (const argv of [
      ['network', 'forward', 'add', net.id, 'sctp', '10.0.0.1:80'],
      ['network', 'forward', 'add', net.id, 'tcp', '10.0.0.1'],
      ['network', 'forward', 'add', net.id, 'tcp', '10.0.0.1:0'],
      ['network', 'forward', 'add', net.id, 'tcp', `${v4(net.exit, 20)}:80`, '--port', '179'],
      ['network', 'forward', 'rm', net.id, 'tcp', 'http'],
      ['network', 'policy', 'set', net.id, 'ajar'],
      ['network', 'policy', 'allow', net.id, 'tcp', '90-80'],
      ['network', 'policy', 'allow', net.id, 'tcp', '80', '--from', '10.0.0.0/8'],
      ['network', 'policy', 'rm', net.id, 'x'],
      ['network', 'forward', 'frob'],
    ]) {
      const r = await cli(...argv, ...t);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    }
  });
});
