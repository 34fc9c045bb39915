// Shared ExitPoint keys (stage 2, DESIGN.md 8.2): every candidate of a vrrp slot holds the same
// WireGuard private key for each ExitPoint of the slot, so that remote NRs keep their peer through a
// failover.
//
//   candidates[0]        generates the key (the pass's keygen, as in stage 1) when the exit NR has no
//                        public key yet, publishes the public key (src/agent/keys.ts), and seals the
//                        private key to every `sealTo` node of its view (again when sealTo changes)
//   any other candidate  writes the key file from the view's `sealedKey` (opened with the node key)
//                        and never generates an exit key: without a sealed key the ExitPoint's
//                        WireGuard link is left out of the pass (CompileRuntime.withoutKey)
//
// A candidates[0] that holds no key while the exit NR already has a public key (it was promoted)
// uses the sealed key too: a key of its own would change every remote NR's peer.

import { createHash } from 'node:crypto';
import { keyFileName, wgLinkName } from '../core/ownership.js';
import { parseNrIdText, slotOfNr } from '../core/plan.js';
import { slotKey } from '../core/slot-ref.js';
import type { NodeView } from '../core/view.js';
import type { AgentContext } from './context.js';
import { openSealed, seal } from '../core/seal.js';
import { loadNodeKey } from './node-key.js';

export interface FloatingExit {
  network: NodeView['networks'][number];
  exit: NodeView['networks'][number]['resources'][number];
  slot: NodeView['slots'][number];
  /** The ExitPoint's WireGuard interface. */
  name: string;
  first: boolean;
}

/** The ExitPoints of the view's vrrp slots (every candidate builds them). */
export function floatingExits(view: NodeView): FloatingExit[] {
  const slots = new Map(view.slots.filter((s) => s.candidates !== undefined).map((s) => [slotKey(s), s] as const));
  const out: FloatingExit[] = [];
  for (const network of view.networks) {
    const slot = slots.get(slotKey({ allocation: network.allocation, slot: slotOfNr(parseNrIdText(network.exit)) }));
    if (!slot) continue;
    const exit = network.resources.find((r) => r.id === network.exit)!;
    out.push({
      network,
      exit,
      slot,
      name: wgLinkName(exit.id, network.allocation),
      first: slot.candidates![0] === view.node.id,
    });
  }
  return out;
}

/** The node key, loaded (or made) once per daemon; undefined (and logged) when the state directory refuses. */
export function nodeKeyOf(ctx: AgentContext): { privateKey: string; publicKey: string } | undefined {
  const { state } = ctx;
  if (!state.nodeKey) {
    try {
      state.nodeKey = loadNodeKey(ctx.config.stateDir);
    } catch (e) {
      if (!state.nodeKeyError) ctx.log('node-key.unusable', { error: (e as Error).message }, 'error');
      state.nodeKeyError = (e as Error).message;
    }
  }
  return state.nodeKey;
}

/**
 * Before a pass: writes the key file of every ExitPoint whose sealed key the view carries (when
 * the file differs), and returns the ExitPoint links this node may not build yet (no key).
 */
export function prepareExitKeys(ctx: AgentContext, view: NodeView): Set<string> {
  const without = new Set<string>();
  const { kernel, config, state } = ctx;
  for (const f of floatingExits(view)) {
    const keyFile = keyFileName(f.name);
    let have = kernel.privateKeys(config.stateDir, [{ name: f.name, keyFile }]).get(f.name);
    const sealed = f.exit.sealedKey;
    const nk = sealed !== undefined ? nodeKeyOf(ctx) : undefined;
    if (sealed !== undefined && nk && state.unsealFailed[f.name] !== sealed) {
      try {
        const raw = openSealed(sealed, nk.privateKey);
        if (raw.length !== 32) throw new Error(`the opened key is ${raw.length} bytes, not a WireGuard key (32)`);
        const plain = raw.toString('base64');
        if (have !== plain) {
          kernel.writePrivateKey(config.stateDir, keyFile, plain);
          ctx.log('key.unsealed', { network: f.network.id, nr: f.exit.id, interface: f.name, replaced: !!have });
          have = plain;
        }
      } catch (e) {
        state.unsealFailed[f.name] = sealed;
        ctx.log(
          'key.unseal.failed',
          { network: f.network.id, nr: f.exit.id, interface: f.name, error: (e as Error).message },
          'error',
        );
      }
    }
    // Only the first candidate of an ExitPoint nobody published yet may generate its key.
    if (have === undefined && !(f.first && f.exit.publicKey === undefined)) without.add(f.name);
  }
  return without;
}

/**
 * After a pass, as candidates[0]: seals each ExitPoint key to every `sealTo` node and sends the
 * ciphertexts to TNoDB; again when the key or sealTo changes. Never rejects.
 */
export async function sealExitKeys(ctx: AgentContext, view: NodeView): Promise<void> {
  const { state, kernel, config } = ctx;
  const to = (view.sealTo ?? []).filter((t) => t.node !== config.node);
  if (!to.length || !state.serverReachable) return;
  for (const f of floatingExits(view)) {
    if (!f.first) continue;
    const key = kernel.privateKeys(config.stateDir, [{ name: f.name, keyFile: keyFileName(f.name) }]).get(f.name);
    if (key === undefined) continue;
    const fp = createHash('sha256')
      .update([key, ...to.map((t) => `${t.node}=${t.key}`).sort()].join('\n'))
      .digest('hex');
    if (state.sealed[f.name] === fp) continue;
    try {
      const keys = to.map((t) => ({ node: t.node, sealed: seal(Buffer.from(key, 'base64'), t.key) }));
      await ctx.client.publishSealedKeys(f.network.id, f.exit.id, keys);
      state.sealed[f.name] = fp;
      ctx.log('key.sealed', { network: f.network.id, nr: f.exit.id, interface: f.name, to: to.map((t) => t.node) });
    } catch (e) {
      ctx.log('key.seal.failed', { network: f.network.id, nr: f.exit.id, error: (e as Error).message }, 'warn');
    }
  }
}

/** Sends the node key's public half to TNoDB until it lands (every heartbeat and pass). Never rejects. */
export async function publishNodeKey(ctx: AgentContext): Promise<void> {
  const { state } = ctx;
  if (state.nodeKeyPublished || state.nodeKeyPublishing || !state.serverReachable) return;
  const nk = nodeKeyOf(ctx);
  if (!nk) return;
  state.nodeKeyPublishing = true;
  try {
    await ctx.client.publishNodeKey(ctx.config.node, nk.publicKey);
    state.nodeKeyPublished = true;
    ctx.log('node-key.published', { publicKey: nk.publicKey });
  } catch (e) {
    const msg = (e as Error).message;
    if (state.nodeKeyPublishError !== msg) ctx.log('node-key.publish.failed', { error: msg }, 'warn');
    state.nodeKeyPublishError = msg;
  } finally {
    state.nodeKeyPublishing = false;
  }
}
