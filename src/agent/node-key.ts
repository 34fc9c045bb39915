// The node key (stage 2, DESIGN.md 8.2): an X25519 pair made at the agent's first start and kept
// in STATE/node.key (0600). Its public half goes to TNoDB (PUT /v1/nodes/{id}/node-key), which
// hands it to the candidates of every slot as `sealTo`; they seal the ExitPoint keys they generate
// to it, and this node opens the `sealedKey` of its views with the private half.

import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync } from 'node:crypto';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitnodeError, q } from '../core/errors.js';
import { AgentErrors } from './errors.js';

export interface NodeKey {
  /** base64 of the 32 raw bytes. */
  privateKey: string;
  publicKey: string;
}

export function nodeKeyFile(stateDir: string): string {
  return join(stateDir, 'node.key');
}

const KEY_RE = /^[A-Za-z0-9+/]{43}=$/;

/** The node key pair from STATE/node.key, made (and written 0600) when the file does not exist yet. */
export function loadNodeKey(stateDir: string): NodeKey {
  const f = nodeKeyFile(stateDir);
  let text: string | undefined;
  try {
    text = readFileSync(f, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new ExitnodeError(AgentErrors.AGENT_STATE_DIR, `cannot read ${q(f)}: ${(e as Error).message}`);
  }
  if (text !== undefined) {
    if (!KEY_RE.test(text))
      throw new ExitnodeError(AgentErrors.AGENT_STATE_DIR, `${q(f)} is not an X25519 private key in base64`);
    return { privateKey: text, publicKey: x25519Public(text) };
  }
  const k = generateNodeKey();
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(`${f}.${process.pid}`, `${k.privateKey}\n`, { mode: 0o600 });
    renameSync(`${f}.${process.pid}`, f);
  } catch (e) {
    throw new ExitnodeError(AgentErrors.AGENT_STATE_DIR, `cannot write ${q(f)}: ${(e as Error).message}`);
  }
  return k;
}

// ---- until i10-store lands: src/core/seal.ts (generateNodeKey, seal, openSealed) -------------------
// X25519 ephemeral + HKDF-SHA256 (salt epk || recipient key, info "exitnode seal v1" → 32-byte key
// and 12-byte nonce) + ChaCha20-Poly1305, base64(epk || ct || tag): the same boxes as i10-store's.
// The plaintext is the raw 32-byte WireGuard key (a box is 80 bytes).

const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');
const INFO = Buffer.from('exitnode seal v1');

const privObj = (b64: string) =>
  createPrivateKey({ key: Buffer.concat([PKCS8_X25519, Buffer.from(b64, 'base64')]), format: 'der', type: 'pkcs8' });
const pubObj = (raw: Buffer) =>
  createPublicKey({ key: Buffer.concat([SPKI_X25519, raw]), format: 'der', type: 'spki' });

function x25519Public(privB64: string): string {
  return Buffer.from(createPublicKey(privObj(privB64)).export({ format: 'jwk' }).x!, 'base64url').toString('base64');
}

export function generateNodeKey(): NodeKey {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return {
    privateKey: Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url').toString('base64'),
    publicKey: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64'),
  };
}

function aead(shared: Buffer, epk: Buffer, rpk: Buffer): { key: Buffer; nonce: Buffer } {
  const okm = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([epk, rpk]), INFO, 44));
  return { key: okm.subarray(0, 32), nonce: okm.subarray(32) };
}

export function seal(plain: Buffer, recipientPubB64: string): string {
  const rpk = Buffer.from(recipientPubB64, 'base64');
  const eph = generateNodeKey();
  const epk = Buffer.from(eph.publicKey, 'base64');
  const shared = diffieHellman({ privateKey: privObj(eph.privateKey), publicKey: pubObj(rpk) });
  const { key, nonce } = aead(shared, epk, rpk);
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([epk, ct, c.getAuthTag()]).toString('base64');
}

export function openSealed(sealedB64: string, privB64: string): Buffer {
  const b = Buffer.from(sealedB64, 'base64');
  if (b.length < 48) throw new Error('sealed key too short');
  const epk = b.subarray(0, 32);
  const rpk = Buffer.from(x25519Public(privB64), 'base64');
  const shared = diffieHellman({ privateKey: privObj(privB64), publicKey: pubObj(epk) });
  const { key, nonce } = aead(shared, epk, rpk);
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  d.setAuthTag(b.subarray(b.length - 16));
  return Buffer.concat([d.update(b.subarray(32, b.length - 16)), d.final()]);
}
