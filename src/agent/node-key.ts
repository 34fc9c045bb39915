// The node key (stage 2, DESIGN.md 8.2): an X25519 pair made at the agent's first start and kept
// in STATE/node.key (0600). Its public half goes to TNoDB (PUT /v1/nodes/{id}/node-key), which
// hands it to the candidates of every slot as `sealTo`; they seal the ExitPoint keys they generate
// to it, and this node opens the `sealedKey` of its views with the private half.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitnodeError, q } from '../core/errors.js';
import { generateNodeKey, nodePublicKey } from '../core/seal.js';
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
    return { privateKey: text, publicKey: nodePublicKey(text) };
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
