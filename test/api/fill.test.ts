// Filling one slot through the API with 32 concurrent clients: exactly 4096 distinct ids, every
// one inside the slot, the rest refused with 409 SLOT_FULL. On PGlite with one server, and on one
// PostgreSQL server shared by two server instances (the clients alternate between them).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { TnodbClient } from '../../src/client/index.js';
import { isExitnodeError } from '../../src/core/index.js';
import { pgCluster, pgSkipReason } from '../support/pg.js';
import { ADMIN } from './helpers.js';

const WORKERS = 64;
const NETWORKS = 64;
const CLIENTS = 32;
// No agent heartbeats here: a long lease keeps the slot assigned however slow a loaded CI machine is.
const LEASE = 3_600_000;

async function fill(servers: RunningServer[], number: number, prefix: string): Promise<void> {
  const admin = new TnodbClient({ server: servers[0]!.url, token: ADMIN });
  const farm = `xts-fill${number}`;
  const f = admin.as((await admin.createFarm(farm)).token);
  const tenantToken = (await admin.createTenant(`xts-fillt${number}`)).token;
  // One tenant fills a slot here: far past the default quotas, which the admin raises.
  await admin.setTenantQuota(`xts-fillt${number}`, { networks: NETWORKS, nrs: 8192 });
  await f.addAllocation({ farm, prefix, number });
  await f.addNode({ farm, id: `${farm}-g`, exitCapable: true });
  await Promise.all(
    Array.from({ length: WORKERS }, (_, i) =>
      f.addNode({ farm, id: `${farm}-w${i}`, publicIPv4: `203.0.113.${i + 1}`, exitCapable: false }),
    ),
  );
  await f.assignSlot(number, 2, `${farm}-g`);
  const t = new TnodbClient({ server: servers[0]!.url, token: tenantToken });
  const nets: string[] = [];
  for (let i = 0; i < NETWORKS; i++) nets.push((await t.createNetwork(`n${i}`, number)).id);

  const jobs: [string, string][] = [];
  for (const n of nets) for (let w = 0; w < WORKERS; w++) jobs.push([n, `${farm}-w${w}`]);
  const clients = Array.from(
    { length: CLIENTS },
    (_, i) => new TnodbClient({ server: servers[i % servers.length]!.url, token: tenantToken, timeoutMs: 60_000 }),
  );
  const ok: string[] = [];
  let warned = 0;
  const refused: string[] = [];
  let next = 0;
  await Promise.all(
    clients.map(async (c) => {
      while (next < jobs.length) {
        const [n, node] = jobs[next++]!;
        try {
          const r = await c.addResource(n, node);
          ok.push(r.id);
          if (r.warning) warned++;
        } catch (e) {
          if (isExitnodeError(e) && e.details?.status === 409 && e.details.code === 'SLOT_FULL')
            refused.push(e.message);
          else throw e;
        }
      }
    }),
  );
  assert.equal(ok.length + NETWORKS, 4096, 'every id of the slot handed out (64 went to ExitPoints)');
  assert.equal(refused.length, jobs.length - ok.length);
  assert.equal(warned, 4096 - 2048, 'every answer past 2048 NRs on the slot carries the warning');

  const all = (await t.listNetworks()).flatMap((n) => n.resources.map((r) => r.id));
  assert.equal(all.length, 4096);
  assert.equal(new Set(all).size, 4096, 'no id twice');
  assert.ok(
    all.every((id) => /^2[0-9a-f]{3}$/.test(id)),
    'every id inside slot 2 (2000-2fff)',
  );

  // The 4097th, through the other instance when there are two.
  const last = new TnodbClient({ server: servers[servers.length - 1]!.url, token: tenantToken });
  await last.removeResource(
    nets[0]!,
    (await last.getNetwork(nets[0]!)).resources.find((r) => r.node === `${farm}-w0`)!.id, // the one added again below
  );
  await assert.rejects(last.addResource(nets[0]!, `${farm}-w0`), (e: unknown) => {
    assert.ok(isExitnodeError(e));
    assert.equal(e.details?.status, 409);
    assert.match(e.message, /full/);
    assert.match(e.message, /quarantine/, 'the freed id is in quarantine, and the message says so');
    assert.match(e.message, /enable another ExitNode/);
    return true;
  });
  const status = await f.farmStatus(farm);
  assert.ok(
    status.warnings.some((w) => /more than 2048/.test(w)),
    'the farm status warns past 2048 NRs',
  );
}

describe('filling one slot', () => {
  it('on PGlite with one server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xts-fill-'));
    let s: RunningServer | undefined;
    try {
      s = await startServer({
        data: dir,
        listen: '127.0.0.1:0',
        adminToken: ADMIN,
        noTokenFile: true,
        leaseTtlMs: LEASE,
        rateLimit: false, // one token sends all 4,096 requests
      });
      await fill([s], 951, '2001:db8:5100::/48');
    } finally {
      await s?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on one PostgreSQL server with two server instances', { skip: pgSkipReason() }, async () => {
    const url = await (await pgCluster()).createDb();
    const dirs = [mkdtempSync(join(tmpdir(), 'xts-fill-')), mkdtempSync(join(tmpdir(), 'xts-fill-'))];
    const servers: RunningServer[] = [];
    try {
      for (const d of dirs)
        servers.push(
          await startServer({
            db: url,
            data: d,
            listen: '127.0.0.1:0',
            adminToken: ADMIN,
            noTokenFile: true,
            leaseTtlMs: LEASE,
            rateLimit: false, // one token sends all 4,096 requests
          }),
        );
      await fill(servers, 952, '2001:db8:5200::/48');
    } finally {
      await Promise.all(servers.map((s) => s.close()));
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });
});
