// A simulated farm's network on one host (DESIGN.md section 9), in namespaces named PREFIX…:
//
//   PREFIXinet ── PREFIXup ══ PrefixZero bridge "pz0" in PREFIXseg ══ pub-E-A of each gateway
//   (internet)    (upstream, configured by the project's own Linux renderer on swp1)
//   PREFIXn1, PREFIXn2 …  each node's root + public namespace, joined by the underlay bridge
//                          "ul0" in PREFIXseg (192.0.2.0/24); the agent's own namespaces are
//                          PREFIXn1-gw-E-A, PREFIXn1-net-h-A …
//   workloads: one namespace each, a veth into a node's br-h-A.
//
// The simulated farm (`exitnode sim`, segmentPerNode) adds:
//   PREFIXpz1 …   each node's own access to PrefixZero: a bridge "pz0" holding the far ends of that
//                 node's uplinks (pz-E-A), joined to the shared pz0 by one port "sg-n1" there. Two
//                 candidates of a slot (stage 2) both have an uplink pub-E-A, whose peers would
//                 clash on one shared bridge; and `sim fail` cuts a node with one port.
//   the upstream on the underlay (192.0.2.254, 2001:db8:ffff:1::fe): every node routes the
//                 segment's IPv4 pool and the farm's /48 through it, so it reaches GWPubIP4 and
//                 GWPubIP6 of any slot (a remote NR's endpoint for an ExitPoint, DESIGN 8.2).
//   PREFIXnat4 …  a NAT box of its own (masquerade) in front of a node without a public address
//                 (natNodes): its public side 192.0.2.10x on the underlay, the node behind it on a
//                 /30 of 203.0.113.64/26.
//
// Used by the integration tests and by `exitnode sim` (src/sim/farm.ts).

import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeConfig } from '../agent/config.js';
import { ExitnodeError } from '../core/errors.js';
import { KernelErrors } from '../kernel/errors.js';
import { run, inNs } from '../kernel/exec.js';
import { renderUpstream } from '../render/index.js';
import { endProcesses, namespacesWith, wireguardFromPidFiles } from './procs.js';
import type { SimState } from './state.js';

export interface SimNode {
  id: string;
  /** Root and public namespace of the node. */
  ns: string;
  /** Underlay address (the node's public IPv4, where WireGuard listens); behind a NAT, its private address. */
  publicIPv4: string;
  /** The node's NAT box (namespace), when it has no public address of its own. */
  nat?: { ns: string; publicIPv4: string };
  /** The node's own PrefixZero access namespace (segmentPerNode). */
  segNs?: string;
  config: NodeConfig;
}

export interface TopologyOptions {
  /** Namespace name prefix of everything this topology creates ("xa-"). */
  prefix: string;
  /** The farm /48 (documentation space). */
  allocation: string;
  slots: number[];
  nodes: number;
  wireguard?: NodeConfig['wireguard'];
  /** Node state directories go to STATEROOT/<node id> (the simulated farm's state dir) instead of a temporary directory. */
  stateRoot?: string;
  /** Each node reaches PrefixZero through a bridge of its own (the simulated farm does; see the header). */
  segmentPerNode?: boolean;
  /** The last NATNODES of the nodes have no public address: each sits behind a NAT box of its own. */
  natNodes?: number;
}

/** The simulation's own names on the segment namespace: a node's underlay port, and a gateway's PrefixZero port
 * while its node is failed (renamed, so the new holder's uplink peer can take the name pz-E-A). */
export function underlayPortName(nodeId: string): string {
  return `ul-${nodeId}`;
}
export function cutPortName(nodeId: string, slot: number, allocation: number): string {
  return `fx-${nodeId}-${slot}-${allocation}`;
}
export function isCutPortOf(nodeId: string, link: string): boolean {
  return link.startsWith(`fx-${nodeId}-`);
}
/** A node's port on the shared PrefixZero bridge, when it has a bridge of its own (segmentPerNode). */
export function segmentTrunkName(nodeId: string): string {
  return `sg-${nodeId}`;
}

/** The upstream router on the underlay. */
export const UNDERLAY_UPSTREAM4 = '192.0.2.254';
export const UNDERLAY_UPSTREAM6 = '2001:db8:ffff:1::fe';
/** The segment's IPv4 subnet (the slots' GWPubIP4 pool and the upstream's 198.51.100.1). */
export const SEGMENT4 = '198.51.100.0/24';

export const INTERNET6 = '2001:db8:ffff::2';
export const INTERNET4 = '203.0.113.2';
export const UPSTREAM4 = '198.51.100.1';

export class Topology {
  readonly prefix: string;
  readonly inet: string;
  readonly upstream: string;
  readonly seg: string;
  readonly nodes: SimNode[] = [];
  private readonly created: string[] = [];
  private readonly workloads: string[] = [];

  constructor(readonly opts: TopologyOptions) {
    this.prefix = opts.prefix;
    this.inet = `${opts.prefix}inet`;
    this.upstream = `${opts.prefix}up`;
    this.seg = `${opts.prefix}seg`;
    const natFrom = opts.nodes - (opts.natNodes ?? 0) + 1;
    for (let i = 1; i <= opts.nodes; i++) {
      const ns = `${opts.prefix}n${i}`;
      const segNs = opts.segmentPerNode ? `${opts.prefix}pz${i}` : undefined;
      const natted = i >= natFrom;
      this.nodes.push({
        id: `n${i}`,
        ns,
        publicIPv4: natted ? natInside(i).node : `192.0.2.${i}`,
        ...(natted ? { nat: { ns: `${opts.prefix}nat${i}`, publicIPv4: `192.0.2.${100 + i}` } } : {}),
        ...(segNs ? { segNs } : {}),
        config: {
          node: `n${i}`,
          namespacePrefix: `${ns}-`,
          rootNamespace: ns,
          publicNamespace: ns,
          stateDir: opts.stateRoot ? join(opts.stateRoot, `n${i}`) : mkdtempSync(join(tmpdir(), `exitnode-${ns}-`)),
          uplink: { kind: 'veth', peerNamespace: segNs ?? this.seg, bridge: 'pz0' },
          wireguard: opts.wireguard ?? 'userspace',
        },
      });
    }
  }

  /** Runs ARGV in namespace NS; throws with the command's own words when it fails. */
  async sh(ns: string, argv: string[], input?: string): Promise<string> {
    const r = await run(inNs(ns, argv), input);
    if (r.code !== 0)
      throw new ExitnodeError(KernelErrors.KERNEL_COMMAND_FAILED, `${ns}: ${argv.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  private async batch(ns: string, lines: string[]): Promise<void> {
    await this.sh(ns, ['ip', '-batch', '-'], lines.join('\n') + '\n');
  }

  private async addNs(name: string): Promise<void> {
    await this.sh('', ['ip', 'netns', 'add', name]);
    this.created.push(name);
    await this.batch(name, ['link set lo up']);
  }

  async up(): Promise<void> {
    const { inet, upstream: up, seg } = this;
    const extra = this.nodes.flatMap((x) => [...(x.segNs ? [x.segNs] : []), ...(x.nat ? [x.nat.ns] : [])]);
    for (const n of [inet, up, seg, ...this.nodes.map((x) => x.ns), ...extra]) await this.addNs(n);
    await this.sh(up, ['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1', 'net.ipv4.conf.all.forwarding=1']);
    await this.batch(seg, [
      'link add pz0 type bridge',
      'link set pz0 up',
      'link add ul0 type bridge',
      'link set ul0 up',
    ]);
    await this.batch(inet, [
      `link add eth0 type veth peer name inet0 netns ${up}`,
      `addr add ${INTERNET6}/64 dev eth0 nodad`,
      `addr add ${INTERNET4}/24 dev eth0`,
      'link set eth0 up',
      `route add default via 203.0.113.1`,
      `route add ::/0 via 2001:db8:ffff::1`,
    ]);
    await this.batch(up, [
      'addr add 2001:db8:ffff::1/64 dev inet0 nodad',
      'addr add 203.0.113.1/24 dev inet0',
      'link set inet0 up',
      `link add swp1 type veth peer name up0 netns ${seg}`,
      `addr add ${UPSTREAM4}/24 dev swp1`,
    ]);
    await this.batch(seg, ['link set up0 master pz0', 'link set up0 up']);
    // The upstream router: the project's own renderer, run as the operator would run it.
    const script = renderUpstream({
      prefix: this.opts.allocation,
      slots: this.opts.slots,
      router: 'linux',
      iface: 'swp1',
    });
    await this.sh(up, ['sh', '-s'], script);
    // The upstream on the underlay: the way from any node to GWPubIP4 / GWPubIP6 of any slot.
    await this.batch(up, [
      `link add ul0 type veth peer name ul-up netns ${seg}`,
      `addr add ${UNDERLAY_UPSTREAM4}/24 dev ul0`,
      `addr add ${UNDERLAY_UPSTREAM6}/64 dev ul0 nodad`,
      'link set ul0 up',
    ]);
    await this.batch(seg, ['link set ul-up master ul0', 'link set ul-up up']);
    for (const n of this.nodes) {
      // A NAT'ed node's underlay port belongs to its NAT box (sim fail cuts that port all the same).
      const onUnderlay = n.nat?.ns ?? n.ns;
      await this.batch(onUnderlay, [
        `link add ul0 type veth peer name ${underlayPortName(n.id)} netns ${seg}`,
        `addr add ${n.nat?.publicIPv4 ?? n.publicIPv4}/24 dev ul0`,
        ...(n.nat ? [] : [`addr add ${underlay6(n)}/64 dev ul0 nodad`]),
        'link set ul0 up',
        `route add ${SEGMENT4} via ${UNDERLAY_UPSTREAM4}`,
        ...(n.nat
          ? [`route add default via ${UNDERLAY_UPSTREAM4}`]
          : [`route add ${this.opts.allocation} via ${UNDERLAY_UPSTREAM6}`]),
      ]);
      await this.batch(seg, [`link set ${underlayPortName(n.id)} master ul0`, `link set ${underlayPortName(n.id)} up`]);
      if (n.nat) {
        const i = natInside(Number(n.id.slice(1)));
        await this.batch(n.nat.ns, [
          `link add lan0 type veth peer name ul0 netns ${n.ns}`,
          `addr add ${i.nat}/30 dev lan0`,
          'link set lan0 up',
        ]);
        await this.sh(n.nat.ns, ['sysctl', '-qw', 'net.ipv4.conf.all.forwarding=1']);
        await this.sh(
          n.nat.ns,
          ['nft', '-f', '-'],
          'table ip sim-nat {\n  chain post {\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname "ul0" masquerade\n  }\n}\n',
        );
        await this.batch(n.ns, [
          `addr add ${n.publicIPv4}/30 dev ul0`,
          'link set ul0 up',
          `route add default via ${i.nat}`,
        ]);
      }
      if (n.segNs) {
        await this.batch(n.segNs, [
          'link add pz0 type bridge',
          'link set pz0 up',
          `link add trunk type veth peer name ${segmentTrunkName(n.id)} netns ${seg}`,
          'link set trunk master pz0',
          'link set trunk up',
        ]);
        await this.batch(seg, [
          `link set ${segmentTrunkName(n.id)} master pz0`,
          `link set ${segmentTrunkName(n.id)} up`,
        ]);
      }
    }
  }

  /** A workload namespace with a veth into BRIDGE of NODE, addressed ADDR6/64 and ADDR4/24. */
  async workload(name: string, node: SimNode, bridge: string, addr6: string, addr4: string): Promise<string> {
    const ns = `${this.prefix}${name}`;
    if (!this.created.includes(ns)) {
      await this.addNs(ns);
      this.workloads.push(ns);
      const gw6 = addr6.replace(/::[0-9a-f]+$/, '::1');
      const gw4 = addr4.replace(/\.\d+$/, '.1');
      await this.batch(node.ns, [`link add wl-${name} type veth peer name eth0 netns ${ns}`]);
      await this.batch(ns, [
        `addr add ${addr6}/64 dev eth0 nodad`,
        `addr add ${addr4}/24 dev eth0`,
        'link set eth0 up',
        `route add ::/0 via ${gw6}`,
        `route add default via ${gw4}`,
      ]);
    }
    await this.attach(name, node, bridge);
    return ns;
  }

  /** (Re)attaches a workload's veth to its bridge (after the agent recreated the bridge). */
  async attach(name: string, node: SimNode, bridge: string): Promise<void> {
    await this.batch(node.ns, [`link set wl-${name} master ${bridge}`, `link set wl-${name} up`]);
  }

  /** Removes every namespace with this topology's prefix, the wireguard-go processes its nodes
   *  recorded (by PID, waited for until they are gone) and their state directories. Safe to call
   *  twice and after a failure. */
  async down(): Promise<void> {
    await endProcesses(this.nodes.flatMap((n) => wireguardFromPidFiles(n.config.stateDir).map((w) => w.pid)));
    const names = namespacesWith(this.prefix);
    // Node-owned namespaces first (their veths reach into the shared ones), then the rest.
    names.sort((a, b) => b.length - a.length);
    if (names.length) await run(['ip', '-force', '-batch', '-'], names.map((n) => `netns del ${n}`).join('\n') + '\n');
    for (const n of this.nodes) rmSync(n.config.stateDir, { recursive: true, force: true });
  }
}

/** The /30 between a NAT'ed node (number I) and its NAT box, in 203.0.113.64/26. */
export function natInside(i: number): { nat: string; node: string } {
  const base = 64 + 4 * (i - 1);
  return { nat: `203.0.113.${base + 1}`, node: `203.0.113.${base + 2}` };
}

/** A public node's IPv6 address on the underlay. */
export function underlay6(n: Pick<SimNode, 'id'>): string {
  return `2001:db8:ffff:1::${n.id.slice(1)}`;
}

/** The topology a simulated farm's state describes (to add or re-attach workloads). */
export function topologyOf(
  s: Pick<SimState, 'nsPrefix' | 'prefix' | 'slots' | 'stateDir'> & { nodes: { nat?: string }[] },
): Topology {
  return new Topology({
    prefix: s.nsPrefix,
    allocation: s.prefix,
    slots: s.slots.map((x) => x.slot),
    nodes: s.nodes.length,
    stateRoot: join(s.stateDir, 'nodes'),
    segmentPerNode: true,
    natNodes: s.nodes.filter((n) => n.nat).length,
  });
}
