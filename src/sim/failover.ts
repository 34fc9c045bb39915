// Failures on the simulated farm (the failover issue): `sim fail|recover|partition|heal NODE`.
// A partition stops the node's relay to the server (src/sim/daemons.ts), heal starts it again.
//
// `fail` models a machine that dies: its agent is killed (SIGKILL) and its links are cut on the
// segment side — the underlay port and the PrefixZero port of each of its gateways — so that its
// kernel state stays as it was, answering nobody. A gateway's PrefixZero port is also renamed:
// on the shared segment the new holder's uplink peer gets the same name (pz-E-A). `recover`
// starts the agent, waits for its first pass (which removes a gateway it no longer holds: a
// machine that reboots comes back without its namespaces, so links come back only after that),
// then restores the links.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ExitnodeError, q } from '../core/errors.js';
import { gatewayNamespace, parseOwnedLink, parseOwnedNamespace, uplinkPeerName } from '../core/ownership.js';
import { NETNS_DIR, inNs, run } from '../kernel/exec.js';
import { SimErrors } from './errors.js';
import { adminClient, agentHealth, nodeOf, startAgent, startRelay, stopAgent, stopRelay } from './daemons.js';
import { namespacesWith, processesIn, signal, waitFor } from './procs.js';
import { saveState, type SimNodeState, type SimState } from './state.js';
import { cutPortName, isCutPortOf, topologyOf, underlayPortName } from './topology.js';
import { check, type CheckReport } from './check.js';

/** Gateway namespaces of a node ("PREFIXn1-gw-E-A"), as slot and allocation. */
export function gatewaysOf(n: SimNodeState): { ns: string; slot: number; allocation: number }[] {
  return namespacesWith(`${n.ns}-`).flatMap((ns) => {
    const o = parseOwnedNamespace(`${n.ns}-`, ns);
    return o?.kind === 'gateway' ? [{ ns, slot: o.slot, allocation: o.allocation }] : [];
  });
}

async function seg(s: SimState, lines: string[]): Promise<void> {
  if (!lines.length) return;
  await run(inNs(`${s.nsPrefix}seg`, ['ip', '-force', '-batch', '-']), lines.join('\n') + '\n');
}

export async function fail(s: SimState, id: string): Promise<{ killed: boolean; cut: string[] }> {
  const n = nodeOf(s, id);
  const killed = await stopAgent(s, id, 'SIGKILL');
  // Its wireguard-go processes die with the machine. SIGTERM, not SIGKILL: their control sockets
  // live in one directory for the whole host, and the ExitPoints' interface names come back on
  // the slot's new node.
  signal(
    processesIn([n.ns])
      .filter((p) => p.comm.startsWith('wireguard-go'))
      .map((p) => p.pid),
    'SIGTERM',
  );
  const cut = [underlayPortName(n.id)];
  const lines = [`link set dev ${underlayPortName(n.id)} down`];
  for (const g of gatewaysOf(n)) {
    const dead = cutPortName(n.id, g.slot, g.allocation);
    const pz = uplinkPeerName(g.slot, g.allocation);
    lines.push(`link set dev ${pz} down`, `link set dev ${pz} name ${dead}`);
    cut.push(`${pz} (now ${dead})`);
  }
  await seg(s, lines);
  n.failed = true;
  saveState(s);
  return { killed, cut };
}

export async function recover(s: SimState, id: string, ms = 60_000): Promise<{ removed: string[] }> {
  const n = nodeOf(s, id);
  const before = gatewaysOf(n).map((g) => g.ns);
  if (n.relayPort && !n.relayPid) await startRelay(s, id);
  startAgent(s, id);
  // The first pass judges the saved view by the saved leases: a slot lost meanwhile is removed.
  const admin = adminClient(s);
  await waitFor(
    `the agent of ${id} to finish its first pass`,
    ms,
    async () => {
      const h = await agentHealth(n.stateDir);
      if (!h?.lastPass) return undefined;
      const held = new Set<string>();
      for (const sl of (await admin.getAllocation(s.allocation)).slots)
        if (sl.node === id) held.add(gatewayNamespace('', sl.slot, s.allocation));
      return gatewaysOf(n).every((g) => held.has(g.ns.slice(n.ns.length + 1))) ? true : undefined;
    },
    100,
  );
  const lines = [`link set dev ${underlayPortName(n.id)} up`];
  const r = await run(inNs(`${s.nsPrefix}seg`, ['ip', '-o', 'link', 'show']));
  for (const m of r.stdout.matchAll(/^\d+: ([^:@\s]+)[@:]/gm))
    if (isCutPortOf(n.id, m[1]!)) lines.push(`link del dev ${m[1]}`);
  await seg(s, lines);
  delete n.failed;
  saveState(s);
  return { removed: before.filter((x) => !existsSync(join(NETNS_DIR, x))) };
}

export async function partition(s: SimState, id: string): Promise<void> {
  const n = nodeOf(s, id);
  if (!n.relayPort)
    throw new ExitnodeError(
      SimErrors.SIM_OPTION,
      `node ${q(id)} reaches the server directly (a farm from an older sim up): no relay to cut`,
    );
  await stopRelay(s, id);
  n.partitioned = true;
  saveState(s);
}

export async function heal(s: SimState, id: string): Promise<void> {
  const n = nodeOf(s, id);
  if (!n.relayPort) throw new ExitnodeError(SimErrors.SIM_OPTION, `node ${q(id)} has no relay to restore`);
  await startRelay(s, id);
  delete n.partitioned;
  saveState(s);
}

/** Cuts (or restores) the PrefixZero port of the gateway of SLOT on whichever node holds it now. */
export async function cutUplink(s: SimState, slot: number, up = false): Promise<void> {
  await seg(s, [`link set dev ${uplinkPeerName(slot, s.allocation)} ${up ? 'up' : 'down'}`]);
}

export interface Holder {
  node: string;
  ns: string;
  slot: number;
}

/**
 * One sample of who answers for each slot: every gateway namespace whose uplink pub-E-A is UP
 * (carrier on the segment) and carries an address. Two entries for one slot would be two gateways.
 */
export async function sampleHolders(s: SimState): Promise<Holder[]> {
  const gateways = s.nodes.flatMap((n) => gatewaysOf(n).map((g) => g.ns));
  const script = `for n in ${gateways.join(' ')}; do [ -e "${NETNS_DIR}/$n" ] || continue; echo "== $n"; ip -n "$n" -br addr show 2>/dev/null; done`;
  const r = await run(['sh', '-c', script]);
  const out: Holder[] = [];
  let ns = '';
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('== ')) {
      ns = line.slice(3);
      continue;
    }
    const [name = '', state, ...addrs] = line.trim().split(/\s+/);
    const link = parseOwnedLink(name.split('@')[0]!);
    if (link?.role !== 'uplink' || state !== 'UP' || addrs.length === 0) continue;
    const node = s.nodes.find((n) => ns.startsWith(`${n.ns}-`))?.id ?? ns;
    out.push({ node, ns, slot: link.slot });
  }
  return out;
}

/**
 * After a slot moved, the ExitPoint NR of each of its TNs lives on the new node: the workload that
 * was attached to it on the old node (a machine that died takes its workloads with it) is started
 * again on the new node, behind the same NR (same addresses), as "TENANTxNR" (e.g. t1x1000).
 * Returns the workloads moved.
 */
export async function rehomeWorkloads(s: SimState): Promise<string[]> {
  const nets = await adminClient(s).listNetworks();
  const moved: string[] = [];
  const t = topologyOf(s);
  for (const [i, w] of s.workloads.entries()) {
    const nr = nets.find((n) => n.id === w.network)?.resources.find((r) => r.id === w.nr);
    if (!nr || nr.node === w.node) continue;
    await run(['ip', 'netns', 'del', w.ns]);
    await run(inNs(s.nodes.find((n) => n.id === w.node)!.ns, ['ip', 'link', 'del', `wl-${w.name}`]));
    const name = `${w.tenant}x${w.nr}`;
    const now = { ...w, name, ns: `${s.nsPrefix}${name}`, node: nr.node };
    await run(['ip', 'netns', 'del', now.ns]);
    await run(inNs(s.nodes.find((n) => n.id === nr.node)!.ns, ['ip', 'link', 'del', `wl-${name}`]));
    await t.workload(
      name,
      t.nodes.find((n) => n.id === nr.node)!,
      now.bridge,
      now.addr6,
      now.addr4,
    );
    s.workloads[i] = now;
    moved.push(`${w.name} → ${name} on ${nr.node}`);
  }
  // The sim stands in for the container runtime that attached each workload to its NR's bridge.
  // When an agent rebuilds an NR (its slot went away and came back to this node, so the ExitPoint
  // NR was removed and made again), the new bridge has lost the workload's port: attach it again,
  // and say so, since a real runtime would have to do the same.
  for (const w of s.workloads) {
    const node = s.nodes.find((n) => n.id === w.node)!;
    if (node.failed) continue;
    const r = await run(inNs(node.ns, ['ip', '-json', 'link', 'show', `wl-${w.name}`]));
    const master = (() => {
      try {
        return (JSON.parse(r.stdout) as { master?: string }[])[0]?.master;
      } catch {
        return undefined;
      }
    })();
    if (r.code !== 0 || master === w.bridge) continue;
    await t.attach(
      w.name,
      t.nodes.find((n) => n.id === w.node)!,
      w.bridge,
    );
    moved.push(`${w.name} re-attached to ${w.bridge} on ${w.node} (the agent rebuilt that NR)`);
  }
  saveState(s);
  return moved;
}

/**
 * `sim check` on a farm that may have failed over: workloads follow their NR when a slot moved its
 * ExitPoint to another node (rehomeWorkloads), and those of a failed node are left out.
 */
export async function checkLive(s: SimState): Promise<{ moved: string[]; leftOut: string[]; report: CheckReport }> {
  const moved = await rehomeWorkloads(s).catch(() => []);
  const down = s.workloads.filter((w) => s.nodes.find((n) => n.id === w.node)?.failed);
  const report = await check({ ...s, workloads: s.workloads.filter((w) => !down.includes(w)) });
  return { moved, leftOut: down.map((w) => w.name), report };
}
