// Failures on the simulated farm (the failover issue): `sim fail|recover|partition|heal NODE`,
// and the per-node relay that lets `partition` cut one node from the server only.
//
// All agents run on the host and reach the server over its loopback, so a node cannot be cut from
// the server by its namespaces. Each node's agent talks instead to its own relay (`exitnode sim
// relay NODE`: a TCP forwarder on a loopback port of its own, recorded in the sim state); killing
// the relay is the partition (connections refused at once), starting it again on the same port
// heals it.
//
// `fail` models a machine that dies: its agent is killed (SIGKILL) and its links are cut on the
// segment side — the underlay port and the PrefixZero port of each of its gateways — so that its
// kernel state stays as it was, answering nobody. A gateway's PrefixZero port is also renamed:
// on the shared segment the new holder's uplink peer gets the same name (pz-E-A). `recover`
// starts the agent, waits for its first pass (which removes a gateway it no longer holds: a
// machine that reboots comes back without its namespaces, so links come back only after that),
// then restores the links.

import { createConnection, createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ExitnodeError, q } from '../core/errors.js';
import { gatewayNamespace } from '../core/ownership.js';
import { NETNS_DIR, inNs, run } from '../kernel/exec.js';
import { SimErrors } from './errors.js';
import { agentHealth, adminClient, startAgent, stopAgent } from './farm.js';
import { alive, freePort, isOurs, namespacesWith, processesIn, startDetached, stopPid, waitFor } from './procs.js';
import { saveState, type SimNodeState, type SimState } from './state.js';

function nodeOf(s: SimState, id: string): SimNodeState {
  const n = s.nodes.find((x) => x.id === id);
  if (!n)
    throw new ExitnodeError(
      SimErrors.SIM_UNKNOWN_HOST,
      `no node ${q(id)}; nodes: ${s.nodes.map((x) => x.id).join(', ')}`,
    );
  return n;
}

export async function startRelay(s: SimState, id: string): Promise<void> {
  const n = nodeOf(s, id);
  if (n.relayPid && isOurs(n.relayPid, `relay-${n.id}@${s.stateDir}`) && alive(n.relayPid)) return;
  n.relayPort ??= await freePort();
  n.relayPid = startDetached(
    ['sim', 'relay', `relay-${n.id}@${s.stateDir}`, String(n.relayPort), s.server.listen],
    join(s.stateDir, 'nodes', `${n.id}.relay.log`),
  );
  saveState(s);
  await waitFor(
    `the relay of ${n.id} to listen`,
    15_000,
    () =>
      new Promise<boolean | undefined>((res) => {
        const c = createConnection({ host: '127.0.0.1', port: n.relayPort! }, () => {
          c.destroy();
          res(true);
        });
        c.on('error', () => res(undefined));
      }),
    50,
  );
}

export async function stopRelay(s: SimState, id: string): Promise<boolean> {
  const n = nodeOf(s, id);
  const was = await stopPid(n.relayPid, `relay-${n.id}@${s.stateDir}`, 'SIGKILL');
  delete n.relayPid;
  saveState(s);
  return was;
}

/** The relay process itself: forwards every connection on 127.0.0.1:PORT to TARGET (HOST:PORT). */
export async function runRelay(port: number, target: string): Promise<void> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i);
  const tport = Number(target.slice(i + 1));
  const srv = createServer((c) => {
    const u = createConnection({ host, port: tport });
    c.pipe(u).pipe(c);
    const end = (): void => {
      c.destroy();
      u.destroy();
    };
    c.on('error', end);
    u.on('error', end);
    c.on('close', end);
    u.on('close', end);
  });
  await new Promise<void>((res, rej) => {
    srv.once('error', rej);
    srv.listen(port, '127.0.0.1', () => res());
  });
  await new Promise<void>((res) => {
    process.once('SIGTERM', res);
    process.once('SIGINT', res);
  });
}

/** Gateway namespaces of a node ("PREFIXn1-gw-E-A"), as slot and allocation. */
export function gatewaysOf(n: SimNodeState): { ns: string; slot: number; allocation: number }[] {
  return namespacesWith(`${n.ns}-gw-`).flatMap((ns) => {
    const m = /-gw-(\d+)-(\d+)$/.exec(ns);
    return m ? [{ ns, slot: Number(m[1]), allocation: Number(m[2]) }] : [];
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
  for (const p of processesIn([n.ns])) {
    if (!p.comm.startsWith('wireguard-go')) continue;
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const cut = [`ul-${n.id}`];
  const lines = [`link set dev ul-${n.id} down`];
  for (const g of gatewaysOf(n)) {
    const dead = `fx-${n.id}-${g.slot}-${g.allocation}`;
    lines.push(
      `link set dev pz-${g.slot}-${g.allocation} down`,
      `link set dev pz-${g.slot}-${g.allocation} name ${dead}`,
    );
    cut.push(`pz-${g.slot}-${g.allocation} (now ${dead})`);
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
  const lines = [`link set dev ul-${n.id} up`];
  const r = await run(inNs(`${s.nsPrefix}seg`, ['ip', '-o', 'link', 'show']));
  for (const m of r.stdout.matchAll(/^\d+: (fx-[^:@]+)[@:]/gm))
    if (m[1]!.startsWith(`fx-${n.id}-`)) lines.push(`link del dev ${m[1]}`);
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
  await seg(s, [`link set dev pz-${slot}-${s.allocation} ${up ? 'up' : 'down'}`]);
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
  const script = `for f in ${NETNS_DIR}/${s.nsPrefix}n*-gw-*; do [ -e "$f" ] || continue; n=\${f##*/}; echo "== $n"; ip -n "$n" -br addr show 2>/dev/null; done`;
  const r = await run(['sh', '-c', script]);
  const out: Holder[] = [];
  let ns = '';
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('== ')) {
      ns = line.slice(3);
      continue;
    }
    const m = /^(pub-(\d+)-\d+)(?:@\S+)?\s+(\S+)\s+(.*)$/.exec(line.trim());
    if (!m || m[3] !== 'UP' || !m[4]!.trim()) continue;
    const node = s.nodes.find((n) => ns.startsWith(`${n.ns}-`))?.id ?? ns;
    out.push({ node, ns, slot: Number(m[2]) });
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
  const { Topology } = await import('./topology.js');
  const nets = await adminClient(s).listNetworks();
  const moved: string[] = [];
  const t = new Topology({
    prefix: s.nsPrefix,
    allocation: s.prefix,
    slots: s.slots.map((x) => x.slot),
    nodes: s.nodes.length,
    stateRoot: join(s.stateDir, 'nodes'),
  });
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
