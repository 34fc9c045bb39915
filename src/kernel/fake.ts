// An in-memory Kernel (src/kernel/kernel.ts) for the agent's unit tests: a model of namespaces,
// links (veth pairs, bridges, macvlans, NICs, WireGuard), addresses with duplicate address
// detection, routes, sysctls, nftables tables and sets, wireguard-go processes and the state
// directory's key and PID files. `apply` runs a plan's own lines (`ip -batch`, `nft -f`, sysctl,
// wg syncconf) against the model and `observe` reads the model back the way the real readers read
// the kernel, so a plan that would not work on Linux fails here too. The contract suite
// (test/kernel/contract.ts) holds this model and the real adapter to the same behaviour.
//
// What it models of Linux (each checked in throwaway namespaces while writing it):
// - a route needs its device up ("Nexthop device is not up"), an IPv4 gateway without `onlink` in
//   a subnet of the device, a `src` that is an address of the namespace;
// - a link going down loses its routes and its IPv6 addresses (keep_addr_on_down=0), not IPv4;
//   a link moved to another namespace comes up there down, without addresses or per-link sysctls;
// - deleting one end of a veth deletes both; deleting a namespace deletes its virtual links and
//   sends physical ones (kind "") home; a TUN going away ends its wireguard-go, and the reverse;
// - an IPv6 address added without `nodad` is tentative until its link has been up `dadMs`;
// - a link without `addrgenmode none` gets a kernel link-local address when it comes up;
// - `nft -f` is one transaction: one failing line and nothing of it applies;
// - keepalived (stage 2): the instances of one VRID elect a master among themselves (one segment,
//   highest priority among the backups when there is none; nopreempt), which holds the
//   configuration's virtual addresses and routes (routes with protocol 18, "keepalived"); a
//   namespace deleted under a running keepalived leaves it running (an orphan, as on Linux).
// Not modelled: neighbour caches, carrier, forwarding of packets beyond one L2 segment.

import { parseAddress, parseIfAddr, parsePrefix, Ip4Prefix, Ip6Prefix } from '../core/ip.js';
import {
  isWgLink,
  NFT_SET_PREFIX_LEN,
  NFT_TEXT_SETS,
  parseKeyFileName,
  parseOwnedNamespace,
  parsePidFileName,
  parseRuleMarker,
  ROUTE_PROTO,
} from '../core/ownership.js';
import type { DesiredState, NftElement } from '../compile/desired.js';
import type { ActualNs, ActualRoute, ActualState, ActualWg, ActualWgPeer } from '../reconcile/actual.js';
import { Phase, type Plan, type Step } from '../reconcile/plan.js';
import { batchFailures, generatePrivateKey, type ApplyOptions, type StepFailure } from './apply.js';
import type { Kernel, LinkUp, ObserveOptions, StateFiles, VrrpStatus } from './kernel.js';
import type { VrrpStateName } from '../compile/keepalived.js';
import type { VrrpSpec } from '../compile/desired.js';

interface FAddr {
  /** Canonical ADDRESS/LENGTH. */
  addr: string;
  family: 4 | 6;
  nodad: boolean;
  /** When duplicate address detection started (the link came up); undefined while the link is down. */
  dadFrom?: number;
}

interface FWg {
  privateKey: string;
  listenPort: number;
  peers: ActualWgPeer[];
}

interface FLink {
  name: string;
  /** As observe reports it: veth, bridge, macvlan, tun (wireguard-go), wireguard, "" (a NIC, lo). */
  kind: string;
  ns: FNs;
  up: boolean;
  addrgenNone: boolean;
  master?: FLink;
  /** The other end: of a veth, or of the cable of a NIC. */
  peer?: FLink;
  /** A macvlan's parent device. */
  parent?: FLink;
  addrs: FAddr[];
  /** Per-link sysctls: "ipv6.ndisc_notify" → value. */
  sysctls: Map<string, string>;
  /** The WireGuard device of a kernel wireguard link (wireguard-go's lives in its process). */
  wg?: FWg;
}

interface FRoute {
  dst: string;
  link: FLink;
  via?: string;
  onlink: boolean;
  src?: string;
  proto: number;
}

interface FTable {
  family: string;
  name: string;
  ruleHashes: string[];
  /** Set → its element type ("ipv6_addr" / "ipv4_addr") and elements by "ifname prefix". */
  sets: Map<string, { type: string; elems: Map<string, NftElement> }>;
  /** Text sets and maps (NFT_TEXT_SETS): elements as the text written. */
  texts: Map<string, Set<string>>;
}

interface FNs {
  name: string;
  links: Map<string, FLink>;
  routes: Map<string, FRoute>;
  /** Namespace-wide sysctls (net.ipv4.conf.all.forwarding …). */
  sysctls: Map<string, string>;
  nft: Map<string, FTable>;
}

interface FProc {
  pid: number;
  name: string;
  link: FLink;
  wg: FWg;
}

interface FVrrp {
  stateDir: string;
  ns: string;
  pid: number;
  /** False: the process died (a crash); its directory and files stay. */
  running: boolean;
  spec: VrrpSpec;
  state: VrrpStateName;
  since: number;
}

/** The virtual addresses and routes of a keepalived configuration (as src/compile/keepalived.ts writes it). */
function vrrpObjects(config: string): { addrs: { addr: string; dev: string }[]; routes: string[] } {
  const addrs: { addr: string; dev: string }[] = [];
  const routes: string[] = [];
  let block = '';
  for (const raw of config.split('\n')) {
    const line = raw.trim();
    const open = /^(\w+) \{$/.exec(line);
    if (open) block = open[1]!;
    else if (line === '}') block = '';
    else if (block === 'virtual_ipaddress' || block === 'virtual_ipaddress_excluded') {
      const m = /^(\S+) dev (\S+)$/.exec(line);
      if (m) addrs.push({ addr: m[1]!, dev: m[2]! });
    } else if (block === 'virtual_routes' && line) routes.push(line);
  }
  return { addrs, routes };
}

interface FFiles {
  keys: Map<string, string>;
  pids: Map<string, number>;
}

export interface FakeKernelOptions {
  /** The clock that duplicate address detection runs on (default Date.now). */
  now?: () => number;
  /** How long an IPv6 address stays tentative after its link comes up (default 1000 ms, as Linux). */
  dadMs?: number;
  /** Whether the kernel has WireGuard (default false: wireguard-go). */
  kernelWireguard?: boolean;
}

const FORWARDING: Record<string, string> = {
  'net.ipv4.conf.all.forwarding': 'ipv4',
  'net.ipv6.conf.all.forwarding': 'ipv6',
};

class IpError extends Error {}
const fail = (msg: string): never => {
  throw new IpError(msg);
};

function canonAddr(text: string): string {
  return parseAddress(text).toString();
}

function canonIfAddr(text: string): { addr: string; family: 4 | 6 } {
  const a = parseIfAddr(text);
  return { addr: `${a.addr.toString()}/${a.length}`, family: a.addr.family };
}

function canonPrefix(text: string): string {
  try {
    return parsePrefix(text).toString();
  } catch {
    return text;
  }
}

/** Whether ADDR (no length) lies in the subnet of interface address IFADDR (ADDRESS/LENGTH). */
function inSubnet(ifaddr: string, addr: string): boolean {
  const a = parseIfAddr(ifaddr);
  const x = parseAddress(addr);
  if (a.addr.family !== x.family) return false;
  if (a.addr.family === 6) {
    const host = (1n << BigInt(128 - a.length)) - 1n;
    return new Ip6Prefix(a.addr.value & ~host, a.length).contains(x as typeof a.addr);
  }
  const net = a.length === 0 ? 0 : (a.addr.value & ~(2 ** (32 - a.length) - 1)) >>> 0;
  return new Ip4Prefix(net, a.length).contains(x as typeof a.addr);
}

export class FakeKernel implements Kernel {
  private readonly spaces = new Map<string, FNs>();
  private readonly procs = new Map<string, FProc>();
  private readonly files = new Map<string, FFiles>();
  private readonly now: () => number;
  private readonly dadMs: number;
  private readonly kernelWg: boolean;
  private nextPid = 4000;
  private nextLl = 1;
  private readonly vrrps = new Map<string, FVrrp>();
  private readonly vrrpWatchers = new Set<{ stateDir: string; fn: (s: Map<string, VrrpStatus>) => void }>();
  /** Every interface wgKick was asked to kick, in order (the tests read it). */
  readonly kicks: string[] = [];

  constructor(opts: FakeKernelOptions = {}) {
    this.now = opts.now ?? (() => Date.now());
    this.dadMs = opts.dadMs ?? 1000;
    this.kernelWg = opts.kernelWireguard ?? false;
    const host = this.newNs('');
    host.links.get('lo')!.up = true;
  }

  // ---- test set-up ---------------------------------------------------------------------------

  /** Runs `ip` batch lines in NS as set-up; throws on the first failure. */
  ip(ns: string, ...lines: string[]): void {
    const n = this.spaces.get(ns) ?? fail(`namespace ${ns} does not exist`);
    for (const l of lines) this.ipLine(n, l);
  }

  /** Two NICs joined by a cable (a physical uplink and the upstream router's port). */
  cable(a: { ns: string; name: string }, b: { ns: string; name: string }): void {
    const na = this.spaces.get(a.ns) ?? fail(`namespace ${a.ns} does not exist`);
    const nb = this.spaces.get(b.ns) ?? fail(`namespace ${b.ns} does not exist`);
    const la = this.newLink(na, a.name, '');
    const lb = this.newLink(nb, b.name, '');
    la.peer = lb;
    lb.peer = la;
  }

  /** Names of the namespaces that exist (without the host's own). */
  namespaces(): string[] {
    return [...this.spaces.keys()].filter((n) => n !== '').sort();
  }

  // ---- Kernel --------------------------------------------------------------------------------

  async observe(desired: DesiredState, opts: ObserveOptions): Promise<ActualState> {
    const owned = new Set(this.namespaces().filter((n) => parseOwnedNamespace(opts.namespacePrefix, n)));
    const names = new Set<string>(owned);
    for (const n of desired.namespaces) if (this.spaces.has(n.name)) names.add(n.name);
    const byName = new Map(desired.namespaces.map((n) => [n.name, n]));
    const namespaces = new Map<string, ActualNs>();
    for (const name of [...names].sort()) {
      const n = this.spaces.get(name)!;
      const gateway = owned.has(name) && parseOwnedNamespace(opts.namespacePrefix, name)?.kind === 'gateway';
      namespaces.set(name, this.read(n, Object.keys(byName.get(name)?.sysctls ?? {}), gateway));
    }
    const wgNames = new Set<string>(desired.wireguard.map((w) => w.name));
    for (const s of namespaces.values()) for (const l of s.links) if (isWgLink(l.name)) wgNames.add(l.name);
    const wireguard = new Map<string, ActualWg>();
    if (opts.kernelWireguard) {
      for (const s of namespaces.values())
        for (const l of s.links) {
          const wg = this.spaces.get(s.name)!.links.get(l.name)!.wg;
          if (wg && wgNames.has(l.name)) wireguard.set(l.name, wgState(l.name, wg));
        }
    } else {
      // wireguard-go's control sockets are host-wide: every process answers, wherever its TUN is.
      for (const p of this.procs.values()) if (wgNames.has(p.name)) wireguard.set(p.name, wgState(p.name, p.wg));
    }
    return { namespaces, owned, wireguard, unreadable: new Map(), ...this.observeFiles(opts) };
  }

  observeFiles(opts: ObserveOptions): StateFiles {
    const f = this.filesOf(opts.stateDir);
    const wgProcesses = new Map<string, number>();
    for (const [name, pid] of f.pids) if (this.procs.get(name)?.pid === pid) wgProcesses.set(name, pid);
    const keyFiles = new Set<string>();
    for (const k of f.keys.keys()) {
      const name = parseKeyFileName(k);
      if (name) keyFiles.add(name);
    }
    const vrrp = new Map<string, { ns: string; pid?: number; hash?: string }>();
    for (const v of this.vrrps.values())
      if (v.stateDir === opts.stateDir)
        vrrp.set(v.ns, { ns: v.ns, hash: v.spec.hash, ...(v.running ? { pid: v.pid } : {}) });
    return { wgProcesses, keyFiles, pidFiles: new Set(f.pids.keys()), vrrp };
  }

  async apply(plan: Plan, opts: ApplyOptions): Promise<StepFailure[]> {
    // The order of the real writer (src/kernel/apply.ts): phases ascending, nft with the batches
    // of its phase, and nft transactions first within it.
    const group = (ph: number): number => (ph === Phase.NFT ? Phase.CONFIGURE : ph);
    const steps = plan.steps
      .map((s, i) => ({ s, i }))
      .sort(
        (x, y) =>
          group(x.s.phase) - group(y.s.phase) || Number(y.s.tool === 'nft') - Number(x.s.tool === 'nft') || x.i - y.i,
      )
      .map((x) => x.s);
    const failures: StepFailure[] = [];
    for (const s of steps) {
      opts.onStep?.(s);
      failures.push(...this.step(s, opts.stateDir));
    }
    return failures;
  }

  privateKeys(stateDir: string, wg: readonly { name: string; keyFile: string }[]): Map<string, string> {
    const f = this.filesOf(stateDir);
    const out = new Map<string, string>();
    for (const w of wg) {
      const k = f.keys.get(w.keyFile);
      if (k !== undefined) out.set(w.name, k);
    }
    return out;
  }

  writePrivateKey(stateDir: string, keyFile: string, key: string): void {
    this.filesOf(stateDir).keys.set(keyFile, key);
  }

  kernelWireguard(): boolean {
    return this.kernelWg;
  }

  namespaceExists(ns: string): boolean {
    return this.spaces.has(ns);
  }

  async tentative(ns: string, dev: string): Promise<boolean | undefined> {
    const l = this.spaces.get(ns)?.links.get(dev);
    return l ? l.addrs.some((a) => this.isTentative(a)) : undefined;
  }

  async ping(ns: string, dev: string, target: string, _waitS: number): Promise<boolean> {
    const l = this.spaces.get(ns)?.links.get(dev);
    if (!l || !l.up) return false;
    let t: string;
    try {
      t = canonAddr(target);
    } catch {
      return false;
    }
    const family = t.includes(':') ? 6 : 4;
    const linkLocal = family === 6 && t.startsWith('fe80:');
    const source = l.addrs.find(
      (a) =>
        a.family === family &&
        !this.isTentative(a) &&
        (family === 4 ? inSubnet(a.addr, t) : !linkLocal || a.addr.startsWith('fe80:')),
    );
    if (!source) return false;
    return this.segment(l).some(
      (o) => o !== l && o.addrs.some((a) => a.addr.slice(0, a.addr.indexOf('/')) === t && !this.isTentative(a)),
    );
  }

  /** Neighbour caches are not modelled: nothing to forget. */
  async flushNeighbours(): Promise<void> {}

  async fence(ns: string, dev: string, remove: boolean): Promise<string | undefined> {
    const n = this.spaces.get(ns);
    if (!n) return `Cannot open network namespace "${ns}": No such file or directory`;
    const lines = [`link set dev ${dev} down`, `addr flush dev ${dev}`];
    if (remove) lines.push(`link del dev ${dev}`);
    for (const line of lines) {
      try {
        this.ipLine(n, line);
      } catch (e) {
        if (!/Cannot find device|does not exist/.test((e as Error).message)) return (e as Error).message;
      }
    }
    return undefined;
  }

  // ---- stage 2 -------------------------------------------------------------------------------

  vrrpStates(stateDir: string): Map<string, VrrpStatus> {
    const out = new Map<string, VrrpStatus>();
    for (const v of [...this.vrrps.values()].sort((x, y) => (x.ns < y.ns ? -1 : 1)))
      if (v.stateDir === stateDir)
        out.set(v.ns, { state: v.running ? v.state : 'STOPPED', priority: v.spec.priority, since: v.since });
    return out;
  }

  watchVrrp(stateDir: string, onChange: (states: Map<string, VrrpStatus>) => void): () => void {
    const w = { stateDir, fn: onChange };
    this.vrrpWatchers.add(w);
    return () => void this.vrrpWatchers.delete(w);
  }

  async vrrpDrain(stateDir: string, ns: string): Promise<void> {
    const v = this.vrrps.get(`${stateDir}\0${ns}`);
    if (!v?.running) return;
    // FAULT through the drain file: a master sends its priority-0 advert, the others elect.
    this.transition(v, 'FAULT');
    this.elect(v.spec.vrid);
    this.transition(v, 'BACKUP');
    this.elect(v.spec.vrid);
  }

  async setLinksUp(items: readonly LinkUp[]): Promise<void> {
    for (const i of items) {
      const l = this.spaces.get(i.ns)?.links.get(i.dev);
      if (l) this.setUp(l, i.up);
    }
  }

  async wgKick(names: readonly string[]): Promise<void> {
    for (const n of names) if (this.procs.has(n) || this.kernelLink(n)) this.kicks.push(n);
  }

  async wgEndpoints(names: readonly string[]): Promise<Map<string, Map<string, string>>> {
    const out = new Map<string, Map<string, string>>();
    for (const n of names) {
      const wg = this.procs.get(n)?.wg ?? this.kernelLink(n)?.wg;
      if (!wg) continue;
      out.set(n, new Map(wg.peers.filter((p) => p.endpoint).map((p) => [p.publicKey, p.endpoint!])));
    }
    return out;
  }

  /** Test set-up: the keepalived of NS dies (SIGKILL: its addresses stay where they are). */
  crashVrrp(stateDir: string, ns: string): void {
    const v = this.vrrps.get(`${stateDir}\0${ns}`);
    if (!v?.running) return;
    v.running = false;
    this.emitVrrp(v.stateDir);
    this.elect(v.spec.vrid);
  }

  private kernelLink(name: string): FLink | undefined {
    for (const n of this.spaces.values()) {
      const l = n.links.get(name);
      if (l?.wg) return l;
    }
    return undefined;
  }

  private emitVrrp(stateDir: string): void {
    for (const w of [...this.vrrpWatchers]) if (w.stateDir === stateDir) w.fn(this.vrrpStates(stateDir));
  }

  private transition(v: FVrrp, state: VrrpStateName): void {
    if (v.state === state) return;
    if (v.state === 'MASTER') this.vrrpRelease(v);
    v.state = state;
    v.since = this.now();
    if (state === 'MASTER') this.vrrpTake(v);
    this.emitVrrp(v.stateDir);
  }

  /** A new master for VRID when it has none: the backup of highest priority whose uplink is up. */
  private elect(vrid: number): void {
    const group = [...this.vrrps.values()].filter((v) => v.running && v.spec.vrid === vrid);
    if (group.some((v) => v.state === 'MASTER')) return;
    const ready = group
      .filter((v) => v.state === 'BACKUP' && this.vrrpUplink(v)?.up)
      .sort((x, y) => y.spec.priority - x.spec.priority);
    if (ready[0]) this.transition(ready[0], 'MASTER');
  }

  private vrrpUplink(v: FVrrp): FLink | undefined {
    const dev = /^\s*interface (\S+)$/m.exec(v.spec.config)?.[1];
    return dev === undefined ? undefined : this.spaces.get(v.ns)?.links.get(dev);
  }

  /** keepalived follows its uplink: down or gone is FAULT (another takes over), back up is BACKUP. */
  private vrrpLinks(): void {
    for (const v of [...this.vrrps.values()]) {
      if (!v.running) continue;
      const ok = this.vrrpUplink(v)?.up === true;
      if (!ok && v.state !== 'FAULT') {
        this.transition(v, 'FAULT');
        this.elect(v.spec.vrid);
      } else if (ok && v.state === 'FAULT') {
        this.transition(v, 'BACKUP');
        this.elect(v.spec.vrid);
      }
    }
  }

  private vrrpTake(v: FVrrp): void {
    const n = this.spaces.get(v.ns);
    if (!n) return;
    const { addrs, routes } = vrrpObjects(v.spec.config);
    for (const a of addrs) {
      const l = n.links.get(a.dev);
      if (!l) continue;
      const c = canonIfAddr(a.addr);
      if (!l.addrs.some((x) => x.addr === c.addr)) l.addrs.push({ ...c, nodad: true, dadFrom: this.now() });
    }
    for (const r of routes) {
      try {
        this.routeLine(n, 'replace', [...r.split(/\s+/), 'proto', '18'], () => fail('garbage'));
      } catch {
        /* keepalived logs it and goes on */
      }
    }
  }

  private vrrpRelease(v: FVrrp): void {
    const n = this.spaces.get(v.ns);
    if (!n) return;
    const { addrs, routes } = vrrpObjects(v.spec.config);
    for (const a of addrs) {
      const l = n.links.get(a.dev);
      if (!l) continue;
      const c = canonIfAddr(a.addr);
      l.addrs = l.addrs.filter((x) => x.addr !== c.addr);
    }
    for (const r of routes) {
      const dst = canonPrefix(r.split(/\s+/)[0]!);
      if (n.routes.get(dst)?.proto === 18) n.routes.delete(dst);
    }
  }

  private vrrpStep(
    s: Step & { tool: 'vrrp-start' | 'vrrp-reload' | 'vrrp-stop' },
    stateDir: string,
  ): string | undefined {
    const key = `${stateDir}\0${s.ns}`;
    const have = this.vrrps.get(key);
    if (s.tool === 'vrrp-start') {
      if (!this.spaces.has(s.ns)) return `namespace ${s.ns} does not exist`;
      if (have?.running) return `keepalived exited with status 1: daemon is already running`;
      const v: FVrrp = {
        stateDir,
        ns: s.ns,
        pid: this.nextPid++,
        running: true,
        spec: s.vrrp,
        state: 'BACKUP',
        since: this.now(),
      };
      this.vrrps.set(key, v);
      // Every instance starts in BACKUP; one that hears no master takes over (here: at once).
      this.emitVrrp(stateDir);
      this.vrrpLinks();
      this.elect(v.spec.vrid);
      return undefined;
    }
    if (s.tool === 'vrrp-reload') {
      if (!have?.running || have.pid !== s.pid) return `keepalived (pid ${s.pid}) is not running`;
      const wasMaster = have.state === 'MASTER';
      if (wasMaster) this.vrrpRelease(have);
      have.spec = s.vrrp;
      if (wasMaster) this.vrrpTake(have);
      return undefined;
    }
    if (have?.running && have.pid === s.pid) {
      this.transition(have, 'STOPPED');
      have.running = false;
      this.vrrps.delete(key);
      this.elect(have.spec.vrid);
    } else if (have && !have.running) this.vrrps.delete(key);
    this.emitVrrp(stateDir);
    return undefined;
  }

  // ---- the model -----------------------------------------------------------------------------

  private newNs(name: string): FNs {
    const n: FNs = { name, links: new Map(), routes: new Map(), sysctls: new Map(), nft: new Map() };
    this.spaces.set(name, n);
    this.newLink(n, 'lo', '');
    return n;
  }

  private newLink(ns: FNs, name: string, kind: string): FLink {
    if (ns.links.has(name)) fail('RTNETLINK answers: File exists');
    const l: FLink = { name, kind, ns, up: false, addrgenNone: false, addrs: [], sysctls: new Map() };
    ns.links.set(name, l);
    return l;
  }

  private filesOf(stateDir: string): FFiles {
    let f = this.files.get(stateDir);
    if (!f) this.files.set(stateDir, (f = { keys: new Map(), pids: new Map() }));
    return f;
  }

  private isTentative(a: FAddr): boolean {
    return a.family === 6 && !a.nodad && (a.dadFrom === undefined || this.now() < a.dadFrom + this.dadMs);
  }

  private link(ns: FNs, name: string | undefined): FLink {
    if (name === undefined) fail('Not enough information: "dev" argument is required.');
    return ns.links.get(name!) ?? fail(`Cannot find device "${name}"`);
  }

  private nsRef(ref: string | undefined): FNs {
    if (ref === '1') return this.spaces.get('')!;
    return (ref !== undefined ? this.spaces.get(ref) : undefined) ?? fail(`Invalid "netns" value "${ref}"`);
  }

  /** The links one frame from L can reach: veth peers and cables, bridges and their ports, macvlans. */
  private segment(l: FLink): FLink[] {
    const seen = new Set<FLink>([l]);
    const todo = [l];
    const all = [...this.spaces.values()].flatMap((n) => [...n.links.values()]);
    while (todo.length) {
      const x = todo.pop()!;
      const next = [
        x.peer,
        x.master,
        x.parent,
        ...all.filter((o) => o.master === x || (x.parent ? o.parent === x.parent : o.parent === x)),
      ];
      for (const o of next)
        if (o && o.up && !seen.has(o)) {
          seen.add(o);
          todo.push(o);
        }
    }
    return [...seen];
  }

  private setUp(l: FLink, up: boolean): void {
    if (l.up === up) return;
    l.up = up;
    if (up) {
      const now = this.now();
      for (const a of l.addrs) if (a.dadFrom === undefined) a.dadFrom = now;
      const ethernet = l.kind === 'veth' || l.kind === 'bridge' || l.kind === 'macvlan' || l.kind === '';
      if (ethernet && !l.addrgenNone && l.name !== 'lo' && !l.addrs.some((a) => a.addr.startsWith('fe80:')))
        l.addrs.push({
          addr: `fe80::ff:fe00:${(this.nextLl++).toString(16)}/64`,
          family: 6,
          nodad: false,
          dadFrom: now,
        });
    } else {
      l.addrs = l.addrs.filter((a) => a.family === 4);
      this.dropRoutes(l);
    }
    if (this.vrrps.size) this.vrrpLinks();
  }

  private dropRoutes(l: FLink): void {
    for (const [k, r] of l.ns.routes) if (r.link === l) l.ns.routes.delete(k);
  }

  private deleteLink(l: FLink): void {
    if (!l.ns.links.has(l.name) || l.ns.links.get(l.name) !== l) return;
    this.dropRoutes(l);
    l.ns.links.delete(l.name);
    for (const n of this.spaces.values())
      for (const o of [...n.links.values()]) {
        if (o.master === l) o.master = undefined;
        if (o.parent === l) this.deleteLink(o);
      }
    if (l.kind === 'veth' && l.peer) this.deleteLink(l.peer);
    for (const [name, p] of this.procs) if (p.link === l) this.procs.delete(name);
    if (this.vrrps.size) this.vrrpLinks();
  }

  private moveLink(l: FLink, to: FNs, name = l.name): void {
    if (to.links.has(name)) fail('RTNETLINK answers: File exists');
    this.setUp(l, false);
    this.dropRoutes(l);
    l.ns.links.delete(l.name);
    l.addrs = [];
    l.sysctls.clear();
    l.master = undefined;
    l.name = name;
    l.ns = to;
    to.links.set(name, l);
  }

  private deleteNs(n: FNs): void {
    for (const l of [...n.links.values()]) {
      const host = this.spaces.get('')!;
      // A physical device outlives the namespace: the kernel gives it back to the host's (as devN if taken).
      if (l.kind === '' && l.name !== 'lo')
        this.moveLink(l, host, host.links.has(l.name) ? `dev${this.nextLl++}` : l.name);
      else this.deleteLink(l);
    }
    this.spaces.delete(n.name);
  }

  private read(n: FNs, wantSysctls: string[], gateway: boolean): ActualNs {
    const links = [...n.links.values()];
    const out: ActualNs = {
      name: n.name,
      links: links.map((l) => ({
        name: l.name,
        kind: l.kind,
        up: l.up,
        addrgenNone: l.addrgenNone,
        ...(l.master ? { master: l.master.name } : {}),
      })),
      addrs: links.flatMap((l) => l.addrs.map((a) => ({ dev: l.name, addr: a.addr }))),
      routes: [...n.routes.values()]
        .filter((r) => r.proto === ROUTE_PROTO)
        .map((r) => {
          const x: ActualRoute = { dst: r.dst, dev: r.link.name, onlink: r.onlink };
          if (r.via) x.via = r.via;
          if (r.src) x.src = r.src;
          return x;
        }),
      sysctls: {},
      nft: [],
    };
    for (const k of Object.keys(FORWARDING)) out.sysctls[k] = n.sysctls.get(k) ?? '0';
    for (const k of wantSysctls) {
      if (k in FORWARDING) continue;
      const v = this.sysctlGet(n, k);
      if (v !== undefined) out.sysctls[k] = v;
    }
    if (gateway)
      out.nft = [...n.nft.values()].map((t) => ({
        family: t.family,
        name: t.name,
        ruleHashes: [...t.ruleHashes],
        sets: Object.fromEntries([...t.sets].map(([s, v]) => [s, [...v.elems.values()]])),
        ...(t.texts.size ? { texts: Object.fromEntries([...t.texts].map(([s, v]) => [s, [...v]])) } : {}),
      }));
    return out;
  }

  private perLink(n: FNs, key: string): { link?: FLink; k: string } | undefined {
    const m = /^net\.(ipv[46])\.conf\.([^.]+)\.(.+)$/.exec(key);
    if (!m || m[2] === 'all' || m[2] === 'default') return undefined;
    return { link: n.links.get(m[2]!), k: `${m[1]}.${m[3]}` };
  }

  private sysctlGet(n: FNs, key: string): string | undefined {
    const p = this.perLink(n, key);
    if (p) return p.link ? (p.link.sysctls.get(p.k) ?? '0') : undefined;
    return n.sysctls.get(key);
  }

  // ---- plan steps ----------------------------------------------------------------------------

  private step(s: Step, stateDir: string): StepFailure[] {
    const failed = (reason: string): StepFailure[] => [{ objects: s.objects, reason }];
    const ns = this.spaces.get(s.ns);
    switch (s.tool) {
      case 'ip': {
        if (!ns) return failed(`namespace ${s.ns} does not exist`);
        // `ip -force -batch`: every line runs; each failure is reported as ip does, by line number.
        const err: string[] = [];
        s.lines.forEach((line, i) => {
          try {
            this.ipLine(ns, line);
          } catch (e) {
            if (!(e instanceof IpError)) throw e;
            err.push(e.message, `Command failed -:${i + 1}`);
          }
        });
        return err.length ? batchFailures(err.join('\n'), s.objects, s.lines) : [];
      }
      case 'nft': {
        if (!ns) return failed(`namespace ${s.ns} does not exist`);
        try {
          this.nftTransaction(ns, s.lines);
          return [];
        } catch (e) {
          if (!(e instanceof IpError)) throw e;
          return failed(`nft: ${e.message}`);
        }
      }
      case 'sysctl': {
        if (!ns) return failed(`namespace ${s.ns} does not exist`);
        const errors: string[] = [];
        for (const line of s.lines) {
          const eq = line.indexOf('=');
          const key = line.slice(0, eq);
          const p = this.perLink(ns, key);
          if (eq < 0 || (p && !p.link))
            errors.push(`sysctl: cannot stat /proc/sys/${key.replaceAll('.', '/')}: No such file or directory`);
          else if (p) p.link!.sysctls.set(p.k, line.slice(eq + 1));
          else ns.sysctls.set(key, line.slice(eq + 1));
        }
        return errors.length ? failed(`sysctl: ${errors.slice(0, 3).join('; ')}`) : [];
      }
      case 'wg-start': {
        if (!ns) return failed(`Cannot open network namespace "${s.ns}": No such file or directory`);
        if (s.kernel) {
          if (ns.links.has(s.name)) return failed('RTNETLINK answers: File exists');
          this.newLink(ns, s.name, 'wireguard').wg = { privateKey: '(none)', listenPort: 0, peers: [] };
          return [];
        }
        const f = this.filesOf(stateDir);
        const pid = this.nextPid++;
        f.pids.set(s.name, pid);
        if (this.procs.has(s.name) || ns.links.has(s.name))
          return failed(`wireguard-go exited with status 1: UAPI listen error: address already in use`);
        const link = this.newLink(ns, s.name, 'tun');
        this.procs.set(s.name, { pid, name: s.name, link, wg: { privateKey: '(none)', listenPort: 0, peers: [] } });
        return [];
      }
      case 'keygen': {
        const f = this.filesOf(stateDir);
        if (!f.keys.has(s.keyFile)) f.keys.set(s.keyFile, generatePrivateKey().privateKey);
        return [];
      }
      case 'wg': {
        const key = this.filesOf(stateDir).keys.get(s.keyFile);
        if (key === undefined)
          return failed(`cannot read the private key: ENOENT: no such file or directory, open '${s.keyFile}'`);
        // A kernel link is configured in its namespace; wireguard-go through its host-wide socket.
        const target = ns?.links.get(s.name)?.wg ?? this.procs.get(s.name)?.wg;
        if (!target) return failed(`Unable to modify interface: No such device`);
        try {
          // As `wg syncconf`: a peer the configuration gives no endpoint keeps the one it roamed to.
          const before = new Map(target.peers.map((q) => [q.publicKey, q.endpoint]));
          const conf = parseWgConf(s.conf);
          for (const q of conf.peers) q.endpoint ??= before.get(q.publicKey);
          Object.assign(target, conf, { privateKey: key });
        } catch (e) {
          if (!(e instanceof IpError)) throw e;
          return failed(e.message);
        }
        return [];
      }
      case 'kill': {
        const p = this.procs.get(s.name);
        // Like the real writer: only a live wireguard-go of that name and PID is ended.
        if (p && p.pid === s.pid) {
          this.procs.delete(s.name);
          this.deleteLink(p.link);
        }
        return [];
      }
      case 'vrrp-start':
      case 'vrrp-reload':
      case 'vrrp-stop': {
        const e = this.vrrpStep(s, stateDir);
        return e ? failed(e) : [];
      }
      case 'rm': {
        const f = this.filesOf(stateDir);
        const wg = parsePidFileName(s.file);
        if (wg) f.pids.delete(wg);
        else f.keys.delete(s.file);
        return [];
      }
    }
  }

  /** One line of `ip -batch` in NS; throws IpError with ip's message. */
  private ipLine(ns: FNs, line: string): void {
    const w = line.trim().split(/\s+/);
    const [obj, verb] = w;
    const rest = w.slice(2);
    const garbage = (x: string | undefined): never => fail(`Error: either "to" is duplicate, or "${x}" is a garbage.`);
    if (obj === 'netns') {
      const name = rest[0] ?? fail('No netns name specified');
      if (verb === 'add') {
        if (this.spaces.has(name)) fail(`Cannot create namespace file "/run/netns/${name}": File exists`);
        this.newNs(name);
      } else if (verb === 'del') {
        const n = this.spaces.get(name);
        if (!n || name === '') fail(`Cannot remove namespace file "/run/netns/${name}": No such file or directory`);
        this.deleteNs(n!);
      } else garbage(verb);
      return;
    }
    if (obj === 'link') return this.linkLine(ns, verb, rest, garbage);
    if (obj === 'addr') return this.addrLine(ns, verb, rest, garbage);
    if (obj === 'route') return this.routeLine(ns, verb, rest, garbage);
    fail(`Object "${obj}" is unknown, try "ip help".`);
  }

  private linkLine(ns: FNs, verb: string | undefined, w: string[], garbage: (x?: string) => never): void {
    if (verb === 'add') {
      // link add NAME type veth peer name PEER [netns REF] | link add NAME type bridge
      // link add link PARENT name NAME netns REF type macvlan mode bridge
      if (w[0] === 'link') {
        const parent = this.link(ns, w[1]);
        if (w[2] !== 'name' || w[4] !== 'netns' || w[6] !== 'type' || w[7] !== 'macvlan') garbage(w[2]);
        if (w.length > 8 && !(w[8] === 'mode' && w[9] === 'bridge' && w.length === 10)) garbage(w[8]);
        const l = this.newLink(this.nsRef(w[5]), w[3]!, 'macvlan');
        l.parent = parent;
        return;
      }
      const name = w[0] ?? fail('Not enough information: "dev" argument is required.');
      if (w[1] !== 'type') garbage(w[1]);
      if (w[2] === 'bridge' && w.length === 3) {
        this.newLink(ns, name, 'bridge');
        return;
      }
      if (w[2] === 'veth' && w[3] === 'peer' && w[4] === 'name' && w[5]) {
        if (w.length !== 6 && !(w.length === 8 && w[6] === 'netns')) garbage(w[6]);
        const peerNs = w.length === 8 ? this.nsRef(w[7]) : ns;
        if (ns.links.has(name) || peerNs.links.has(w[5]) || (peerNs === ns && name === w[5]))
          fail('RTNETLINK answers: File exists');
        const a = this.newLink(ns, name, 'veth');
        const b = this.newLink(peerNs, w[5], 'veth');
        a.peer = b;
        b.peer = a;
        return;
      }
      fail(`Error: Unknown device type "${w[2]}".`);
    }
    if (verb === 'del') {
      const l = this.link(ns, w[0] === 'dev' ? w[1] : w[0]);
      if (l.kind === '') fail('RTNETLINK answers: Operation not supported');
      this.deleteLink(l);
      return;
    }
    if (verb !== 'set') garbage(verb);
    let i = 0;
    if (w[0] === 'dev') i++;
    let l = this.link(ns, w[i++]);
    while (i < w.length) {
      const a = w[i++];
      if (a === 'up' || a === 'down') this.setUp(l, a === 'up');
      else if (a === 'addrgenmode' && w[i] === 'none') {
        i++;
        l.addrgenNone = true;
      } else if (a === 'master') {
        const m = ns.links.get(w[i++]!) ?? fail(`Error: argument "${w[i - 1]}" is wrong: Device does not exist`);
        if (m.kind !== 'bridge') fail('RTNETLINK answers: Operation not supported');
        l.master = m;
      } else if (a === 'nomaster') l.master = undefined;
      else if (a === 'netns') {
        const to = this.nsRef(w[i++]);
        if (to !== ns) this.moveLink(l, to);
        ns = to;
      } else if (a === 'name') {
        const name = w[i++] ?? garbage(a);
        if (name !== l.name) {
          if (ns.links.has(name)) fail('RTNETLINK answers: File exists');
          ns.links.delete(l.name);
          l.name = name;
          ns.links.set(name, l);
        }
      } else garbage(a);
      l = ns.links.get(l.name)!;
    }
  }

  private addrLine(ns: FNs, verb: string | undefined, w: string[], garbage: (x?: string) => never): void {
    if (verb === 'flush') {
      if (w[0] !== 'dev') garbage(w[0]);
      const l = ns.links.get(w[1]!) ?? fail(`Device "${w[1]}" does not exist.`);
      l.addrs = [];
      return;
    }
    if (verb !== 'add' && verb !== 'replace' && verb !== 'del') garbage(verb);
    let a: { addr: string; family: 4 | 6 };
    try {
      a = canonIfAddr(w[0] ?? '');
    } catch {
      return fail(`Error: any valid prefix is expected rather than "${w[0]}".`);
    }
    if (w[1] !== 'dev') garbage(w[1]);
    const l = this.link(ns, w[2]);
    const nodad = w[3] === 'nodad';
    if (w.length > (nodad ? 4 : 3)) garbage(w[nodad ? 4 : 3]);
    const have = l.addrs.find((x) => x.addr === a.addr);
    if (verb === 'del') {
      if (!have) fail(`Error: ipv${a.family}: Address not found.`);
      l.addrs = l.addrs.filter((x) => x !== have);
      return;
    }
    if (have) {
      if (verb === 'add') fail('RTNETLINK answers: File exists');
      have.nodad = nodad;
      return;
    }
    l.addrs.push({ ...a, nodad, ...(l.up ? { dadFrom: this.now() } : {}) });
  }

  private routeLine(ns: FNs, verb: string | undefined, w: string[], garbage: (x?: string) => never): void {
    if (verb !== 'add' && verb !== 'replace' && verb !== 'del') garbage(verb);
    const r: { dst?: string; via?: string; dev?: string; onlink: boolean; src?: string; proto: number } = {
      onlink: false,
      proto: 3,
    };
    for (let i = 0; i < w.length; i++) {
      const t = w[i]!;
      if (i === 0) r.dst = t;
      else if (t === 'via') r.via = w[++i];
      else if (t === 'dev') r.dev = w[++i];
      else if (t === 'onlink') r.onlink = true;
      else if (t === 'src') r.src = w[++i];
      else if (t === 'proto') r.proto = Number(w[++i]);
      else garbage(t);
    }
    const family = (r.dst ?? '').includes(':') || (r.via ?? '').includes(':') ? 6 : 4;
    const dst = r.dst === 'default' ? (family === 6 ? '::/0' : '0.0.0.0/0') : canonPrefix(r.dst ?? '');
    const l = this.link(ns, r.dev);
    if (verb === 'del') {
      const have = ns.routes.get(dst);
      if (!have || have.link !== l || have.proto !== r.proto) fail('RTNETLINK answers: No such process');
      ns.routes.delete(dst);
      return;
    }
    if (!l.up) fail('Error: Nexthop device is not up.');
    const via = r.via !== undefined ? canonAddr(r.via) : undefined;
    if (via && family === 4 && !r.onlink && !l.addrs.some((a) => a.family === 4 && inSubnet(a.addr, via)))
      fail('Error: Nexthop has invalid gateway.');
    const src = r.src !== undefined ? canonAddr(r.src) : undefined;
    if (src && ![...ns.links.values()].some((x) => x.addrs.some((a) => a.addr.startsWith(`${src}/`))))
      fail('Error: Invalid prefsrc address.');
    if (verb === 'add' && ns.routes.has(dst)) fail('RTNETLINK answers: File exists');
    ns.routes.set(dst, {
      dst,
      link: l,
      onlink: r.onlink,
      proto: r.proto,
      ...(via ? { via } : {}),
      ...(src ? { src } : {}),
    });
  }

  /** One `nft -f` transaction: applied whole or not at all. */
  private nftTransaction(ns: FNs, lines: string[]): void {
    const tables = new Map(
      [...ns.nft].map(([k, t]) => [
        k,
        {
          ...t,
          ruleHashes: [...t.ruleHashes],
          sets: new Map([...t.sets].map(([s, v]) => [s, { type: v.type, elems: new Map(v.elems) }])),
          texts: new Map([...t.texts].map(([s, v]) => [s, new Set(v)])),
        },
      ]),
    );
    const noSuch = (): never => fail('Error: Could not process rule: No such file or directory');
    let table: FTable | undefined;
    let set: string | undefined;
    let chain = false;
    for (const raw of lines) {
      const line = raw.trim();
      if (line === '') continue;
      if (table) {
        if (line === '}') {
          if (set !== undefined) set = undefined;
          else if (chain) chain = false;
          else table = undefined;
          continue;
        }
        if (set !== undefined && table.texts.has(set)) {
          if (!/^(type \S.*|flags interval)$/.test(line)) fail(`Error: syntax error: ${line}`);
          continue;
        }
        if (set !== undefined) {
          const m = /^type ifname \. (ipv6_addr|ipv4_addr)$/.exec(line) ?? fail(`Error: syntax error: ${line}`);
          table.sets.get(set)!.type = m[1]!;
          continue;
        }
        if (chain) {
          if (/^type \w+ hook \w+ priority \w+; policy \w+;$/.test(line)) continue;
          table.ruleHashes.push(parseRuleMarker(/comment "([^"]*)"/.exec(line)?.[1]) ?? '');
          continue;
        }
        let m = /^(?:set|map) (\S+) \{$/.exec(line);
        if (m && NFT_TEXT_SETS.includes(m[1]!)) {
          set = m[1]!;
          table.texts.set(set, new Set());
          continue;
        }
        if (m) {
          set = m[1]!;
          table.sets.set(set, { type: '', elems: new Map() });
          continue;
        }
        m = /^chain (\S+) \{$/.exec(line);
        if (m) {
          chain = true;
          continue;
        }
        fail(`Error: syntax error: ${line}`);
      }
      let m = /^table (ip|ip6|inet) (\S+)( \{)?$/.exec(line);
      if (m) {
        const k = `${m[1]} ${m[2]}`;
        let t = tables.get(k);
        if (!t) tables.set(k, (t = { family: m[1]!, name: m[2]!, ruleHashes: [], sets: new Map(), texts: new Map() }));
        if (m[3]) table = t;
        continue;
      }
      m = /^delete table (\S+) (\S+)$/.exec(line);
      if (m) {
        if (!tables.delete(`${m[1]} ${m[2]}`)) noSuch();
        continue;
      }
      m = /^(add|delete) element (\S+) (\S+) (\S+) \{ (.*) \}$/.exec(line);
      const texts = m ? tables.get(`${m[2]} ${m[3]}`)?.texts.get(m[4]!) : undefined;
      if (m && texts) {
        for (const e of m[5]!.split(', ')) {
          if (!/^[0-9a-z:./ -]+$/.test(e)) fail(`Error: syntax error: ${e}`);
          if (m[1] === 'add') texts.add(e);
          else if (!texts.delete(e)) noSuch();
        }
        continue;
      }
      if (m) {
        const s = tables.get(`${m[2]} ${m[3]}`)?.sets.get(m[4]!) ?? noSuch();
        for (const e of m[5]!.split(', ')) {
          const x = /^"([^"]+)" \. (\S+)$/.exec(e) ?? fail(`Error: syntax error: ${e}`);
          const addr = canonAddr(x[2]!);
          if ((addr.includes(':') ? 'ipv6_addr' : 'ipv4_addr') !== s.type) fail(`Error: datatype mismatch: ${e}`);
          const len = NFT_SET_PREFIX_LEN[m[4]!] ?? (addr.includes(':') ? 128 : 32);
          const el: NftElement = { ifname: x[1]!, prefix: `${addr}/${len}` };
          const k = `${el.ifname} ${el.prefix}`;
          if (m[1] === 'add') s.elems.set(k, el);
          else if (!s.elems.delete(k)) noSuch();
        }
        continue;
      }
      fail(`Error: syntax error: ${line}`);
    }
    if (table) fail('Error: syntax error, unexpected end of file');
    ns.nft = tables;
  }
}

function wgState(name: string, w: FWg): ActualWg {
  return {
    name,
    privateKey: w.privateKey,
    listenPort: w.listenPort,
    peers: w.peers.map((p) => ({ ...p, allowedIps: [...p.allowedIps] })),
  };
}

/** The configuration `wg syncconf` takes (as src/reconcile/diff.ts writes it). */
function parseWgConf(text: string): Omit<FWg, 'privateKey'> {
  let listenPort = 0;
  const peers: ActualWgPeer[] = [];
  let peer: ActualWgPeer | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line === '[Interface]') continue;
    if (line === '[Peer]') {
      peers.push((peer = { publicKey: '', allowedIps: [] }));
      continue;
    }
    const m = /^(\w+) = (.*)$/.exec(line) ?? fail(`Line unrecognized: \`${line}'`);
    const [k, v] = [m[1]!, m[2]!];
    if (!peer) {
      if (k === 'ListenPort') listenPort = Number(v);
      else if (k !== 'PrivateKey') fail(`Line unrecognized: \`${line}'`);
    } else if (k === 'PublicKey') peer.publicKey = v;
    else if (k === 'AllowedIPs') peer.allowedIps = v.split(',').map((p) => canonPrefix(p.trim()));
    else if (k === 'Endpoint') peer.endpoint = v;
    else if (k === 'PersistentKeepalive') peer.keepalive = Number(v);
    else fail(`Line unrecognized: \`${line}'`);
  }
  return { listenPort, peers };
}
