// Readers: the kernel's state of one node, parsed from `ip -json`, `nft -j` and `wg show … dump`.
// One `ip -json -batch` process per namespace (links, addresses, our routes of both families,
// forwarding from netconf), `nft -j list ruleset` only in gateways, one `wg show all dump`.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitnodeError } from '../core/errors.js';
import { Ip4, Ip6, parsePrefix } from '../core/ip.js';
import {
  isWgLink,
  NFT_SET_PREFIX_LEN,
  NFT_TABLES,
  NFT_TEXT_SETS,
  parseKeyFileName,
  parseOwnedNamespace,
  parsePidFileName,
  parseRuleMarker,
  ROUTE_PROTO,
} from '../core/ownership.js';
import type { DesiredState, NftElement } from '../compile/desired.js';
import type { ActualLink, ActualNftTable, ActualNs, ActualRoute, ActualState, ActualWg } from '../reconcile/actual.js';
import { KernelErrors } from './errors.js';
import { inNs, NETNS_DIR, pool, run, runDump, splitJson } from './exec.js';
import { observeVrrp } from './vrrp.js';

export const OBSERVE_CONCURRENCY = 6;

export interface ObserveOptions {
  namespacePrefix: string;
  stateDir: string;
  kernelWireguard: boolean;
}

const FORWARDING_KEYS: Record<string, string> = {
  inet: 'net.ipv4.conf.all.forwarding',
  inet6: 'net.ipv6.conf.all.forwarding',
};

/** The namespaces of this host whose names the node's prefix and patterns make ours. */
export function ownedNamespaces(prefix: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
  return names.filter((n) => parseOwnedNamespace(prefix, n) !== undefined).sort();
}

export function namespaceExists(name: string): boolean {
  return name === '' || existsSync(join(NETNS_DIR, name));
}

// iproute2 and nft print addresses with inet_ntop, which is RFC 5952 text already, the form the
// compiler writes; parsing 8000 of them through bigint took 150 ms of a resync. Text that is not
// plainly canonical (upper case, leading zeros, a dotted tail) still goes through the parser.
const PLAIN6 = /^(?:[1-9a-f][0-9a-f]{0,3}|0)?(?::(?:[1-9a-f][0-9a-f]{0,3}|0)?)*$/;
const PLAIN4 = /^(?:0|[1-9]\d{0,2})(?:\.(?:0|[1-9]\d{0,2})){3}$/;

function canonAddr(text: string): string {
  if (text.includes(':'))
    return PLAIN6.test(text) && !/:0:0(?::|$)|^0:0:/.test(text) ? text : Ip6.parse(text).toString();
  return PLAIN4.test(text) ? text : Ip4.parse(text).toString();
}

function canonPrefix(text: string, family: 6 | 4): string {
  if (text === 'default') return family === 6 ? '::/0' : '0.0.0.0/0';
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const len = slash < 0 ? (family === 6 ? 128 : 32) : Number(text.slice(slash + 1));
  const c = canonAddr(addr);
  // A prefix must have no host bits: only a parse can tell, but only a non-canonical text can hide them.
  return c === addr ? `${c}/${len}` : parsePrefix(`${addr}/${len}`).toString();
}

interface IpLinkJson {
  ifname: string;
  flags?: string[];
  master?: string;
  linkinfo?: { info_kind?: string };
  inet6_addr_gen_mode?: string;
}
interface IpAddrJson {
  ifname: string;
  addr_info?: { local?: string; prefixlen?: number }[];
}
interface IpRouteJson {
  dst: string;
  dev?: string;
  gateway?: string;
  flags?: string[];
  prefsrc?: string;
  table?: string;
}
interface NetconfJson {
  family: string;
  interface: string;
  forwarding?: boolean;
}

/** Parses the output of `ip -json -d -batch -` with LINES_OF_OBSERVE. */
export function parseIpBatch(name: string, text: string): ActualNs {
  return parseIpLists(name, splitJson(text) as unknown[][]);
}

function parseIpLists(name: string, parts: unknown[][]): ActualNs {
  if (parts.length !== 5)
    throw new ExitnodeError(
      KernelErrors.KERNEL_OUTPUT,
      `ip -json -batch in ${name || 'the host namespace'} returned ${parts.length} lists, expected 5`,
    );
  const [links, addrs, r6, r4, netconf] = parts as [
    IpLinkJson[],
    IpAddrJson[],
    IpRouteJson[],
    IpRouteJson[],
    NetconfJson[],
  ];
  const ns: ActualNs = { name, links: [], addrs: [], routes: [], sysctls: {}, nft: [] };
  for (const l of links) {
    const link: ActualLink = {
      name: l.ifname,
      kind: l.linkinfo?.info_kind ?? '',
      up: (l.flags ?? []).includes('UP'),
      addrgenNone: l.inet6_addr_gen_mode === 'none',
    };
    if (l.master) link.master = l.master;
    ns.links.push(link);
  }
  for (const a of addrs) {
    for (const i of a.addr_info ?? []) {
      if (i.local !== undefined && i.prefixlen !== undefined)
        ns.addrs.push({ dev: a.ifname, addr: `${canonAddr(i.local)}/${i.prefixlen}` });
    }
  }
  for (const [list, fam] of [
    [r6, 6],
    [r4, 4],
  ] as const) {
    for (const r of list) {
      if ((r.table !== undefined && r.table !== 'main') || r.dev === undefined) continue;
      const route: ActualRoute = {
        dst: canonPrefix(r.dst, fam),
        dev: r.dev,
        onlink: (r.flags ?? []).includes('onlink'),
      };
      if (r.gateway) route.via = canonAddr(r.gateway);
      if (r.prefsrc) route.src = canonAddr(r.prefsrc);
      ns.routes.push(route);
    }
  }
  for (const c of netconf) {
    const key = FORWARDING_KEYS[c.family];
    if (c.interface === 'all' && key) ns.sysctls[key] = c.forwarding ? '1' : '0';
  }
  return ns;
}

export const LINES_OF_OBSERVE = [
  'link show',
  'addr show',
  `route show table all proto ${ROUTE_PROTO} root ::/0`,
  `route show table all proto ${ROUTE_PROTO} root 0.0.0.0/0`,
  'netconf show',
];

async function observeIp(name: string): Promise<ActualNs> {
  const r = await runDump(inNs(name, ['ip', '-json', '-d', '-batch', '-']), LINES_OF_OBSERVE.join('\n') + '\n');
  if (r.code !== 0)
    throw new ExitnodeError(
      KernelErrors.KERNEL_COMMAND_FAILED,
      `cannot read namespace ${name || '(host)'}: ${r.stderr.trim().split('\n')[0]}`,
    );
  return parseIpBatch(name, r.stdout);
}

/** Namespaces one xargs reads in a row. */
export const GROUP_SIZE = 24;

/**
 * LINES_OF_OBSERVE in the state directory (run/observe.batch): the processes xargs starts get
 * /dev/null as standard input, so ip reads its batch from a file. Undefined when it cannot be
 * written (the groups are then read one namespace at a time).
 */
function observeBatchFile(stateDir: string): string | undefined {
  const file = join(runDir(stateDir), 'observe.batch');
  const text = LINES_OF_OBSERVE.join('\n') + '\n';
  try {
    if (readFileSync(file, 'utf8') === text) return file;
  } catch {
    /* not there yet */
  }
  try {
    mkdirSync(runDir(stateDir), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, file);
    return file;
  } catch {
    return undefined;
  }
}

/**
 * Reads NAMES with one process: xargs runs `nsenter … ip -json -d -batch FILE` for each in turn
 * (the names go as NUL-separated data on its standard input, never through a shell). Undefined
 * when anything is off (a failure, an interrupted dump, not 5 lists per namespace): the caller
 * then reads them one by one, so that each failure names its own namespace.
 */
async function observeGroup(names: string[], stateDir: string): Promise<ActualNs[] | undefined> {
  const batch = observeBatchFile(stateDir);
  if (batch === undefined) return undefined;
  const r = await run(
    ['xargs', '-0', '-I{}', 'nsenter', `--net=${NETNS_DIR}/{}`, 'ip', '-json', '-d', '-batch', batch],
    names.join('\0'),
  );
  if (r.code !== 0 || r.stderr.trim() !== '') return undefined;
  let parts: unknown[];
  try {
    parts = splitJson(r.stdout);
  } catch {
    return undefined;
  }
  const n = LINES_OF_OBSERVE.length;
  if (parts.length !== n * names.length) return undefined;
  return names.map((name, i) => parseIpLists(name, parts.slice(i * n, (i + 1) * n) as unknown[][]));
}

interface NftJson {
  nftables: {
    table?: { family: string; name: string };
    set?: { family: string; table: string; name: string; elem?: unknown[] };
    map?: { family: string; table: string; name: string; elem?: unknown[] };
    rule?: { family: string; table: string; comment?: string };
  }[];
}

/** An element of set SET: the address gets the set's prefix length (NFT_SET_PREFIX_LEN). */
function elemOf(e: unknown, set: string): NftElement | undefined {
  const c =
    (e as { concat?: unknown[]; elem?: { val?: unknown } })?.concat ??
    (e as { elem?: { val?: { concat?: unknown[] } } })?.elem?.val?.concat;
  if (!Array.isArray(c) || c.length !== 2 || typeof c[0] !== 'string') return undefined;
  const v = c[1] as string | { prefix?: { addr: string; len: number } };
  const addr = typeof v === 'string' ? v : v?.prefix?.addr;
  if (addr === undefined) return undefined;
  const len = typeof v === 'string' ? (NFT_SET_PREFIX_LEN[set] ?? (addr.includes(':') ? 128 : 32)) : v.prefix!.len;
  try {
    return { ifname: c[0], prefix: canonPrefix(`${addr}/${len}`, addr.includes(':') ? 6 : 4) };
  } catch {
    // Host bits under the mask (added by hand): kept as written, so that the plan deletes it.
    return { ifname: c[0], prefix: `${addr}/${len}` };
  }
}

/** An address nft printed, canonical (RFC 5952 for IPv6). */
function canonNftAddr(v: string): string {
  if (v.includes(':')) return Ip6.tryParse(v)?.toString() ?? v;
  return Ip4.tryParse(v)?.toString() ?? v;
}

/**
 * One element of a text set or map (NFT_TEXT_SETS) in the text core/forward.ts writes: values
 * joined by " . ", a map's key and value by " : ", prefixes ADDRESS/LEN (a /128 as the address),
 * ranges FROM-TO (a one-value range as the value).
 */
export function nftElementText(e: unknown): string {
  if (typeof e === 'number') return String(e);
  if (typeof e === 'string') return canonNftAddr(e);
  if (Array.isArray(e)) return e.map(nftElementText).join(' : ');
  const o = (e ?? {}) as {
    elem?: { val?: unknown };
    concat?: unknown[];
    prefix?: { addr: string; len: number };
    range?: [unknown, unknown];
  };
  if (o.elem !== undefined) return nftElementText(o.elem.val);
  if (o.concat) return o.concat.map(nftElementText).join(' . ');
  if (o.prefix)
    return o.prefix.len === 128 ? canonNftAddr(o.prefix.addr) : `${canonNftAddr(o.prefix.addr)}/${o.prefix.len}`;
  if (o.range) {
    const [a, b] = o.range.map(nftElementText);
    return a === b ? a! : `${a}-${b}`;
  }
  return JSON.stringify(e);
}

/** Parses `nft -j list ruleset`, keeping our tables only. */
export function parseNft(json: string): ActualNftTable[] {
  const d = JSON.parse(json) as NftJson;
  const tables = new Map<string, ActualNftTable>();
  const ours = (f: string, n: string): boolean => NFT_TABLES.some((t) => t.family === f && t.name === n);
  for (const x of d.nftables) {
    if (x.table && ours(x.table.family, x.table.name))
      tables.set(`${x.table.family} ${x.table.name}`, {
        family: x.table.family,
        name: x.table.name,
        ruleHashes: [],
        sets: {},
      });
  }
  for (const x of d.nftables) {
    const text = x.map ?? x.set;
    if (text && NFT_TEXT_SETS.includes(text.name)) {
      const t = tables.get(`${text.family} ${text.table}`);
      if (t) (t.texts ??= {})[text.name] = (text.elem ?? []).map(nftElementText);
    } else if (x.set) {
      const t = tables.get(`${x.set.family} ${x.set.table}`);
      if (t)
        t.sets[x.set.name] = (x.set.elem ?? [])
          .map((e) => elemOf(e, x.set!.name))
          .filter((e): e is NftElement => e !== undefined);
    } else if (x.rule) {
      const t = tables.get(`${x.rule.family} ${x.rule.table}`);
      if (t) t.ruleHashes.push(parseRuleMarker(x.rule.comment) ?? '');
    }
  }
  return [...tables.values()];
}

/** Parses `wg show all dump`. */
export function parseWgDump(text: string): Map<string, ActualWg> {
  const out = new Map<string, ActualWg>();
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f.length === 5) {
      out.set(f[0]!, { name: f[0]!, privateKey: f[1]!, listenPort: Number(f[3]), peers: [] });
    } else if (f.length === 9) {
      const w = out.get(f[0]!);
      if (!w) continue;
      const peer: ActualWg['peers'][number] = {
        publicKey: f[1]!,
        allowedIps: f[4] === '(none)' ? [] : f[4]!.split(',').map((p) => canonPrefix(p, p.includes(':') ? 6 : 4)),
      };
      if (f[3] !== '(none)') peer.endpoint = f[3]!;
      if (f[8] !== 'off') peer.keepalive = Number(f[8]);
      w.peers.push(peer);
    }
  }
  return out;
}

function readDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** A live wireguard-go process for NAME, checked by its command line (a PID can be reused). */
export function isWgProcess(pid: number, name: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.endsWith('wireguard-go')) && argv.includes(name);
  } catch {
    return false;
  }
}

export function keysDir(stateDir: string): string {
  return join(stateDir, 'keys');
}
export function runDir(stateDir: string): string {
  return join(stateDir, 'run');
}

/** Observes every namespace the desired state names or the node's prefix makes ours. */
export async function observe(desired: DesiredState, opts: ObserveOptions): Promise<ActualState> {
  const owned = new Set(ownedNamespaces(opts.namespacePrefix));
  const names = new Set<string>(owned);
  for (const n of desired.namespaces) if (namespaceExists(n.name)) names.add(n.name);
  const list = [...names].sort();
  const byName = new Map(desired.namespaces.map((n) => [n.name, n]));
  const unreadable = new Map<string, string>();
  const single = async (name: string): Promise<ActualNs | undefined> => {
    try {
      return await observeNs(name);
    } catch (e) {
      // One namespace that cannot be read must not stop the pass for the others.
      unreadable.set(name, (e as Error).message);
      return undefined;
    }
  };
  // Namespaces that need only the ip batch are read GROUP_SIZE at a time by one xargs: each
  // process node starts blocks it ~2-5 ms (more when both cores are busy), and a node holds
  // one namespace per NR. Gateways (nft, sysctls) and the host's namespace are read one by one,
  // first, beside the groups.
  const plain = (name: string): boolean => name !== '' && !isGateway(name) && extraSysctls(name).length === 0;
  const jobs: string[][] = [...list.filter((n) => !plain(n)).map((n) => [n])];
  const rest = list.filter(plain);
  for (let i = 0; i < rest.length; i += GROUP_SIZE) jobs.push(rest.slice(i, i + GROUP_SIZE));
  const read = (
    await pool(jobs, OBSERVE_CONCURRENCY, async (names) => {
      if (names.length === 1) return [await single(names[0]!)];
      const all = await observeGroup(names, opts.stateDir);
      // Anything odd (a namespace gone, an interrupted dump): read them one by one, with their own errors.
      return all ?? Promise.all(names.map(single));
    })
  ).flat();
  const spaces = read.filter((s): s is ActualNs => s !== undefined);
  function isGateway(name: string): boolean {
    return owned.has(name) && parseOwnedNamespace(opts.namespacePrefix, name)?.kind === 'gateway';
  }
  function extraSysctls(name: string): string[] {
    return Object.keys(byName.get(name)?.sysctls ?? {}).filter((k) => !Object.values(FORWARDING_KEYS).includes(k));
  }
  async function observeNs(name: string): Promise<ActualNs> {
    const isGw = isGateway(name);
    const extra = extraSysctls(name);
    // A gateway's three reads run side by side: its nft listing alone is ~90 ms at 8000 elements.
    const [ns, nft, sys] = await Promise.all([
      observeIp(name),
      isGw ? run(inNs(name, ['nft', '-j', 'list', 'ruleset'])) : undefined,
      extra.length ? run(inNs(name, ['sysctl', '-e', ...extra])) : undefined,
    ]);
    if (nft) {
      if (nft.code !== 0)
        throw new ExitnodeError(
          KernelErrors.KERNEL_COMMAND_FAILED,
          `cannot list nftables in ${name}: ${nft.stderr.trim()}`,
        );
      ns.nft = parseNft(nft.stdout || '{"nftables":[]}');
    }
    for (const line of sys?.stdout.split('\n') ?? []) {
      const m = /^(\S+) = (.*)$/.exec(line);
      if (m) ns.sysctls[m[1]!] = m[2]!;
    }
    return ns;
  }
  const namespaces = new Map(spaces.map((s) => [s.name, s]));

  // WireGuard: wireguard-go's sockets are host-wide, so one `wg show all dump` sees them all;
  // the kernel's interfaces are per namespace.
  const wgNames = new Set<string>(desired.wireguard.map((w) => w.name));
  for (const s of spaces) for (const l of s.links) if (isWgLink(l.name)) wgNames.add(l.name);
  const wireguard = new Map<string, ActualWg>();
  if (wgNames.size) {
    const dumps = opts.kernelWireguard
      ? await pool(
          spaces.filter((s) => s.links.some((l) => isWgLink(l.name))).map((s) => s.name),
          OBSERVE_CONCURRENCY,
          (n) => run(inNs(n, ['wg', 'show', 'all', 'dump'])),
        )
      : [await run(['wg', 'show', 'all', 'dump'])];
    for (const r of dumps) for (const [k, v] of parseWgDump(r.stdout)) if (wgNames.has(k)) wireguard.set(k, v);
  }

  return { namespaces, owned, wireguard, unreadable, ...observeFiles(opts) };
}

/** The state directory's part of the state: live wireguard-go processes, PID and key files, keepalived instances. */
export function observeFiles(
  opts: ObserveOptions,
): Pick<ActualState, 'wgProcesses' | 'keyFiles' | 'pidFiles' | 'vrrp'> {
  const wgProcesses = new Map<string, number>();
  const pidFiles = new Set<string>();
  for (const f of readDir(runDir(opts.stateDir))) {
    const name = parsePidFileName(f);
    if (!name) continue;
    pidFiles.add(name);
    const pid = Number(readFileSync(join(runDir(opts.stateDir), f), 'utf8').trim());
    if (pid > 1 && isWgProcess(pid, name)) wgProcesses.set(name, pid);
  }
  const keyFiles = new Set<string>();
  for (const f of readDir(keysDir(opts.stateDir))) {
    const name = parseKeyFileName(f);
    if (name) keyFiles.add(name);
  }
  return { wgProcesses, keyFiles, pidFiles, vrrp: observeVrrp(opts.stateDir) };
}
