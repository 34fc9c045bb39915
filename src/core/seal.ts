// Sealed boxes for the shared ExitPoint keys (DESIGN.md 8.2, issue 10): the first candidate of a
// slot seals each ExitPoint's WireGuard private key to every other exit-capable node's node key,
// and TNoDB relays the ciphertext only. node:crypto, nothing else:
//   X25519 (an ephemeral key pair per box) → HKDF-SHA256 (salt: the ephemeral public key and the
//   recipient's, info "exitnode seal v1") → 32-byte key and 12-byte nonce → ChaCha20-Poly1305.
//   The box: base64(ephemeral public key (32) || ciphertext || tag (16)); 80 bytes for a 32-byte key.
// Keys are raw 32-byte X25519 keys in base64, as WireGuard writes them.
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import { generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';
import { ExitnodeError, q } from './errors.js';
import { SealErrors } from './seal/errors.js';

export { SealErrors };

const INFO = Buffer.from('exitnode seal v1');
const TAG = 16;
const KEY = 32;
/** The size of a box holding a 32-byte key: ephemeral public key, ciphertext, tag. */
export const SEALED_BYTES = KEY + 32 + TAG;

// DER prefixes of raw X25519 keys (RFC 8410): PKCS#8 for a private key, SPKI for a public one.
const PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI = Buffer.from('302a300506032b656e032100', 'hex');

function raw32(b64: unknown, what: string): Buffer {
  const b = typeof b64 === 'string' && /^[A-Za-z0-9+/]{43}=$/.test(b64) ? Buffer.from(b64, 'base64') : undefined;
  if (!b || b.length !== KEY || b.toString('base64') !== b64)
    throw new ExitnodeError(
      SealErrors.SEAL_KEY_INVALID,
      `${what} ${q(b64)} is not a key: 32 bytes in base64 (44 characters ending in "=")`,
    );
  return b;
}

const privateKey = (b64: string): KeyObject =>
  createPrivateKey({ key: Buffer.concat([PKCS8, raw32(b64, 'private key')]), format: 'der', type: 'pkcs8' });
const publicKey = (raw: Buffer): KeyObject =>
  createPublicKey({ key: Buffer.concat([SPKI, raw]), format: 'der', type: 'spki' });
const rawPublic = (k: KeyObject): Buffer => k.export({ format: 'der', type: 'spki' }).subarray(SPKI.length);

/** A new node key pair (X25519), both halves as raw 32 bytes in base64. */
export function generateNodeKey(): { privateKey: string; publicKey: string } {
  const k = generateKeyPairSync('x25519');
  return {
    privateKey: k.privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8.length).toString('base64'),
    publicKey: rawPublic(k.publicKey).toString('base64'),
  };
}

/** The public half of a private key (base64 raw). */
export function nodePublicKey(privB64: string): string {
  return rawPublic(createPublicKey(privateKey(privB64))).toString('base64');
}

function keys(shared: Buffer, epk: Buffer, rpk: Buffer): { key: Buffer; nonce: Buffer } {
  const okm = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([epk, rpk]), INFO, KEY + 12));
  return { key: okm.subarray(0, KEY), nonce: okm.subarray(KEY) };
}

/** Seals `plain` to the holder of the private half of `recipientPubB64`; returns the box in base64. */
export function seal(plain: Buffer, recipientPubB64: string): string {
  const rpk = raw32(recipientPubB64, 'recipient key');
  const eph = generateKeyPairSync('x25519');
  const epk = rawPublic(eph.publicKey);
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: publicKey(rpk) });
  const { key, nonce } = keys(shared, epk, rpk);
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([epk, ct, c.getAuthTag()]).toString('base64');
}

/** Opens a box made by seal() with the recipient's private key; a changed box is refused. */
export function openSealed(sealedB64: string, privB64: string): Buffer {
  const box = typeof sealedB64 === 'string' ? Buffer.from(sealedB64, 'base64') : Buffer.alloc(0);
  if (box.length < KEY + TAG || box.toString('base64') !== sealedB64)
    throw new ExitnodeError(
      SealErrors.SEAL_OPEN_FAILED,
      `sealed key ${q(String(sealedB64).slice(0, 60))} is not a sealed box: canonical base64 of at least ${KEY + TAG} bytes`,
    );
  const priv = privateKey(privB64);
  const rpk = rawPublic(createPublicKey(priv));
  const epk = box.subarray(0, KEY);
  const ct = box.subarray(KEY, box.length - TAG);
  const tag = box.subarray(box.length - TAG);
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: priv, publicKey: publicKey(epk) });
  } catch {
    throw new ExitnodeError(SealErrors.SEAL_OPEN_FAILED, 'sealed key does not open: its ephemeral key is not usable');
  }
  const { key, nonce } = keys(shared, epk, rpk);
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
  d.setAuthTag(tag);
  try {
    return Buffer.concat([d.update(ct), d.final()]);
  } catch {
    throw new ExitnodeError(
      SealErrors.SEAL_OPEN_FAILED,
      'sealed key does not open with this node key: it was sealed to another node, or it was changed on the way',
    );
  }
}

/** Why `v` is not a box of a 32-byte key (canonical base64 of SEALED_BYTES bytes), or undefined. */
export function sealedProblem(v: unknown): string | undefined {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) return 'is not base64';
  const b = Buffer.from(v, 'base64');
  if (b.toString('base64') !== v) return 'is not canonical base64';
  if (b.length !== SEALED_BYTES)
    return `is ${b.length} bytes, not ${SEALED_BYTES} (a sealed WireGuard key: ephemeral key, ciphertext, tag)`;
  return undefined;
}
