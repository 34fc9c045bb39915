// A farm for the dashboard's benchmark and checks without namespaces: a real TNoDB server (PGlite in
// a temporary directory) and stand-in agents that heartbeat with healthy gateways and report
// about themselves, as the real agent does, but build nothing. Networks are made through the API.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { TnodbClient } from '../../src/client/index.js';

export interface UiFarm {
  server: RunningServer;
  url: string;
  farm: string;
  allocation: number;
  farmToken: string;
  tenantTokens: string[];
  nodes: string[];
  admin: TnodbClient;
  farmClient: TnodbClient;
  /** Stops a stand-in agent's heartbeats (its slots lapse and move) or starts them again. */
  silence(node: string, silent: boolean): void;
  close(): Promise<void>;
}

export interface UiFarmOptions {
  /** Exit-capable nodes, each given one slot (at most 15). Default 15. */
  exits?: number;
  /** Other nodes. Default 2. */
  workers?: number;
  networks?: number;
  /** NRs of each network beyond its ExitPoint, on the workers. Default 0. */
  extraNrs?: number;
  tenants?: number;
  leaseTtlMs?: number;
  progress?: (line: string) => void;
}

async function pool<T>(n: number, items: T[], fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

export async function uiFarm(o: UiFarmOptions = {}): Promise<UiFarm> {
  const data = mkdtempSync(join(tmpdir(), 'xui-'));
  const server = await startServer({
    data,
    listen: '127.0.0.1:0',
    noTokenFile: true,
    adminToken: `xn_ui-admin-${process.pid}-00000000000000000000`,
    leaseTtlMs: o.leaseTtlMs ?? 5000,
    fenceMarginMs: 1000,
    // A farm of thousands of networks made as fast as the server takes them: not what the per-token rate limit is for.
    rateLimit: false,
  });
  const admin = new TnodbClient({ server: server.url, token: server.adminToken! });
  const farm = 'uifarm';
  const farmToken = (await admin.createFarm(farm)).token;
  const fc = admin.as(farmToken);
  const allocation = 701;
  const exits = o.exits ?? 15;
  await fc.addAllocation({
    farm,
    prefix: '2001:db8:70::/48',
    number: allocation,
    ipv4: {
      addresses: Array.from({ length: 15 }, (_, i) => `198.51.100.${11 + i}`),
      prefixLength: 24,
      gateway: '198.51.100.1',
    },
  });
  const nodes: string[] = [];
  const tokens = new Map<string, string>();
  for (let i = 1; i <= exits + (o.workers ?? 2); i++) {
    const id = i <= exits ? `gw${i}` : `w${i - exits}`;
    const r = await fc.addNode({ farm, id, publicIPv4: `192.0.2.${i}`, exitCapable: i <= exits });
    nodes.push(id);
    tokens.set(id, r.token);
  }
  const silent = new Set<string>();
  let stopped = false;
  let beats = 0;
  // As an agent: one heartbeat a second with the health of the slots it held at the last one, and
  // its report every ten.
  const held = new Map<string, { allocation: number; slot: number }[]>();
  const beat = async (): Promise<void> => {
    const report = beats++ % 10 === 0;
    await Promise.all(
      nodes
        .filter((n) => !silent.has(n))
        .map(async (n) => {
          const c = admin.as(tokens.get(n)!);
          const before = held.get(n) ?? [];
          const r = await c
            .heartbeat(n, before.length ? { slots: before.map((s) => ({ ...s, healthy: true })) } : undefined)
            .catch(() => undefined);
          if (r)
            held.set(
              n,
              r.slots.map((s) => ({ allocation: s.allocation, slot: s.slot })),
            );
          if (report)
            await c
              .request('POST', `/v1/nodes/${n}/report`, {
                status: 'ok',
                appliedVersion: null,
                viewVersion: null,
                serverReachable: true,
                served: (held.get(n) ?? []).map((s) => `${s.allocation}/${s.slot}`),
              })
              .catch(() => undefined);
        }),
    );
  };
  await beat();
  for (let e = 1; e <= exits; e++) await fc.assignSlot(allocation, e, `gw${e}`);
  await beat();
  await beat();
  const timer = setInterval(() => {
    if (!stopped) void beat();
  }, 1000);
  const tenantTokens: string[] = [];
  for (let t = 1; t <= (o.tenants ?? 2); t++) {
    tenantTokens.push((await admin.createTenant(`tenant${t}`)).token);
    // Thousands of networks per tenant: far past the default quotas (issue 11), which the admin raises.
    await admin.setTenantQuota(`tenant${t}`, { networks: 65_536, nrs: 65_536 });
  }
  const n = o.networks ?? 0;
  const workers = nodes.filter((x) => x.startsWith('w'));
  let done = 0;
  await pool(
    8,
    Array.from({ length: n }, (_, i) => i),
    async (i) => {
      const tc = admin.as(tenantTokens[i % tenantTokens.length]!);
      const net = await tc.createNetwork(`net${i}`);
      for (let k = 0; k < (o.extraNrs ?? 0) && k < workers.length; k++) await tc.addResource(net.id, workers[k]!);
      if (++done % 500 === 0) o.progress?.(`  ${done}/${n} networks`);
    },
  );
  return {
    server,
    url: server.url,
    farm,
    allocation,
    farmToken,
    tenantTokens,
    nodes,
    admin,
    farmClient: fc,
    silence: (node, s) => void (s ? silent.add(node) : silent.delete(node)),
    close: async () => {
      stopped = true;
      clearInterval(timer);
      await server.close();
      rmSync(data, { recursive: true, force: true });
    },
  };
}
