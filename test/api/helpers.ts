// Shared set-up for the API tests: an in-process app on a store, and a farm with nodes.
import type { LightMyRequestResponse } from 'fastify';
import { buildApp, type App, type AppOptions } from '../../src/api/app.js';
import { hashToken } from '../../src/api/auth.js';
import { openStore, type OpenOptions } from '../../src/store/index.js';

export const ADMIN = 'xn_xts-admin-token-for-tests-only-0000000000';

export interface Harness {
  app: App;
  now: { t: number };
  call(
    method: string,
    url: string,
    token?: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function harness(o: OpenOptions = {}, appOptions: Omit<AppOptions, 'store'> = {}): Promise<Harness> {
  const now = { t: 1_700_000_000_000 };
  const store = await openStore({ clock: () => now.t, leaseTtlMs: 5000, quarantineMs: 600_000, ...o });
  await store.createToken(hashToken(ADMIN), 'admin', null);
  const built = await buildApp({ store, ...appOptions });
  return {
    app: built,
    now,
    call: (method, url, token, body, headers = {}) =>
      built.inject({
        method: method as 'GET',
        url,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
      }),
    close: async () => {
      await built.close();
      await store.close();
    },
  };
}

export interface Farm {
  farm: string;
  farmToken: string;
  tenant: string;
  tenantToken: string;
  nodeTokens: Record<string, string>;
}

/** A farm with an allocation, `exits` exit-capable nodes (g1..), `workers` others (w1..), one tenant. */
export async function farm(
  h: Harness,
  o: { name: string; tenant: string; prefix: string; number: number; exits?: number; workers?: number },
): Promise<Farm> {
  const ok = (r: LightMyRequestResponse, status: number) => {
    if (r.statusCode !== status) throw new Error(`${r.statusCode} ${r.body}`);
    return r.json() as { token: string };
  };
  const farmToken = ok(await h.call('POST', '/v1/farms', ADMIN, { name: o.name }), 201).token;
  const tenantToken = ok(await h.call('POST', '/v1/tenants', ADMIN, { name: o.tenant }), 201).token;
  ok(
    await h.call('POST', '/v1/allocations', farmToken, {
      farm: o.name,
      prefix: o.prefix,
      number: o.number,
      ipv4: { addresses: ['192.0.2.21', '192.0.2.22'], prefixLength: 24, gateway: '192.0.2.1' },
    }),
    201,
  );
  const nodeTokens: Record<string, string> = {};
  for (let i = 1; i <= (o.exits ?? 2); i++)
    nodeTokens[`${o.name}-g${i}`] = ok(
      await h.call('POST', '/v1/nodes', farmToken, {
        farm: o.name,
        id: `${o.name}-g${i}`,
        publicIPv4: `198.51.100.${10 + i}`,
        exitCapable: true,
      }),
      201,
    ).token;
  for (let i = 1; i <= (o.workers ?? 2); i++)
    nodeTokens[`${o.name}-w${i}`] = ok(
      await h.call('POST', '/v1/nodes', farmToken, {
        farm: o.name,
        id: `${o.name}-w${i}`,
        publicIPv6: `2001:db8:ff::${i}`,
        exitCapable: false,
      }),
      201,
    ).token;
  return { farm: o.name, farmToken, tenant: o.tenant, tenantToken, nodeTokens };
}
