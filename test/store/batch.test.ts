// Group commit of allocations (migrations/003_batch_alloc.sql and PgStore's queue):
// concurrent requests batched into one transaction get exactly the answers they would get one by
// one — lowest free ids in request order, Idempotency-Key replays and mismatches inside a batch
// and across batches, and a full slot refusing only the items past the last free id.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, type Store, type OpenOptions } from '../../src/store/index.js';
import { isExitnodeError } from '../../src/core/index.js';
import { pgCluster, pgSkipReason } from '../support/pg.js';

type Outcome = { id: string; replay: boolean } | { code: string };
async function outcome(p: Promise<{ resource: { id: string }; replay: boolean }>): Promise<Outcome> {
  try {
    const r = await p;
    return { id: r.resource.id, replay: r.replay };
  } catch (e) {
    if (isExitnodeError(e)) return { code: e.code };
    throw e;
  }
}

async function setup(s: Store, number: number, workers: number, networks: number): Promise<string[]> {
  const farm = `xts-gc${number}`;
  await s.createFarm(farm);
  await s.createTenant(`${farm}t`);
  // One tenant fills a slot here: far past the default quotas, which the admin raises.
  await s.setTenantQuota(`${farm}t`, { networks: networks + 1, nrs: 8192 });
  await s.createAllocation({ farm, prefix: `2001:db8:${number.toString(16)}::/48`, number });
  await s.createNode({ farm, id: `${farm}-g`, exitCapable: true });
  await s.assignSlot(number, 1, `${farm}-g`);
  for (let w = 0; w < workers; w++) await s.createNode({ farm, id: `${farm}-w${w}`, exitCapable: false });
  const nets: string[] = [];
  for (let i = 0; i < networks; i++)
    nets.push((await s.createNetwork({ tenant: `${farm}t`, name: `n${i}` })).network.id);
  return nets;
}

function suite(name: string, open: (o: OpenOptions) => Promise<Store>, skip?: string): void {
  describe(`group commit of allocations on ${name}`, { skip }, () => {
    it('fills a slot with concurrent requests: ids in request order, only those past the last free id refused', async () => {
      const s = await open({ leaseTtlMs: 3_600_000 });
      try {
        // 64 networks (64 ExitPoint ids) x 64 workers = 4096 requests for the 4032 ids left in slot 1.
        const nets = await setup(s, 960, 64, 64);
        const jobs = nets.flatMap((n) => Array.from({ length: 64 }, (_, w) => ({ n, w })));
        const out = await Promise.all(
          jobs.map((j) => outcome(s.addResource({ tenant: 'xts-gc960t', network: j.n, node: `xts-gc960-w${j.w}` }))),
        );
        const ok = out.filter((o): o is { id: string; replay: boolean } => 'id' in o);
        assert.equal(ok.length, 4032);
        assert.equal(new Set(ok.map((o) => o.id)).size, 4032, 'no id twice');
        assert.ok(
          ok.every((o) => /^1[0-9a-f]{3}$/.test(o.id)),
          'every id inside slot 1',
        );
        // The queue keeps request order and the function takes items in order: the first 4032
        // requests got ids, the 64 after them (sharing batches with the last successes) got 409.
        assert.deepEqual(
          out.slice(4032),
          Array.from({ length: 64 }, () => ({ code: 'SLOT_FULL' })),
        );
        assert.ok(out.slice(0, 4032).every((o) => 'id' in o));
        assert.equal((await s.listSlots(960))[0]!.nrs, 4096);
      } finally {
        await s.close();
      }
    });

    it('keeps Idempotency-Key semantics inside one batch and across batches', async () => {
      const s = await open({ leaseTtlMs: 3_600_000 });
      try {
        const [n1, n2] = await setup(s, 961, 4, 2);
        const t = 'xts-gc961t';
        const add = (network: string, w: number, key?: string) =>
          outcome(
            s.addResource({ tenant: t, network, node: `xts-gc961-w${w}`, ...(key ? { idempotencyKey: key } : {}) }),
          );
        // The first request goes alone; the rest queue behind it and share the next batch.
        const out = await Promise.all([
          add(n1!, 0),
          add(n1!, 1, 'k1'),
          add(n1!, 1, 'k1'),
          add(n2!, 1, 'k1'),
          add(n1!, 2),
          add(n1!, 2),
          add(n2!, 3, 'k2'),
        ]);
        const first = out[1] as { id: string; replay: boolean };
        assert.equal(first.replay, false);
        assert.deepEqual(out[2], { id: first.id, replay: true }, 'the same key again in the batch replays');
        assert.deepEqual(out[3], { code: 'IDEMPOTENCY_MISMATCH' }, 'the key for another network is refused');
        assert.ok('id' in out[4]!);
        assert.deepEqual(out[5], { code: 'NR_NODE_TAKEN' });
        // Across batches: a later retry replays, and a removed NR's key is gone.
        assert.deepEqual(await add(n1!, 1, 'k1'), { id: first.id, replay: true });
        const k2 = out[6] as { id: string };
        await s.removeResource(t, n2!, k2.id);
        assert.deepEqual(await add(n2!, 3, 'k2'), { code: 'IDEMPOTENCY_GONE' });
      } finally {
        await s.close();
      }
    });
  });
}

suite('PGlite', (o) => openStore(o));
let url: string | undefined;
suite(
  'a PostgreSQL server',
  async (o) => openStore({ ...o, url: (url ??= await (await pgCluster()).createDb()) }),
  pgSkipReason(),
);
