// POST /v1/allocations refuses the upstream addresses the renderer would refuse, so that
// GET /v1/allocations/{n}/upstream never answers 400 for what the store holds.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, harness, type Harness } from './helpers.js';

describe('upstream address overrides of an allocation', () => {
  let h: Harness;
  let farmToken: string;
  before(async () => {
    h = await harness();
    farmToken = (await h.call('POST', '/v1/farms', ADMIN, { name: 'xts-up900' })).json<{ token: string }>().token;
    await h.call('POST', '/v1/nodes', farmToken, { farm: 'xts-up900', id: 'xts-up900-g1', exitCapable: true });
  });
  after(async () => {
    await h.close();
  });

  for (const [what, upstream, names] of [
    ['a link-local in fe80::/10 but outside fe80::/64', { ll: 'fe80:1::5' }, 'fe80:1::5'],
    ["a gateway's link-local", { ll: 'fe80::3000:0:0:1' }, 'slot 3'],
    ['a global address in the /48 but outside P::/64', { ip6: '2001:db8:9a0:1::5' }, '2001:db8:9a0:1::5'],
    ["a gateway's global address", { ip6: '2001:db8:9a0:0:f000::1' }, 'slot 15'],
  ] as const) {
    it(`refuses ${what} with 400, naming the value`, async () => {
      const r = await h.call('POST', '/v1/allocations', farmToken, {
        farm: 'xts-up900',
        prefix: '2001:db8:9a0::/48',
        number: 900,
        upstream,
      });
      assert.equal(r.statusCode, 400, r.body);
      const e = r.json<{ error: { code: string; message: string } }>().error;
      assert.equal(e.code, 'UPSTREAM_ADDRESS');
      assert.ok(e.message.includes(names), e.message);
    });
  }

  it('accepts overrides inside the segment, and the upstream renders with them', async () => {
    const r = await h.call('POST', '/v1/allocations', farmToken, {
      farm: 'xts-up900',
      prefix: '2001:db8:9a0::/48',
      number: 900,
      upstream: { ll: 'fe80::5', ip6: '2001:db8:9a0::5' },
    });
    assert.equal(r.statusCode, 201, r.body);
    assert.deepEqual(r.json<{ upstream: unknown }>().upstream, { ll: 'fe80::5', ip6: '2001:db8:9a0::5' });
    assert.equal(
      (await h.call('PUT', '/v1/allocations/900/slots/1', farmToken, { node: 'xts-up900-g1' })).statusCode,
      200,
    );
    const u = await h.call('GET', '/v1/allocations/900/upstream?router=frr&iface=swp1', farmToken);
    assert.equal(u.statusCode, 200, u.body);
    assert.match(u.body, /ipv6 address 2001:db8:9a0::5\/64/);
    assert.match(u.body, /ipv6 address fe80::5\/64/);
  });
});
