// Failures on the simulated farm (the failover issue): `sim fail|recover|partition|heal NODE`.
// A partition stops the node's relay to the server (src/sim/daemons.ts), heal starts it again.
//
// `fail` models a machine that dies: its agent is killed (SIGKILL), so is every process in its
// namespaces (wireguard-go, keepalived), and its links are cut on the segment side — the underlay
// port and the trunk of its own PrefixZero bridge (whose uplink ports go down too, so its gateways
// lose their carrier) — so that its kernel state stays as it was, answering nobody. (A farm from
// before the per-node bridges renames each gateway's port on the shared bridge instead.) `recover`
// starts the agent, waits for its first pass (which removes a gateway it no longer holds: a
// machine that reboots comes back without its namespaces, so links come back only after that),
// then restores the links, the trunk before the uplinks.
//
// `cut-vrrp A B` drops VRRP (IP protocol 112, IPv4 and IPv6) between the trunks of nodes A and B on
// the shared PrefixZero bridge (an nft table of the bridge family in the segment namespace), while
// everything else — the upstream, neighbour discovery, traffic — still passes: two candidates that
// no longer hear each other both become master (a partial layer-2 fault). `heal-vrrp` removes it.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ExitnodeError, q } from '../core/errors.js';
import { allocation as planAllocation, gwPubIP6, gwPubLL } from '../core/plan.js';
import { gatewayNamespace, parseOwnedLink, parseOwnedNamespace, uplinkPeerName } from '../core/ownership.js';
import { NETNS_DIR, inNs, run } from '../kernel/exec.js';
import { SimErrors } from './errors.js';
import { adminClient, agentHealth, nodeOf, startAgent, startRelay, stopAgent, stopRelay } from './daemons.js';
import { namespacesWith, processesIn, signal, tail, waitFor } from './procs.js';
import { saveState, type SimNodeState, type SimState } from './state.js';
import { cutPortName, isCutPortOf, segmentTrunkName, topologyOf, underlayPortName } from './topology.js';
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
  // Whatever ran on the machine dies with it: its wireguard-go processes (SIGTERM: each removes its
  // control socket; the ExitPoints' interface names come back on the slot's new node) and, in
  // stage 2, its keepalived (SIGKILL: a dead machine sends no priority-0 advert).
  const procs = processesIn([n.ns, ...namespacesWith(`${n.ns}-`)]);
  const wg = procs.filter((p) => p.comm.startsWith('wireguard-go')).map((p) => p.pid);
  signal(wg, 'SIGTERM');
  signal(
    procs.filter((p) => !wg.includes(p.pid)).map((p) => p.pid),
    'SIGKILL',
  );
  const cut = [underlayPortName(n.id)];
  const lines = [`link set dev ${underlayPortName(n.id)} down`];
  if (n.segNs) {
    // The node's own bridge leaves the segment, and its gateways' uplinks lose their carrier (as
    // on a machine that is off), so that nobody counts them as answering.
    lines.push(`link set dev ${segmentTrunkName(n.id)} down`);
    cut.push(segmentTrunkName(n.id));
    const ports = await uplinkPorts(n.segNs);
    await run(inNs(n.segNs, ['ip', '-force', '-batch', '-']), ports.map((p) => `link set dev ${p} down\n`).join(''));
    cut.push(...ports);
  } else {
    for (const g of gatewaysOf(n)) {
      const dead = cutPortName(n.id, g.slot, g.allocation);
      const pz = uplinkPeerName(g.slot, g.allocation);
      lines.push(`link set dev ${pz} down`, `link set dev ${pz} name ${dead}`);
      cut.push(`${pz} (now ${dead})`);
    }
  }
  await seg(s, lines);
  n.failed = true;
  saveState(s);
  return { killed, cut };
}

/** The far ends of a node's uplinks (pz-E-A) in its own PrefixZero namespace. */
async function uplinkPorts(segNs: string): Promise<string[]> {
  const r = await run(inNs(segNs, ['ip', '-o', 'link', 'show']));
  const out: string[] = [];
  for (const m of r.stdout.matchAll(/^\d+: ([^:@\s]+)[@:]/gm)) if (/^pz-\d+-\d+$/.test(m[1]!)) out.push(m[1]!);
  return out;
}

export async function recover(s: SimState, id: string, ms = 60_000): Promise<{ removed: string[] }> {
  const n = nodeOf(s, id);
  const before = gatewaysOf(n).map((g) => g.ns);
  if (n.relayPort && !n.relayPid) await startRelay(s, id);
  startAgent(s, id);
  // The first pass judges the saved view by the saved leases: a slot lost meanwhile is removed.
  const admin = adminClient(s);
  let seen = 'the agent did not answer on its health endpoint';
  await waitFor(
    `the agent of ${id} to finish its first pass`,
    ms,
    async () => {
      const h = await agentHealth(n.stateDir);
      if (!h) return undefined;
      if (!h.lastPass) {
        seen = 'the agent answered, no pass finished yet';
        return undefined;
      }
      // Slots it holds (stage 1) or is a candidate of (stage 2: its view lists them).
      const held = new Set<string>();
      for (const sl of (await admin.getAllocation(s.allocation)).slots)
        if (sl.node === id) held.add(gatewayNamespace('', sl.slot, s.allocation));
      for (const sl of (await admin.view(id).catch(() => undefined))?.slots ?? [])
        held.add(gatewayNamespace('', sl.slot, sl.allocation));
      const left = gatewaysOf(n).filter((g) => !held.has(g.ns.slice(n.ns.length + 1)));
      seen = `a pass finished; gateways it does not hold still there: ${left.map((g) => g.ns).join(', ')}`;
      return left.length === 0 ? true : undefined;
    },
    100,
  ).catch((e: unknown) => {
    // Say what was seen last, and the agent's last events, so that a timeout in CI can be read.
    const events = tail(join(s.stateDir, 'nodes', `${id}.log`), 4)
      .split('\n')
      .map((l) => /"event":"([^"]+)"/.exec(l)?.[1] ?? l.slice(0, 80))
      .join(', ');
    throw new ExitnodeError(SimErrors.SIM_TIMEOUT, `${(e as Error).message}: ${seen}; last agent events: ${events}`);
  });
  const lines = [`link set dev ${underlayPortName(n.id)} up`];
  if (n.segNs) {
    // The trunk first: a stage-2 candidate whose uplink comes back hears the master's adverts at
    // once instead of taking over an empty segment of its own.
    lines.push(`link set dev ${segmentTrunkName(n.id)} up`);
    await seg(s, lines);
    const ports = await uplinkPorts(n.segNs);
    await run(inNs(n.segNs, ['ip', '-force', '-batch', '-']), ports.map((p) => `link set dev ${p} up\n`).join(''));
  } else {
    const r = await run(inNs(`${s.nsPrefix}seg`, ['ip', '-o', 'link', 'show']));
    for (const m of r.stdout.matchAll(/^\d+: ([^:@\s]+)[@:]/gm))
      if (isCutPortOf(n.id, m[1]!)) lines.push(`link del dev ${m[1]}`);
    await seg(s, lines);
  }
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

/**
 * Cuts (or restores) the PrefixZero port of the gateway of SLOT: on NODE, else on every node that
 * answers for the slot now (cut) or on every node (restore).
 */
export async function cutUplink(s: SimState, slot: number, up = false, node?: string): Promise<string[]> {
  const pz = uplinkPeerName(slot, s.allocation);
  if (!s.nodes.some((n) => n.segNs)) {
    await seg(s, [`link set dev ${pz} ${up ? 'up' : 'down'}`]);
    return [];
  }
  const targets = node
    ? [node]
    : up
      ? s.nodes.map((n) => n.id)
      : (await sampleHolders(s)).filter((h) => h.slot === slot).map((h) => h.node);
  for (const id of targets) {
    const n = nodeOf(s, id);
    if (n.segNs) await run(inNs(n.segNs, ['ip', 'link', 'set', 'dev', pz, up ? 'up' : 'down']));
  }
  return targets;
}

export interface Holder {
  node: string;
  ns: string;
  slot: number;
}

/**
 * One sample of who answers for each slot: every gateway namespace whose uplink pub-E-A is UP
 * (carrier on the segment) and holds one of the slot's own addresses (GWPubLL, GWPubIP6 or
 * GWPubIP4: a stage-2 backup's uplink is up with only its own link-local address). Two entries
 * for one slot would be two gateways.
 */
export async function sampleHolders(s: SimState): Promise<Holder[]> {
  const gateways = s.nodes.flatMap((n) => gatewaysOf(n).map((g) => g.ns));
  const script = `for n in ${gateways.join(' ')}; do [ -e "${NETNS_DIR}/$n" ] || continue; echo "== $n"; ip -n "$n" -br addr show 2>/dev/null; done`;
  const r = await run(['sh', '-c', script]);
  const a = planAllocation(s.prefix, s.allocation);
  const floating = (slot: number): Set<string> =>
    new Set([
      gwPubLL(slot).toString(),
      gwPubIP6(a, slot).toString(),
      ...s.slots.filter((x) => x.slot === slot).map((x) => x.ipv4),
    ]);
  const out: Holder[] = [];
  let ns = '';
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('== ')) {
      ns = line.slice(3);
      continue;
    }
    const [name = '', state, ...addrs] = line.trim().split(/\s+/);
    const link = parseOwnedLink(name.split('@')[0]!);
    if (link?.role !== 'uplink' || state !== 'UP') continue;
    const own = floating(link.slot);
    if (!addrs.some((x) => own.has(x.split('/')[0]!))) continue;
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
 * ExitPoint to another node (rehomeWorkloads), and those of a failed node are left out. In stage 2
 * every candidate builds a copy of each ExitPoint NR and only the VRRP master's answers: a workload
 * attached to a standby's copy is left out too (with why), and the cells' hops name the master.
 */
export async function checkLive(
  s: SimState,
): Promise<{ moved: string[]; leftOut: string[]; standby: string[]; report: CheckReport }> {
  const moved = await rehomeWorkloads(s).catch(() => []);
  const down = s.workloads.filter((w) => s.nodes.find((n) => n.id === w.node)?.failed);
  const answering = new Map<number, string>();
  for (const h of await sampleHolders(s)) if (!answering.has(h.slot)) answering.set(h.slot, h.node);
  const standby =
    s.failover === 'vrrp'
      ? s.workloads.filter((w) => {
          const tn = s.tenants.find((t) => t.name === w.tenant);
          const master = tn && answering.get(tn.slot);
          return tn?.exit === w.nr && master !== undefined && master !== w.node && !down.includes(w);
        })
      : [];
  const report = await check(
    { ...s, workloads: s.workloads.filter((w) => !down.includes(w) && !standby.includes(w)) },
    { answering },
  );
  return {
    moved,
    leftOut: down.map((w) => w.name),
    standby: standby.map(
      (w) =>
        `${w.name} (ExitPoint NR ${w.nr} on ${w.node}; master ${answering.get(s.tenants.find((t) => t.name === w.tenant)!.slot)})`,
    ),
    report,
  };
}

/** The segment namespace's nft table that drops VRRP between pairs of nodes (`sim cut-vrrp`). */
export const VRRP_CUT_TABLE = 'sim-vrrp-cut';

/** The pairs of nodes whose VRRP adverts are dropped now, from the state (each pair once). */
export function vrrpCuts(s: SimState): [string, string][] {
  const out: [string, string][] = [];
  for (const n of s.nodes) for (const o of n.vrrpCut ?? []) if (n.id < o) out.push([n.id, o]);
  return out;
}

/** The nft script for the segment namespace that drops VRRP between every pair in CUTS ('' when none). */
export function vrrpCutRules(cuts: [string, string][]): string {
  if (!cuts.length) return '';
  const rules = cuts.flatMap(([a, b]) =>
    [
      [a, b],
      [b, a],
    ].flatMap(([x, y]) => [
      `    iifname "${segmentTrunkName(x!)}" oifname "${segmentTrunkName(y!)}" ip protocol 112 counter drop`,
      `    iifname "${segmentTrunkName(x!)}" oifname "${segmentTrunkName(y!)}" ip6 nexthdr 112 counter drop`,
    ]),
  );
  return [
    `table bridge ${VRRP_CUT_TABLE} {`,
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    ...rules,
    '  }',
    '}',
    '',
  ].join('\n');
}

async function applyVrrpCuts(s: SimState): Promise<void> {
  const segNs = `${s.nsPrefix}seg`;
  // Replaced as a whole in one transaction: add (so that delete finds it), delete, then the new one.
  const script = [
    `add table bridge ${VRRP_CUT_TABLE}`,
    `delete table bridge ${VRRP_CUT_TABLE}`,
    vrrpCutRules(vrrpCuts(s)),
  ].join('\n');
  const r = await run(inNs(segNs, ['nft', '-f', '-']), script);
  if (r.code !== 0)
    throw new ExitnodeError(SimErrors.SIM_PROCESS, `cannot change VRRP cuts in ${segNs}: ${r.stderr.trim()}`);
}

function pairOf(s: SimState, a: string, b: string): [SimNodeState, SimNodeState] {
  const na = nodeOf(s, a);
  const nb = nodeOf(s, b);
  if (a === b) throw new ExitnodeError(SimErrors.SIM_OPTION, `cut-vrrp needs two different nodes, got ${q(a)} twice`);
  for (const n of [na, nb])
    if (!n.segNs)
      throw new ExitnodeError(
        SimErrors.SIM_OPTION,
        `node ${q(n.id)} has no PrefixZero bridge of its own (a farm from an older sim up): no VRRP to cut`,
      );
  return [na, nb];
}

/** Drops VRRP adverts between nodes A and B on the segment (both still reach the upstream). */
export async function cutVrrp(s: SimState, a: string, b: string): Promise<void> {
  const [na, nb] = pairOf(s, a, b);
  na.vrrpCut = [...new Set([...(na.vrrpCut ?? []), b])].sort();
  nb.vrrpCut = [...new Set([...(nb.vrrpCut ?? []), a])].sort();
  await applyVrrpCuts(s);
  saveState(s);
}

/** Lets VRRP pass again between A and B, or between every pair when A and B are not given. */
export async function healVrrp(s: SimState, a?: string, b?: string): Promise<[string, string][]> {
  const before = vrrpCuts(s);
  if (a !== undefined && b !== undefined) {
    const [na, nb] = pairOf(s, a, b);
    na.vrrpCut = (na.vrrpCut ?? []).filter((x) => x !== b);
    nb.vrrpCut = (nb.vrrpCut ?? []).filter((x) => x !== a);
  } else for (const n of s.nodes) delete n.vrrpCut;
  for (const n of s.nodes) if (n.vrrpCut?.length === 0) delete n.vrrpCut;
  await applyVrrpCuts(s);
  saveState(s);
  const after = new Set(vrrpCuts(s).map((p) => p.join(' ')));
  return before.filter((p) => !after.has(p.join(' ')));
}

/** Packets of VRRP dropped so far by the cuts (the rules' counters), 0 when there is no cut. */
export async function vrrpDropped(s: SimState): Promise<number> {
  const r = await run(inNs(`${s.nsPrefix}seg`, ['nft', 'list', 'table', 'bridge', VRRP_CUT_TABLE]));
  if (r.code !== 0) return 0;
  return [...r.stdout.matchAll(/counter packets (\d+)/g)].reduce((x, m) => x + Number(m[1]), 0);
}
