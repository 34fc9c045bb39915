// `exitnode sim up|down|status` and the start/stop of the farm's processes (DESIGN.md section 9).
//
// sim up: the topology (src/sim/topology.ts: internet host, upstream router configured by the
// project's own Linux renderer, PrefixZero and underlay bridges, one namespace per node) → a TNoDB
// server process on PGlite in STATE/server, listening on 127.0.0.1 only → farm, allocation, nodes
// and slots through the API → one `exitnode agent run` process per node → tenants, networks and
// one NR per tenant per node through the API → wait until every agent has applied its current
// view and every key is published → one workload namespace per NR → sim check.

import { mkdirSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ExitnodeError, q } from '../core/errors.js';
import { allocation as planAllocation, nrLocalIP4, nrLocalIP6, nrPrefix, nrPrefix4, nrIdText } from '../core/plan.js';
import { bridgeName, isWgLink, parsePidFileName, WG_SOCKET_DIR, wgSocketName } from '../core/ownership.js';
import { run } from '../kernel/exec.js';
import { TnodbClient } from '../client/index.js';
import type { NodeView } from '../core/view.js';
import { sampleHolders, vrrpCuts } from './failover.js';
import { topologyOf } from './topology.js';
import { SimErrors } from './errors.js';
import { adminClient, agentHealth, relayMarker, startAgent, startRelay, startServer, wgCommand } from './daemons.js';
import {
  DEFAULT_NS_PREFIX,
  DEFAULT_STATE_DIR,
  loadState,
  readToken,
  saveState,
  stateFile,
  type SimFailover,
  type SimState,
  type SimWorkload,
} from './state.js';
import {
  alive,
  argvOf,
  endProcesses,
  freePort,
  isOurs,
  namespacesWith,
  pidsFromFilesUnder,
  processesIn,
  stopPid,
  waitFor,
  wireguardFromPidFiles,
} from './procs.js';

export interface UpOptions {
  stateDir?: string;
  nsPrefix?: string;
  nodes?: number;
  exitNodes?: number;
  tenants?: number;
  prefix?: string;
  allocation?: number;
  /** Slots given a node at start (default: one per exit-capable node; fewer leaves standbys). */
  slots?: number;
  /** Agents' full resync period in seconds (default 60). */
  resyncS?: number;
  /** Adds one more node (not exit-capable) without a public address, behind a NAT box of its own. */
  natNode?: boolean;
  /** The allocation's failover mode (absent: the server's default). */
  failover?: SimFailover;
  /** Candidates per slot (vrrp; the server's default otherwise). */
  candidates?: number;
  progress?: (line: string) => void;
}

const POOL = Array.from({ length: 15 }, (_, i) => `198.51.100.${11 + i}`);

function range(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi)
    throw new ExitnodeError(SimErrors.SIM_OPTION, `--${name} ${q(v)} must be an integer from ${lo} to ${hi}`);
  return v;
}

/**
 * Waits until every agent has applied the view version the server holds for its node now, and
 * every NR has its public key in TNoDB (so every peer is configured). Returns the ms it took.
 */
export async function waitConverged(s: SimState, ms = 60_000, progress?: (l: string) => void): Promise<number> {
  const t0 = Date.now();
  const admin = adminClient(s);
  let last = '';
  await waitFor(
    'every agent to apply its current view',
    ms,
    async () => {
      const lag: string[] = [];
      const nets = await admin.listNetworks().catch(() => undefined);
      if (!nets) return undefined;
      const noKey = nets.flatMap((n) => n.resources.filter((r) => !r.publicKey).map((r) => r.id));
      for (const n of s.nodes) {
        const [v, h] = await Promise.all([admin.view(n.id).catch(() => undefined), agentHealth(n.stateDir)]);
        if (!v || !h || h.appliedVersion !== v.version || h.status !== 'ok')
          lag.push(`${n.id} ${h ? `applied ${String(h.appliedVersion)}` : 'not answering'}/${v?.version ?? '?'}`);
      }
      const text = [...lag, ...(noKey.length ? [`keys missing: ${noKey.join(',')}`] : [])].join('; ');
      if (progress && text && text !== last) progress(`  waiting: ${text}`);
      last = text;
      return lag.length || noKey.length ? undefined : true;
    },
    50,
  ).catch((e: unknown) => {
    throw e instanceof ExitnodeError ? new ExitnodeError(e.code as never, `${e.message} (${last})`) : e;
  });
  return Date.now() - t0;
}

export function workloadOf(s: SimState, network: string, nr: string, node: string, tenantName: string): SimWorkload {
  const a = planAllocation(s.prefix, s.allocation);
  const id = parseInt(nr, 16);
  const name = `${tenantName}${node}`;
  const p6 = nrPrefix(a, id).network.toString();
  const addr6 = `${p6.replace(/::$/, '')}::100`;
  const addr4 = nrPrefix4(id).network.toString().replace(/\.0$/, '.100');
  void nrLocalIP6(a, id);
  void nrLocalIP4(id);
  return {
    name,
    ns: `${s.nsPrefix}${name}`,
    tenant: tenantName,
    network,
    nr,
    node,
    bridge: bridgeName(nr, s.allocation),
    addr6,
    addr4,
  };
}

/** Attaches (or re-attaches, after the agent recreated the bridge) every workload of the state. */
export async function attachWorkloads(s: SimState, list = s.workloads): Promise<void> {
  const t = topologyOf(s);
  for (const w of list) {
    const node = t.nodes.find((n) => n.id === w.node)!;
    await t.workload(w.name, node, w.bridge, w.addr6, w.addr4);
  }
}

export async function up(o: UpOptions): Promise<SimState> {
  const say = o.progress ?? (() => undefined);
  const stateDir = o.stateDir ?? DEFAULT_STATE_DIR;
  const nsPrefix = o.nsPrefix ?? DEFAULT_NS_PREFIX;
  if (process.getuid?.() !== 0)
    throw new ExitnodeError(
      SimErrors.SIM_NOT_ROOT,
      'exitnode sim up needs root: it creates network namespaces (run it with sudo)',
    );
  if (!/^[a-z][a-z0-9]{0,5}-$/.test(nsPrefix))
    throw new ExitnodeError(
      SimErrors.SIM_OPTION,
      `--ns-prefix ${q(nsPrefix)} must be 1-6 lowercase letters or digits and a "-" (e.g. "sim-")`,
    );
  const publicNodes = range('nodes', o.nodes ?? 3, 1, 9);
  const nodes = publicNodes + (o.natNode ? 1 : 0);
  const exitNodes = range('exit-nodes', o.exitNodes ?? 2, 1, Math.min(publicNodes, 15));
  if (o.failover !== undefined && o.failover !== 'lease' && o.failover !== 'vrrp')
    throw new ExitnodeError(SimErrors.SIM_OPTION, `--failover ${q(o.failover)} must be "lease" or "vrrp"`);
  const candidates = o.candidates === undefined ? undefined : range('candidates', o.candidates, 1, exitNodes);
  const tenants = range('tenants', o.tenants ?? 2, 1, 9);
  const number = range('allocation', o.allocation ?? 1, 1, 65535);
  const prefix = o.prefix ?? '2001:db8:5e::/48';
  planAllocation(prefix, number);
  const missing: string[] = [];
  for (const tool of ['ip', 'nft', 'wg', 'nsenter', 'ping', 'python3', 'sysctl', 'wireguard-go']) {
    const found = (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
      .split(':')
      .some((d) => existsSync(join(d, tool)));
    // wireguard-go is only needed where the kernel has no wireguard module.
    if (!found && !(tool === 'wireguard-go' && existsSync('/sys/module/wireguard'))) missing.push(tool);
  }
  if (missing.length)
    throw new ExitnodeError(
      SimErrors.SIM_TOOL_MISSING,
      `exitnode sim up needs ${missing.map((m) => q(m)).join(', ')} on the PATH (Debian: apt-get install iproute2 nftables wireguard-tools wireguard-go util-linux iputils-ping python3 procps)`,
    );
  if (existsSync(stateFile(stateDir)))
    throw new ExitnodeError(
      SimErrors.SIM_RUNNING,
      `a simulated farm already runs from ${q(stateDir)}: exitnode sim down${stateDir === DEFAULT_STATE_DIR ? '' : ` --state ${stateDir}`} first`,
    );
  const left = namespacesWith(nsPrefix);
  if (left.length)
    throw new ExitnodeError(
      SimErrors.SIM_RUNNING,
      `namespaces with the prefix ${q(nsPrefix)} exist already (${left.slice(0, 4).join(', ')}${left.length > 4 ? ', …' : ''}): exitnode sim down --ns-prefix ${nsPrefix} removes them`,
    );
  mkdirSync(join(stateDir, 'nodes'), { recursive: true, mode: 0o700 });
  const port = await freePort();
  const s: SimState = {
    stateDir,
    nsPrefix,
    ...(o.failover ? { failover: o.failover } : {}),
    ...(candidates !== undefined ? { candidates } : {}),
    prefix,
    allocation: number,
    slots: Array.from({ length: range('slots', o.slots ?? exitNodes, 1, exitNodes) }, (_, i) => ({
      slot: i + 1,
      node: `n${i + 1}`,
      ipv4: POOL[i]!,
    })),
    server: {
      url: `http://127.0.0.1:${port}`,
      listen: `127.0.0.1:${port}`,
      dataDir: join(stateDir, 'server'),
      logFile: join(stateDir, 'server.log'),
      adminTokenFile: join(stateDir, 'server', 'admin.token'),
      farmTokenFile: join(stateDir, 'farm.token'),
    },
    farm: 'sim',
    nodes: [],
    tenants: [],
    workloads: [],
    createdAt: new Date().toISOString(),
  };
  const t = topologyOf({
    ...s,
    nodes: Array.from({ length: nodes }, (_, i) => (i >= publicNodes ? { nat: 'yes' } : {})),
  });
  for (const n of t.nodes) {
    s.nodes.push({
      id: n.id,
      ns: n.ns,
      publicIPv4: n.publicIPv4,
      ...(n.nat ? { nat: n.nat.ns, natPublicIPv4: n.nat.publicIPv4 } : {}),
      ...(n.segNs ? { segNs: n.segNs } : {}),
      wgDir: join(stateDir, 'wg', n.id),
      exitCapable: !n.nat && Number(n.id.slice(1)) <= exitNodes,
      configFile: join(stateDir, 'nodes', `${n.id}.json`),
      tokenFile: join(stateDir, 'nodes', `${n.id}.token`),
      stateDir: n.config.stateDir,
      logFile: join(stateDir, 'nodes', `${n.id}.log`),
    });
  }
  saveState(s);
  let step = Date.now();
  const done = (what: string): void => {
    say(`${what} (${((Date.now() - step) / 1000).toFixed(1)} s)`);
    step = Date.now();
  };
  say(
    `building the topology: internet host, upstream router, PrefixZero and underlay, ${nodes} nodes (namespaces ${nsPrefix}*) …`,
  );
  await t.up();
  done('topology up; upstream router configured by `exitnode upstream --router linux`');
  say(`starting the TNoDB server on ${s.server.url} (PGlite in ${s.server.dataDir}) …`);
  await startServer(s);
  done('server up');
  const admin = adminClient(s);
  const farm = await admin.createFarm(s.farm);
  writeFileSync(s.server.farmTokenFile, farm.token + '\n', { mode: 0o600 });
  const f = admin.as(farm.token);
  await addAllocation(s, f);
  for (const [i, n] of s.nodes.entries()) {
    const r = await f.addNode({
      farm: s.farm,
      id: n.id,
      ...(n.nat ? {} : { publicIPv4: n.publicIPv4 }),
      exitCapable: n.exitCapable,
    });
    writeFileSync(n.tokenFile, r.token + '\n', { mode: 0o600 });
    writeFileSync(n.configFile, JSON.stringify(t.nodes[i]!.config, null, 2) + '\n', { mode: 0o600 });
  }
  for (const sl of s.slots) await f.assignSlot(number, sl.slot, sl.node);
  done(
    `farm ${q(s.farm)}, allocation ${number} (${prefix}, failover ${s.failover ?? 'server default'}), ${nodes} nodes${o.natNode ? ` (${s.nodes.at(-1)!.id} behind a NAT)` : ''}, slots ${s.slots.map((x) => `${x.slot}→${x.node}`).join(', ')}`,
  );
  say(`starting ${nodes} agents, each through its own relay to the server (sim partition cuts it) …`);
  for (const n of s.nodes) await startRelay(s, n.id);
  for (const n of s.nodes) startAgent(s, n.id);
  await waitFor('every node to heartbeat', 30_000, async () => {
    const st = await f.farmStatus(s.farm).catch(() => undefined);
    return st && st.nodes.every((n) => n.healthy) ? true : undefined;
  });
  done('agents up and heartbeating');
  say(`creating ${tenants} tenants, each with one network and one NR per node …`);
  for (let ti = 1; ti <= tenants; ti++) {
    const name = `t${ti}`;
    const tn = await admin.createTenant(`tenant-${ti}`);
    const tokenFile = join(stateDir, `tenant-${ti}.token`);
    writeFileSync(tokenFile, tn.token + '\n', { mode: 0o600 });
    const tc = admin.as(tn.token);
    const net = await tc.createNetwork(`net-${ti}`, number);
    s.tenants.push({ name, id: tn.id, tokenFile, network: net.id, slot: net.slot, exit: net.exit });
    for (const n of s.nodes) {
      let nr = net.resources.find((r) => r.node === n.id);
      if (!nr) nr = await tc.addResource(net.id, n.id, `sim-${ti}-${n.id}`);
      s.workloads.push(workloadOf(s, net.id, nr.id, n.id, name));
    }
    saveState(s);
  }
  done(`${tenants} networks: ${s.tenants.map((x) => `${x.name} on slot ${x.slot} (ExitPoint ${x.exit})`).join(', ')}`);
  say('waiting until every agent has applied its current view and published its keys …');
  await waitConverged(s, 90_000, say);
  done('every agent has applied its current view');
  await attachWorkloads(s);
  saveState(s);
  done(`${s.workloads.length} workloads attached (${s.workloads.map((w) => w.name).join(', ')})`);
  if (s.nodes.some((n) => n.nat)) {
    await waitNatHandshakes(s);
    done('the node behind the NAT has a WireGuard session with every peer');
  }
  return s;
}

/**
 * Adds the farm's allocation; FAILOVER and CANDIDATES go to the API only when asked (a server
 * without stage 2 rejects fields it does not know). A server that stores no `failover` on the
 * allocation it returns does not do stage 2: SIM_UNSUPPORTED, with the reason.
 */
async function addAllocation(s: SimState, f: TnodbClient): Promise<void> {
  const body = {
    farm: s.farm,
    prefix: s.prefix,
    number: s.allocation,
    ipv4: { addresses: POOL, prefixLength: 24, gateway: '198.51.100.1' },
    ...(s.failover ? { failover: s.failover } : {}),
    ...(s.candidates !== undefined ? { candidates: s.candidates } : {}),
  };
  const rec = (await f.addAllocation(body as Parameters<TnodbClient['addAllocation']>[0]).catch((e: unknown) => {
    if (s.failover && e instanceof ExitnodeError && /failover|candidates|additional/i.test(e.message))
      throw new ExitnodeError(
        SimErrors.SIM_UNSUPPORTED,
        `--failover ${s.failover}: this server's allocation API has no failover mode yet (${e.message})`,
      );
    throw e;
  })) as unknown as Record<string, unknown>;
  if (s.failover && rec.failover !== s.failover)
    throw new ExitnodeError(
      SimErrors.SIM_UNSUPPORTED,
      `--failover ${s.failover}: the server created allocation ${s.allocation} without it (failover: ${q(rec.failover)})`,
    );
}

/**
 * Waits until every WireGuard peer of the NAT'ed nodes has had a handshake. Nobody can reach such a
 * node before it speaks: its first handshake (on configuration, keepalive 25 s) may have gone to a
 * peer that did not know its key yet, and WireGuard tries again 5 s later; `sim check` right after
 * `sim up` would meet that gap.
 */
export async function waitNatHandshakes(s: SimState, ms = 30_000): Promise<void> {
  let last = '';
  await waitFor(
    'the NAT node to have WireGuard sessions',
    ms,
    async () => {
      const missing: string[] = [];
      for (const n of s.nodes.filter((x) => x.nat)) {
        const r = await run(wgCommand(n, ['wg', 'show', 'all', 'latest-handshakes']));
        for (const l of r.stdout.split('\n')) {
          const [dev, peer, at] = l.trim().split(/\s+/);
          if (dev && at === '0') missing.push(`${dev} ${peer!.slice(0, 8)}…`);
        }
      }
      last = missing.join(', ');
      return missing.length ? undefined : true;
    },
    200,
  ).catch((e: unknown) => {
    throw e instanceof ExitnodeError ? new ExitnodeError(e.code as never, `${e.message} (no handshake: ${last})`) : e;
  });
}

export interface DownReport {
  processes: number;
  namespaces: number;
  files: boolean;
  /** Processes that were still running when down stopped waiting for them (normally none). */
  lingering: { pid: number; what: string }[];
}

/**
 * Stops every process the sim started, removes its namespaces, sockets and state. Idempotent.
 * Returns once every process it ended is gone (by PID: SIGKILL, then polled until /proc says so).
 */
export async function down(o: { stateDir?: string; nsPrefix?: string } = {}): Promise<DownReport> {
  const stateDir = o.stateDir ?? DEFAULT_STATE_DIR;
  let s: SimState | undefined;
  try {
    s = loadState(stateDir);
  } catch {
    /* nothing recorded: clean up by prefix */
  }
  const nsPrefix = s?.nsPrefix ?? o.nsPrefix ?? DEFAULT_NS_PREFIX;
  let processes = 0;
  if (s) {
    // Agents first (so none re-creates what is being removed), then the server.
    const stops = await Promise.all(s.nodes.map((n) => stopPid(n.pid, n.configFile)));
    processes += stops.filter(Boolean).length;
    const relays = await Promise.all(s.nodes.map((n) => stopPid(n.relayPid, relayMarker(s!, n), 'SIGKILL')));
    processes += relays.filter(Boolean).length;
    if (await stopPid(s.server.pid, s.stateDir)) processes++;
  }
  const names = namespacesWith(nsPrefix);
  // wireguard-go, pings, listeners: whatever still runs inside the sim's namespaces, and every
  // wireguard-go an agent recorded (by PID file) even if its namespace is gone already.
  const wgNames = new Set<string>();
  const victims = new Map<number, string>();
  for (const p of processesIn(names)) {
    if (p.comm.startsWith('wireguard-go')) for (const a of argvOf(p.pid)) if (isWgLink(a)) wgNames.add(a);
    victims.set(p.pid, `${p.comm} in ${p.ns}`);
  }
  for (const n of s?.nodes ?? []) {
    for (const w of wireguardFromPidFiles(n.stateDir)) victims.set(w.pid, `wireguard-go ${w.name} of ${n.id}`);
    // keepalived (stage 2) records its PIDs under STATE/vrrp/NS/: the scan above finds it by its
    // namespace; a pid file finds one whose namespace is gone already.
    for (const k of pidsFromFilesUnder(join(n.stateDir, 'vrrp'), 'keepalived'))
      victims.set(k.pid, `keepalived of ${n.id} (${k.file})`);
  }
  const ended = await endProcesses([...victims.keys()], { signal: 'SIGKILL', graceMs: 10_000 });
  processes += ended.ended.length;
  names.sort((a, b) => b.length - a.length);
  if (names.length) await run(['ip', '-force', '-batch', '-'], names.map((n) => `netns del ${n}`).join('\n') + '\n');
  for (const n of s?.nodes ?? []) {
    try {
      for (const f of readdirSync(join(n.stateDir, 'run'))) {
        const name = parsePidFileName(f);
        if (name) wgNames.add(name);
      }
    } catch {
      /* never ran */
    }
  }
  // Nodes of a farm from before the per-node socket directories used the host's.
  if (!s || s.nodes.some((n) => !n.wgDir))
    for (const w of wgNames) rmSync(join(WG_SOCKET_DIR, wgSocketName(w)), { force: true });
  const files = existsSync(stateDir);
  rmSync(stateDir, { recursive: true, force: true });
  return {
    processes,
    namespaces: names.length,
    files,
    lingering: ended.alive.map((pid) => ({ pid, what: victims.get(pid)! })),
  };
}

export interface StatusReport {
  state: SimState;
  server: { pid?: number; running: boolean; healthy: boolean };
  nodes: { id: string; pid?: number; running: boolean; health?: Record<string, unknown>; serverView?: number }[];
  /** Slot → holder as the server says now (slots move on failover). */
  holders?: Record<number, string | null>;
  /** Slot → its candidates in order (stage 2), as the server says (the allocation, else the views). */
  candidates?: Record<number, string[]>;
  /** Slot → the nodes whose gateway holds the slot's addresses now (observed on the segment). */
  answering: Record<number, string[]>;
}

/** Candidates of the allocation's slots: from its record when the server lists them there, else from the views. */
function candidatesOf(
  slots: Record<string, unknown>[] | undefined,
  views: (NodeView | undefined)[],
): Record<number, string[]> | undefined {
  const out: Record<number, string[]> = {};
  for (const x of slots ?? []) {
    const c = x.candidates;
    if (Array.isArray(c))
      out[Number(x.slot)] = c.map((e: unknown) =>
        typeof e === 'string' ? e : String((e as { node?: unknown }).node ?? JSON.stringify(e)),
      );
  }
  if (!Object.keys(out).length)
    for (const v of views)
      for (const sl of v?.slots ?? []) if (sl.candidates && !out[sl.slot]) out[sl.slot] = [...sl.candidates];
  return Object.keys(out).length ? out : undefined;
}

export async function status(stateDir = DEFAULT_STATE_DIR): Promise<StatusReport> {
  const s = loadState(stateDir);
  const running = !!s.server.pid && isOurs(s.server.pid, s.stateDir) && alive(s.server.pid);
  const healthy =
    running &&
    (await new TnodbClient({ server: s.server.url, timeoutMs: 1500 }).health().then(
      () => true,
      () => false,
    ));
  const admin = healthy ? adminClient(s) : undefined;
  const views: (NodeView | undefined)[] = [];
  const nodes = await Promise.all(
    s.nodes.map(async (n, i) => {
      const r = !!n.pid && isOurs(n.pid, n.configFile) && alive(n.pid);
      const health = r ? await agentHealth(n.stateDir) : undefined;
      const view = admin ? await admin.view(n.id).catch(() => undefined) : undefined;
      views[i] = view;
      const v = view?.version;
      return {
        id: n.id,
        ...(n.pid ? { pid: n.pid } : {}),
        running: r,
        ...(health ? { health } : {}),
        ...(v !== undefined ? { serverView: v } : {}),
      };
    }),
  );
  const slots = admin
    ? await admin.getAllocation(s.allocation).then(
        (a) => a.slots,
        () => undefined,
      )
    : undefined;
  const holders = slots ? Object.fromEntries(slots.filter((x) => x.node).map((x) => [x.slot, x.node])) : undefined;
  const candidates = candidatesOf(slots as unknown as Record<string, unknown>[] | undefined, views);
  const answering: Record<number, string[]> = {};
  for (const h of await sampleHolders(s)) (answering[h.slot] ??= []).push(h.node);
  return {
    state: s,
    server: { ...(s.server.pid ? { pid: s.server.pid } : {}), running, healthy },
    nodes,
    ...(holders ? { holders } : {}),
    ...(candidates ? { candidates } : {}),
    answering,
  };
}

export function statusText(r: StatusReport): string {
  const s = r.state;
  const out = [
    `simulated farm in ${s.stateDir} (namespaces ${s.nsPrefix}*), allocation ${s.allocation} ${s.prefix}, up since ${s.createdAt}`,
    `server  ${s.server.url}  ${r.server.running ? `running (pid ${r.server.pid})` : 'STOPPED'}${r.server.running && !r.server.healthy ? ' but not answering' : ''}`,
    `failover ${s.failover ?? 'server default'}${s.candidates !== undefined ? `, ${s.candidates} candidates per slot` : ''}${
      vrrpCuts(s).length
        ? `; VRRP cut between ${vrrpCuts(s)
            .map((p) => p.join(' and '))
            .join(', ')}`
        : ''
    }`,
    'SLOT  IPV4            HOLDER  CANDIDATES      ANSWERING NOW',
    ...s.slots.map((x) =>
      [
        String(x.slot).padEnd(5),
        x.ipv4.padEnd(15),
        String(r.holders?.[x.slot] ?? '?').padEnd(7),
        (r.candidates?.[x.slot]?.join(',') ?? '-').padEnd(15),
        r.answering[x.slot]?.join(',') || 'nobody',
      ].join(' '),
    ),
    'NODE  EXIT  SLOTS  AGENT                 APPLIED/SERVER  SERVER-REACHABLE  LAST PASS',
  ];
  for (const n of r.nodes) {
    const st = s.nodes.find((x) => x.id === n.id)!;
    const h = n.health;
    const lp = h?.lastPass as { ms?: number; size?: number; failures?: string[] } | null | undefined;
    out.push(
      [
        n.id.padEnd(5),
        (st.exitCapable ? 'yes' : st.nat ? 'NAT' : 'no').padEnd(5),
        (
          (r.holders
            ? Object.entries(r.holders)
                .filter(([, v]) => v === n.id)
                .map(([k]) => k)
            : s.slots.filter((x) => x.node === n.id).map((x) => x.slot)
          ).join(',') || '-'
        ).padEnd(6),
        (n.running ? `running pid ${n.pid}` : st.failed ? 'FAILED (sim fail)' : 'STOPPED').padEnd(21),
        `${h ? String(h.appliedVersion) : '?'}/${n.serverView ?? '?'}`.padEnd(15),
        (h ? (h.serverReachable ? 'yes' : 'NO') : '?').padEnd(17),
        lp
          ? `${lp.size} cmds, ${Math.round(lp.ms ?? 0)} ms${lp.failures?.length ? `, ${lp.failures.length} FAILED` : ''}`
          : '-',
      ].join(' '),
    );
  }
  out.push('TENANT  NETWORK                                SLOT  EXITPOINT  WORKLOADS (host: IPv6, IPv4)');
  for (const tn of s.tenants) {
    out.push(
      `${tn.name.padEnd(7)} ${tn.network.padEnd(38)} ${String(tn.slot).padEnd(5)} ${tn.exit.padEnd(10)} ${s.workloads
        .filter((w) => w.tenant === tn.name)
        .map((w) => `${w.name}: ${w.addr6}, ${w.addr4}`)
        .join('; ')}`,
    );
  }
  return out.join('\n');
}

export function nrIdOf(n: number): string {
  return nrIdText(n);
}

/**
 * Replaces the NR of TENANT on NODE through the API (remove, then add: a network has one NR per
 * node, and the new NR gets a fresh id while the old one is in quarantine), then rebuilds the
 * workload on the new NR. Returns the old and the new workload.
 */
export async function renewNr(
  s: SimState,
  tenant: string,
  node: string,
  o: { wait?: boolean } = {},
): Promise<{ old: SimWorkload; now: SimWorkload }> {
  const tn = s.tenants.find((x) => x.name === tenant);
  const i = s.workloads.findIndex((w) => w.tenant === tenant && w.node === node);
  if (!tn || i < 0)
    throw new ExitnodeError(SimErrors.SIM_UNKNOWN_HOST, `no NR of tenant ${q(tenant)} on node ${q(node)}`);
  const old = s.workloads[i]!;
  if (old.nr === tn.exit)
    throw new ExitnodeError(
      SimErrors.SIM_OPTION,
      `NR ${q(old.nr)} is the ExitPoint of ${q(tenant)}: delete the network to remove it`,
    );
  const tc = adminClient(s).as(readToken(tn.tokenFile));
  await tc.removeResource(tn.network, old.nr);
  const nr = (await tc.addResource(tn.network, node, `renew-${old.nr}-${Date.now()}`)).id;
  const now = workloadOf(s, tn.network, nr, node, tenant);
  s.workloads[i] = now;
  saveState(s);
  await run(['ip', 'netns', 'del', old.ns]);
  if (o.wait !== false) {
    await waitConverged(s, 30_000);
    await attachWorkloads(s, [now]);
  }
  return { old, now };
}

/**
 * The namespace of a host of the farm as `sim exec` names it: inet (or internet), up (or upstream),
 * seg, a node (n1…), a workload (t1n2…), or any namespace with the farm's prefix.
 */
export function hostNamespace(s: SimState, host: string): string {
  const fixed: Record<string, string> = {
    inet: `${s.nsPrefix}inet`,
    internet: `${s.nsPrefix}inet`,
    up: `${s.nsPrefix}up`,
    upstream: `${s.nsPrefix}up`,
    seg: `${s.nsPrefix}seg`,
  };
  for (const n of s.nodes) fixed[n.id] = n.ns;
  for (const w of s.workloads) fixed[w.name] = w.ns;
  const ns = fixed[host] ?? (namespacesWith(s.nsPrefix).includes(host) ? host : undefined);
  if (!ns)
    throw new ExitnodeError(
      SimErrors.SIM_UNKNOWN_HOST,
      `no host ${q(host)} in the simulated farm; hosts: ${Object.keys(fixed).join(', ')} or any namespace ${s.nsPrefix}*`,
    );
  return ns;
}
