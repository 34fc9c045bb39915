// `exitnode agent status`: per gateway, TN and NR of this node, what is applied and whether the
// kernel still holds it — from the saved view (what the daemon last applied) and a read-only
// check() of the kernel, plus the running daemon's /healthz when it is up.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gatewayNamespace, nrNamespace } from '../core/ownership.js';
import { slotKey } from '../core/slot-ref.js';
import { parseNodeView, type NodeView } from '../core/view.js';
import type { Kernel } from '../kernel/kernel.js';
import { concerns, type Owner } from '../reconcile/objects.js';
import { check, viewFile } from './index.js';
import type { NodeConfig } from './config.js';

export interface StatusRow {
  kind: 'gateway' | 'exitpoint' | 'nr';
  /** Slot "A/E" for a gateway, NR id otherwise. */
  id: string;
  network?: string;
  namespace: string;
  /** Objects of this row the kernel does not hold as the view says (empty: healthy). */
  drift: string[];
  /** The NR's peers that have no public key yet (their node has not published it). */
  peersWithoutKey?: string[];
}

export interface AgentStatus {
  node: string;
  viewVersion: number | null;
  rows: StatusRow[];
  /** Drift that belongs to no row (e.g. an object of something no longer in the view). */
  otherDrift: string[];
  daemon: Record<string, unknown> | null;
}

async function daemonHealth(stateDir: string): Promise<Record<string, unknown> | null> {
  const f = join(stateDir, 'agent.json');
  if (!existsSync(f)) return null;
  try {
    const { metrics } = JSON.parse(readFileSync(f, 'utf8')) as { metrics?: string };
    if (!metrics) return null;
    const r = await fetch(`${metrics}/healthz`, { signal: AbortSignal.timeout(2000) });
    return (await r.json()) as Record<string, unknown>;
  } catch (e) {
    return { status: 'unreachable', error: (e as Error).message };
  }
}

export async function agentStatus(config: NodeConfig, kernel: Kernel): Promise<AgentStatus> {
  const file = viewFile(config.stateDir);
  const daemon = await daemonHealth(config.stateDir);
  if (!existsSync(file)) return { node: config.node, viewVersion: null, rows: [], otherDrift: [], daemon };
  const view: NodeView = parseNodeView(readFileSync(file, 'utf8'));
  const { items } = await check(view, config, { kernel });
  const p = config.namespacePrefix;
  const used = new Set<(typeof items)[number]>();
  const mine = (owner: Owner): string[] =>
    items.filter((d) => d.objects.some((o) => concerns(o, owner, p)) && (used.add(d), true)).map((d) => d.text);
  const rows: StatusRow[] = [];
  for (const s of view.slots) {
    rows.push({
      kind: 'gateway',
      id: slotKey(s),
      namespace: gatewayNamespace(p, s.slot, s.allocation),
      drift: mine({ kind: 'slot', slot: s.slot, allocation: s.allocation }),
    });
  }
  for (const n of view.networks) {
    for (const r of n.resources) {
      if (r.node !== config.node) continue;
      const peersWithoutKey = n.resources.filter((o) => o.id !== r.id && !o.publicKey).map((o) => o.id);
      rows.push({
        kind: r.id === n.exit ? 'exitpoint' : 'nr',
        id: r.id,
        network: n.id,
        namespace: nrNamespace(p, r.id, n.allocation),
        drift: mine({ kind: 'nr', nr: r.id, allocation: n.allocation }),
        ...(peersWithoutKey.length ? { peersWithoutKey } : {}),
      });
    }
  }
  return {
    node: config.node,
    viewVersion: view.version,
    rows,
    otherDrift: items.filter((d) => !used.has(d)).map((d) => d.text),
    daemon,
  };
}

export function statusText(s: AgentStatus): string {
  const out: string[] = [];
  const d = s.daemon;
  out.push(
    `node ${s.node}: saved view version ${s.viewVersion ?? '(none)'}; daemon ${d ? `${String(d.status)}${d.appliedVersion !== undefined ? `, applied version ${String(d.appliedVersion)}, server ${d.serverReachable ? 'reachable' : 'unreachable'}` : ''}` : 'not running'}`,
  );
  out.push('KIND       ID          NETWORK                                NAMESPACE                   STATE');
  for (const r of s.rows) {
    const state = r.drift.length
      ? `DRIFT (${r.drift.length}): ${r.drift.slice(0, 3).join('; ')}`
      : r.peersWithoutKey
        ? `applied; waiting for keys of ${r.peersWithoutKey.join(', ')}`
        : 'applied, healthy';
    out.push(
      `${r.kind.padEnd(10)} ${r.id.padEnd(11)} ${(r.network ?? '-').padEnd(38)} ${r.namespace.padEnd(27)} ${state}`,
    );
  }
  if (s.otherDrift.length) out.push(`other drift: ${s.otherDrift.join('; ')}`);
  return out.join('\n');
}

/** Healthy when every row and the rest hold no drift. */
export function statusOk(s: AgentStatus): boolean {
  return s.rows.every((r) => !r.drift.length) && !s.otherDrift.length;
}
