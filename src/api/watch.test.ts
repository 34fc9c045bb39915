// ViewWatch with a fake store: who is woken, when, and that a shutdown ends every wait.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../store/index.js';
import { ViewWatch } from './watch.js';

function fakeStore() {
  const versions = new Map<string, number>([
    ['a', 1],
    ['b', 1],
  ]);
  const listeners = new Set<(n: string[]) => void>();
  let queries = 0;
  const store = {
    versions: async (nodes: string[]) => {
      queries++;
      return new Map(nodes.filter((n) => versions.has(n)).map((n) => [n, versions.get(n)!]));
    },
    onViewChange: (cb: (n: string[]) => void) => {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
  } as unknown as Store;
  return {
    store,
    versions,
    get queries() {
      return queries;
    },
    write(node: string, local: boolean) {
      versions.set(node, versions.get(node)! + 1);
      if (local) for (const l of listeners) l(['*']);
    },
  };
}

it('wakes only the waiters whose node passed their version, at once for local writes', async () => {
  const f = fakeStore();
  const w = new ViewWatch(f.store, 10_000); // no poll in this test: only the local signal
  const a = w.waitFor('a', 1, 5000);
  const b = w.waitFor('b', 1, 60);
  const t0 = performance.now();
  f.write('a', true);
  assert.equal(await a, true);
  assert.ok(performance.now() - t0 < 50);
  assert.equal(await b, false, 'b did not change: it times out');
  w.close();
});

it('sees writes made elsewhere by polling, in one query per round for all waiters', async () => {
  const f = fakeStore();
  const w = new ViewWatch(f.store, 20);
  const waits = [w.waitFor('a', 1, 5000), w.waitFor('a', 1, 5000), w.waitFor('b', 1, 5000)];
  await new Promise((r) => setTimeout(r, 50));
  const before = f.queries;
  f.write('a', false);
  f.write('b', false);
  const t0 = performance.now();
  assert.deepEqual(await Promise.all(waits), [true, true, true]);
  assert.ok(performance.now() - t0 < 100);
  assert.ok(f.queries - before <= 3, `${f.queries - before} version queries for three waiters`);
  w.close();
});

it('ends every wait at shutdown and answers at once afterwards', async () => {
  const f = fakeStore();
  const w = new ViewWatch(f.store, 20);
  const p = w.waitFor('a', 5, 60_000);
  w.close();
  assert.equal(await p, false);
  assert.equal(await w.waitFor('a', 5, 60_000), false);
});

it('wakes a waiter whose version moved before it registered', async () => {
  const f = fakeStore();
  const w = new ViewWatch(f.store, 10_000);
  f.write('a', false);
  assert.equal(await w.waitFor('a', 1, 5000), true);
  w.close();
});
