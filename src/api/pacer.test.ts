// Pacer: a share per event-loop turn, the rest on later turns in arrival order, none lost.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Pacer } from './pacer.js';

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

it('admits a share per turn at once and the rest on the following turns, in order', async () => {
  const p = new Pacer(4);
  const order: number[] = [];
  const all = Array.from({ length: 10 }, (_, i) => {
    const w = p.turn();
    if (!w) {
      order.push(i);
      return Promise.resolve();
    }
    return w.then(() => void order.push(i));
  });
  assert.deepEqual(order, [0, 1, 2, 3], 'the first share goes at once');
  // One share per turn after that: 4 more on the next turn, the last 2 on the one after.
  const seen: number[] = [];
  while (order.length < 10 && seen.length < 10) {
    await nextTurn();
    seen.push(order.length);
  }
  await Promise.all(all);
  assert.deepEqual(seen, [8, 10]);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(p.deferred, 6);
});

it('lets a caller through at once again after a quiet turn', async () => {
  const p = new Pacer(2);
  assert.equal(p.turn(), undefined);
  assert.equal(p.turn(), undefined);
  const third = p.turn();
  assert.ok(third);
  await third;
  await nextTurn();
  await nextTurn();
  assert.equal(p.turn(), undefined, 'a new turn has a new share');
});
