// A simulated farm's network on one host (DESIGN.md section 9), in namespaces named PREFIX…:
//
//   PREFIXinet ── PREFIXup ══ PrefixZero bridge "pz0" in PREFIXseg ══ pub-E-A of each gateway
//   (internet)    (upstream, configured by the project's own Linux renderer on swp1)
//   PREFIXn1, PREFIXn2 …  each node's root + public namespace, joined by the underlay bridge
//                          "ul0" in PREFIXseg (192.0.2.0/24); the agent's own namespaces are
//                          PREFIXn1-gw-E-A, PREFIXn1-net-h-A …
//   workloads: one namespace each, a veth into a node's br-h-A.
//
// Used by the integration tests now; the "Simulated farm" issue grows it into `exitnode sim`.

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
  /** Underlay address (the node's public IPv4, where WireGuard listens). */
  publicIPv4: string;
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
    for (let i = 1; i <= opts.nodes; i++) {
      const ns = `${opts.prefix}n${i}`;
      this.nodes.push({
        id: `n${i}`,
        ns,
        publicIPv4: `192.0.2.${i}`,
        config: {
          node: `n${i}`,
          namespacePrefix: `${ns}-`,
          rootNamespace: ns,
          publicNamespace: ns,
          stateDir: opts.stateRoot ? join(opts.stateRoot, `n${i}`) : mkdtempSync(join(tmpdir(), `exitnode-${ns}-`)),
          uplink: { kind: 'veth', peerNamespace: this.seg, bridge: 'pz0' },
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
    for (const n of [inet, up, seg, ...this.nodes.map((x) => x.ns)]) await this.addNs(n);
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
    for (const n of this.nodes) {
      await this.batch(n.ns, [
        `link add ul0 type veth peer name ${underlayPortName(n.id)} netns ${seg}`,
        `addr add ${n.publicIPv4}/24 dev ul0`,
        'link set ul0 up',
      ]);
      await this.batch(seg, [`link set ${underlayPortName(n.id)} master ul0`, `link set ${underlayPortName(n.id)} up`]);
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

/** The topology a simulated farm's state describes (to add or re-attach workloads). */
export function topologyOf(s: Pick<SimState, 'nsPrefix' | 'prefix' | 'slots' | 'nodes' | 'stateDir'>): Topology {
  return new Topology({
    prefix: s.nsPrefix,
    allocation: s.prefix,
    slots: s.slots.map((x) => x.slot),
    nodes: s.nodes.length,
    stateRoot: join(s.stateDir, 'nodes'),
  });
}
