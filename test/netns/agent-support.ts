// Views and inventories for the agent's integration tests: what TNoDB would send each node, and
// a listing of everything on the host that belongs to a simulated node.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeView } from '../../src/core/view.js';
import { run, inNs } from '../../src/kernel/exec.js';
import { parseNft } from '../../src/kernel/observe.js';
import { ROUTE_PROTO, isOwnedLink } from '../../src/core/ownership.js';
import type { Topology } from '../../src/sim/topology.js';
import { namespacesWith } from '../../src/sim/procs.js';

export interface Tn {
  id: string;
  exit: string;
  nrs: { id: string; node: string }[];
}

/** The view TNoDB would serve NODE: its slots, and every TN with an NR on it (all their NRs). */
export function viewFor(
  t: Topology,
  node: string,
  version: number,
  opts: {
    allocation: number;
    prefix: string;
    slots: Record<string, number[]>;
    tns: Tn[];
    keys: Record<string, string>;
  },
): NodeView {
  const pub = (n: string): string => t.nodes.find((x) => x.id === n)!.publicIPv4;
  return {
    version,
    node: { id: node, publicIPv4: pub(node) },
    allocations: [
      {
        number: opts.allocation,
        prefix: opts.prefix,
        upstream: { ll: 'fe80::1', ipv4Gateway: '198.51.100.1', ipv4PrefixLength: 24 },
      },
    ],
    slots: (opts.slots[node] ?? []).map((s) => ({
      allocation: opts.allocation,
      slot: s,
      epoch: 1,
      ipv4: `198.51.100.${10 + s}`,
    })),
    networks: opts.tns
      .filter((tn) => tn.nrs.some((r) => r.node === node))
      .map((tn) => ({
        id: tn.id,
        allocation: opts.allocation,
        exit: tn.exit,
        resources: tn.nrs.map((r) => {
          const name = `wg-${r.id}-${opts.allocation}`;
          const res: NodeView['networks'][number]['resources'][number] = {
            id: r.id,
            node: r.node,
            endpoint: `${pub(r.node)}:${parseInt(r.id, 16)}`,
          };
          if (opts.keys[name]) res.publicKey = opts.keys[name];
          return res;
        }),
      })),
  };
}

export interface Inventory {
  namespaces: string[];
  links: string[];
  routes: string[];
  nft: string[];
  wgProcesses: string[];
  keyFiles: string[];
}

/** Everything on the host that belongs to the topology's nodes, as sorted text. */
export async function inventory(t: Topology, allocationSuffix: string): Promise<Inventory> {
  const inv: Inventory = { namespaces: [], links: [], routes: [], nft: [], wgProcesses: [], keyFiles: [] };
  const all = namespacesWith('');
  const nodeNs = all.filter((n) => t.nodes.some((x) => n.startsWith(x.config.namespacePrefix))).sort();
  inv.namespaces = nodeNs;
  for (const ns of [...nodeNs, ...t.nodes.map((x) => x.ns)]) {
    const links = JSON.parse((await run(inNs(ns, ['ip', '-json', 'link', 'show']))).stdout) as { ifname: string }[];
    for (const l of links) if (isOwnedLink(l.ifname)) inv.links.push(`${ns} ${l.ifname}`);
    for (const fam of ['-4', '-6']) {
      const routes = JSON.parse(
        (await run(inNs(ns, ['ip', fam, '-json', 'route', 'show', 'proto', String(ROUTE_PROTO)]))).stdout,
      ) as { dst: string; dev: string }[];
      for (const r of routes)
        inv.routes.push(`${ns} ${r.dst === 'default' ? (fam === '-6' ? '::/0' : '0.0.0.0/0') : r.dst} ${r.dev}`);
    }
    const nft = await run(inNs(ns, ['nft', '-j', 'list', 'ruleset']));
    for (const tb of parseNft(nft.stdout || '{"nftables":[]}')) {
      inv.nft.push(`${ns} table ${tb.family} ${tb.name}`);
      for (const [set, els] of Object.entries(tb.sets))
        for (const e of els) inv.nft.push(`${ns} ${set} ${e.ifname} ${e.prefix}`);
    }
  }
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const name = argv.find((a) => a.startsWith('wg-') && a.endsWith(allocationSuffix));
      if (argv.some((a) => a.endsWith('wireguard-go')) && name) inv.wgProcesses.push(name);
    } catch {
      /* exited */
    }
  }
  for (const n of t.nodes) {
    try {
      for (const f of readdirSync(join(n.config.stateDir, 'keys'))) inv.keyFiles.push(`${n.id} ${f}`);
    } catch {
      /* none */
    }
  }
  for (const k of Object.keys(inv) as (keyof Inventory)[]) inv[k].sort();
  return inv;
}
