// Sealed boxes: round trip, the size of a sealed WireGuard key, and refusals (a changed box, the
// wrong node key, keys that are not 32 bytes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { generateNodeKey, nodePublicKey, openSealed, seal, sealedProblem, SEALED_BYTES } from './seal.js';
import { isExitnodeError } from './errors.js';

const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (isExitnodeError(e)) return e.code;
    throw e;
  }
  return 'no error';
};

test('seals a WireGuard key to a node key and opens it with the private half only', () => {
  const a = generateNodeKey();
  const b = generateNodeKey();
  assert.match(a.publicKey, /^[A-Za-z0-9+/]{43}=$/);
  assert.match(a.privateKey, /^[A-Za-z0-9+/]{43}=$/);
  assert.equal(nodePublicKey(a.privateKey), a.publicKey);
  const wg = randomBytes(32);
  const box = seal(wg, a.publicKey);
  assert.equal(Buffer.from(box, 'base64').length, SEALED_BYTES);
  assert.equal(sealedProblem(box), undefined);
  assert.deepEqual(openSealed(box, a.privateKey), wg);
  // Every box is new (an ephemeral key each time), all open to the same key.
  const again = seal(wg, a.publicKey);
  assert.notEqual(again, box);
  assert.deepEqual(openSealed(again, a.privateKey), wg);
  // Another node's key does not open it.
  assert.equal(
    code(() => openSealed(box, b.privateKey)),
    'SEAL_OPEN_FAILED',
  );
});

test('a changed box, a bad key or a bad encoding is refused with a clear error', () => {
  const a = generateNodeKey();
  const box = Buffer.from(seal(randomBytes(32), a.publicKey), 'base64');
  for (const i of [0, 31, 40, SEALED_BYTES - 1]) {
    const t = Buffer.from(box);
    t[i]! ^= 1;
    assert.throws(
      () => openSealed(t.toString('base64'), a.privateKey),
      (e: unknown) => isExitnodeError(e) && e.code === 'SEAL_OPEN_FAILED' && /does not open|not usable/.test(e.message),
      `byte ${i} flipped`,
    );
  }
  assert.equal(
    code(() => openSealed('not base64!', a.privateKey)),
    'SEAL_OPEN_FAILED',
  );
  assert.equal(
    code(() => seal(randomBytes(32), 'c2hvcnQ=')),
    'SEAL_KEY_INVALID',
  );
  assert.equal(
    code(() => openSealed(box.toString('base64'), Buffer.alloc(31).toString('base64'))),
    'SEAL_KEY_INVALID',
  );
  assert.match(sealedProblem(box.subarray(0, 79).toString('base64'))!, /79 bytes, not 80/);
  assert.match(sealedProblem('a b')!, /not base64/);
  assert.match(sealedProblem(42)!, /not base64/);
});
