// diff(desired, actual) → ordered plan, pure. Touches only what the ownership rules make ours:
// namespaces of this node's prefix, links with owned names, routes with our protocol number, our
// nft tables, our key and PID files. Creations in dependency order (namespaces, links, moves,
// sysctls, addresses/up/routes, nft, WireGuard), removals after them in reverse. The same desired
// state against the kernel it produced gives an empty plan.

import {
  isOwnedNs,
  type DesiredState,
  type LinkSpec,
  type NftElement,
  type NftTableSpec,
  type NsSpec,
  type RouteSpec,
  type WgSpec,
} from '../compile/desired.js';
import {
  gatewayUplinkName,
  isOwnedLink,
  isRootLink,
  isWgLink,
  keyFileName,
  NFT_TABLES,
  parseOwnedNamespace,
  pidFileName,
  ROUTE_PROTO,
  ruleMarker,
} from '../core/ownership.js';
import type { ActualNftTable, ActualNs, ActualRoute, ActualState, ActualWg } from './actual.js';
import type { ObjectRef } from './objects.js';
import { Phase, type Plan, type PhaseNo, type Step } from './plan.js';

export interface DiffOptions {
  /** Use the kernel's wireguard link type instead of wireguard-go. */
  kernelWireguard: boolean;
  /** Private keys on disk: interface name → base64 key (to compare with what the interface holds). */
  privateKeys: Map<string, string>;
}

const EMPTY_NS = (name: string): ActualNs => ({ name, links: [], addrs: [], routes: [], sysctls: {}, nft: [] });

function kindMatches(want: LinkSpec['kind'], have: string): boolean {
  if (want === 'nic') return true;
  if (want === 'wireguard') return have === 'tun' || have === 'wireguard';
  return have === want;
}

/** `netns` argument of ip: a namespace name, or PID 1's namespace for the host's own. */
function nsRef(name: string): string {
  return name === '' ? '1' : name;
}

function routeKey(r: { dst: string }): string {
  return r.dst;
}

function sameRoute(d: RouteSpec, a: ActualRoute): boolean {
  return (
    d === a ||
    (d.dev === a.dev &&
      (d.via ?? '') === (a.via ?? '') &&
      (d.onlink ?? false) === (a.onlink ?? false) &&
      (d.src ?? '') === (a.src ?? ''))
  );
}

/**
 * WANT and HAVE without their longest common head and tail of identical objects. Against the
 * kernel nothing is identical and this returns the whole lists; against the previous pass
 * (assumeApplied shares compile's objects, and compile reuses them for unchanged TNs) only the
 * changed TN's stretch is left. Only identical objects are trimmed, so the comparison of the
 * rest is the one the whole lists would get, as long as neither list holds one key twice.
 */
export function changedMiddle<T, U>(want: readonly T[], have: readonly U[]): [readonly T[], readonly U[]] {
  let head = 0;
  const n = Math.min(want.length, have.length);
  while (head < n && (want[head] as unknown) === have[head]) head++;
  let tail = 0;
  while (tail < n - head && (want[want.length - 1 - tail] as unknown) === have[have.length - 1 - tail]) tail++;
  if (head === 0 && tail === 0) return [want, have];
  return [want.slice(head, want.length - tail), have.slice(head, have.length - tail)];
}

export function routeLine(verb: 'replace', r: RouteSpec): string {
  let l = `route ${verb} ${r.dst}`;
  if (r.via) l += ` via ${r.via}`;
  l += ` dev ${r.dev}`;
  if (r.onlink) l += ' onlink';
  if (r.src) l += ` src ${r.src}`;
  return `${l} proto ${ROUTE_PROTO}`;
}

function byLink(list: readonly NftElement[]): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const e of list) {
    let s = m.get(e.ifname);
    if (!s) m.set(e.ifname, (s = new Set()));
    s.add(e.prefix);
  }
  return m;
}

/** An element as nft takes it: the sets are exact, so the network address without its length. */
function elementText(e: NftElement): string {
  const slash = e.prefix.lastIndexOf('/');
  return `"${e.ifname}" . ${slash < 0 ? e.prefix : e.prefix.slice(0, slash)}`;
}

function ruleCount(t: NftTableSpec): number {
  return t.body.split(ruleMarker(t.hash)).length - 1;
}

export function wgConfText(w: WgSpec): string {
  const out = ['[Interface]', `ListenPort = ${w.listenPort}`];
  for (const p of w.peers) {
    out.push('', '[Peer]', `PublicKey = ${p.publicKey}`, `AllowedIPs = ${p.allowedIps.join(', ')}`);
    if (p.endpoint) out.push(`Endpoint = ${p.endpoint}`);
    // Always written: `wg syncconf` leaves a setting the file does not name as it was.
    out.push(`PersistentKeepalive = ${p.keepalive ?? 0}`);
  }
  return out.join('\n') + '\n';
}

function sameWg(d: WgSpec, a: ActualWg, key: string | undefined): boolean {
  if (key === undefined || a.privateKey !== key || a.listenPort !== d.listenPort || a.peers.length !== d.peers.length)
    return false;
  const byKey = new Map(a.peers.map((p) => [p.publicKey, p]));
  for (const p of d.peers) {
    const q = byKey.get(p.publicKey);
    if (!q) return false;
    if ([...p.allowedIps].sort().join(',') !== [...q.allowedIps].sort().join(',')) return false;
    // A peer without a configured endpoint roams: whatever it learned is right.
    if (p.endpoint && p.endpoint !== q.endpoint) return false;
    if ((p.keepalive ?? 0) !== (q.keepalive ?? 0)) return false;
  }
  return true;
}

class Builder {
  private readonly batches = new Map<string, Step>();
  readonly steps: Step[] = [];

  ip(phase: PhaseNo, ns: string, line: string, object: ObjectRef): void {
    this.batch('ip', phase, ns, line, object);
  }
  nft(ns: string, line: string, object: ObjectRef): void {
    this.batch('nft', Phase.NFT, ns, line, object);
  }
  sysctl(ns: string, line: string, object: ObjectRef): void {
    this.batch('sysctl', Phase.SYSCTL, ns, line, object);
  }
  private batch(tool: 'ip' | 'nft' | 'sysctl', phase: PhaseNo, ns: string, line: string, object: ObjectRef): void {
    const k = `${tool} ${phase} ${ns}`;
    let s = this.batches.get(k);
    if (!s) {
      const n: Step = { tool, phase, ns, lines: [], objects: [] };
      this.batches.set(k, n);
      this.steps.push(n);
      s = n;
    }
    (s as { lines: string[] }).lines.push(line);
    s.objects.push(object);
  }
  add(s: Step): void {
    this.steps.push(s);
  }
}

export function diff(full: DesiredState, actual: ActualState, opts: DiffOptions): Plan {
  const b = new Builder();
  // A namespace the readers could not read is left alone, and so is every link that would reach
  // into it: the next pass reads it again. Everything else goes ahead.
  const skip = actual.unreadable ?? new Map<string, string>();
  const reachesSkipped = (l: LinkSpec): boolean =>
    (l.create?.how === 'veth' && skip.has(l.create.peerNs)) ||
    (l.create?.how === 'wireguard' && skip.has(l.create.fromNs));
  const desired: DesiredState =
    skip.size === 0
      ? full
      : {
          ...full,
          namespaces: full.namespaces
            .filter((n) => !skip.has(n.name))
            .map((n) => {
              const out = new Set(n.links.filter(reachesSkipped).map((l) => l.name));
              if (out.size === 0) return n;
              return {
                ...n,
                links: n.links.filter((l) => !out.has(l.name)),
                addrs: n.addrs.filter((x) => !out.has(x.dev)),
                routes: n.routes.filter((r) => !out.has(r.dev)),
                // nft elements name interfaces by string: they may stay (and be added) ahead of the link.
              };
            }),
          wireguard: full.wireguard.filter((w) => !skip.has(w.ns)),
        };
  const wantOwned = new Set(desired.namespaces.filter(isOwnedNs).map((n) => n.name));
  const stale = [...actual.owned].filter((n) => !wantOwned.has(n) && !skip.has(n)).sort();
  const staleSet = new Set(stale);

  // 1. namespaces
  for (const ns of desired.namespaces) {
    if (isOwnedNs(ns) && !actual.owned.has(ns.name))
      b.ip(Phase.NETNS_ADD, '', `netns add ${ns.name}`, { kind: 'netns', name: ns.name });
  }
  const actualOf = (name: string): ActualNs => actual.namespaces.get(name) ?? EMPTY_NS(name);

  // 2. links: created, moved; `fresh` holds links this plan creates (nothing to compare yet).
  const fresh = new Set<string>();
  const desiredLinks = new Map<string, Set<string>>();
  const wgStarted = new Set<string>();
  for (const ns of desired.namespaces) {
    const a = actualOf(ns.name);
    const names = new Set<string>();
    desiredLinks.set(ns.name, names);
    for (const l of ns.links) {
      names.add(l.name);
      const have = a.links.find((x) => x.name === l.name);
      if (have && !kindMatches(l.kind, have.kind)) {
        b.ip(Phase.LINK_ADD, ns.name, `link del ${l.name}`, {
          kind: 'link',
          ns: ns.name,
          name: l.name,
          replaces: { have: have.kind, want: l.kind },
        });
      } else if (have) continue;
      const c = l.create;
      if (!c) {
        fresh.add(`${ns.name}/${l.name}`);
        continue;
      }
      fresh.add(`${ns.name}/${l.name}`);
      const obj: ObjectRef = { kind: 'link', ns: ns.name, name: l.name };
      switch (c.how) {
        case 'veth': {
          const peerRef = c.peerNs === ns.name ? '' : ` netns ${nsRef(c.peerNs)}`;
          b.ip(Phase.LINK_ADD, ns.name, `link add ${l.name} type veth peer name ${c.peer}${peerRef}`, obj);
          fresh.add(`${c.peerNs}/${c.peer}`);
          break;
        }
        case 'bridge':
          b.ip(Phase.LINK_ADD, ns.name, `link add ${l.name} type bridge`, obj);
          break;
        case 'macvlan':
          b.ip(
            Phase.LINK_ADD,
            c.parentNs,
            `link add link ${c.parent} name ${l.name} netns ${nsRef(ns.name)} type macvlan mode bridge`,
            obj,
          );
          break;
        case 'nic':
          b.ip(Phase.LINK_ADD, c.fromNs, `link set ${c.device} netns ${nsRef(ns.name)}`, {
            kind: 'nic',
            device: c.device,
            ns: ns.name,
            move: 'into',
          });
          b.ip(Phase.LINK_MOVE, ns.name, `link set ${c.device} name ${l.name}`, obj);
          break;
        case 'wireguard': {
          const inPublic = actualOf(c.fromNs).links.some((x) => x.name === l.name);
          if (!inPublic) {
            const old = actual.wgProcesses.get(l.name);
            if (old !== undefined)
              b.add({
                tool: 'kill',
                phase: Phase.WG_START,
                ns: c.fromNs,
                name: l.name,
                pid: old,
                objects: [{ kind: 'wg-process', name: l.name, pid: old, orphan: true }],
              });
            b.add({
              tool: 'wg-start',
              phase: Phase.WG_START,
              ns: c.fromNs,
              name: l.name,
              kernel: opts.kernelWireguard,
              objects: [{ kind: 'wg', ns: c.fromNs, name: l.name }],
            });
            wgStarted.add(l.name);
          }
          b.ip(Phase.LINK_MOVE, c.fromNs, `link set ${l.name} netns ${nsRef(ns.name)}`, {
            kind: 'link-move',
            ns: ns.name,
            name: l.name,
          });
          break;
        }
      }
    }
  }

  // 3. sysctls, then per namespace one batch: link attributes, addresses, routes (adds before deletes).
  for (const ns of desired.namespaces) {
    const a = actualOf(ns.name);
    for (const [k, v] of Object.entries(ns.sysctls).sort()) {
      if (a.sysctls[k] !== v) b.sysctl(ns.name, `${k}=${v}`, { kind: 'sysctl', ns: ns.name, key: k });
    }
    configure(b, ns, a, fresh, isOwnedNs(ns));
  }

  // 4. nft: one transaction per gateway namespace; stale owned tables in surviving namespaces go.
  for (const ns of desired.namespaces) {
    const a = actualOf(ns.name);
    for (const t of ns.nft)
      nftTable(
        b,
        ns.name,
        t,
        a.nft.find((x) => x.family === t.family && x.name === t.name),
      );
    if (isOwnedNs(ns)) {
      for (const t of a.nft) {
        if (
          NFT_TABLES.some((o) => o.family === t.family && o.name === t.name) &&
          !ns.nft.some((d) => d.family === t.family && d.name === t.name)
        ) {
          b.nft(ns.name, `delete table ${t.family} ${t.name}`, {
            kind: 'nft-table',
            ns: ns.name,
            family: t.family,
            table: t.name,
          });
        }
      }
    }
  }

  // 5. WireGuard: keys, then the whole configuration of every interface that differs.
  for (const w of desired.wireguard) {
    const key = opts.privateKeys.get(w.name);
    if (key === undefined)
      b.add({
        tool: 'keygen',
        phase: Phase.KEYGEN,
        ns: '',
        name: w.name,
        keyFile: w.keyFile,
        objects: [{ kind: 'private-key', name: w.name }],
      });
    const a = actual.wireguard.get(w.name);
    const movedOrNew = wgStarted.has(w.name) || fresh.has(`${w.ns}/${w.name}`);
    if (movedOrNew || !a || !sameWg(w, a, key)) {
      b.add({
        tool: 'wg',
        phase: Phase.WG_CONF,
        ns: w.ns,
        name: w.name,
        keyFile: w.keyFile,
        conf: wgConfText(w),
        objects: [{ kind: 'wg-conf', ns: w.ns, name: w.name }],
      });
    }
  }

  // 6. removals: stale owned links in surviving namespaces (not those that die with a namespace).
  // A veth whose other end is in a namespace being deleted would go with it, but the kernel
  // tears namespaces down asynchronously: the next pass could still see it. Delete it here.
  for (const [name, a] of [...actual.namespaces].sort()) {
    if (staleSet.has(name) || skip.has(name)) continue;
    // Links kept out of this pass (they reach into an unreadable namespace) are still wanted.
    const want = new Set(full.namespaces.find((n) => n.name === name)?.links.map((l) => l.name) ?? []);
    const roles = desired.namespaces.find((n) => n.name === name)?.roles ?? (actual.owned.has(name) ? ['nr'] : []);
    const owned = roles.includes('gateway') || roles.includes('nr');
    for (const l of a.links) {
      if (want.has(l.name) || !isOwnedLink(l.name)) continue;
      const sweep =
        owned ||
        (roles.includes('root') && isRootLink(l.name)) ||
        (roles.includes('public') && isWgLink(l.name) && !full.wireguard.some((w) => w.name === l.name));
      if (!sweep) continue;
      b.ip(Phase.LINK_DEL, name, `link del ${l.name}`, { kind: 'link', ns: name, name: l.name });
    }
  }
  for (const n of stale) {
    // A physical NIC would fall back into the host's namespace still named pub-E-A when its
    // gateway namespace goes: send it home under its own name first.
    const gw = parseOwnedNamespace(desired.namespacePrefix, n);
    const nic = desired.nicUplink;
    if (nic && gw?.kind === 'gateway') {
      const up = gatewayUplinkName(gw.slot, gw.allocation);
      if (actualOf(n).links.some((l) => l.name === up)) {
        for (const line of [
          `link set ${up} down`,
          `link set ${up} name ${nic.device}`,
          `link set ${nic.device} netns ${nsRef(nic.homeNs)}`,
        ])
          b.ip(Phase.LINK_DEL, n, line, { kind: 'nic', device: nic.device, ns: n, move: 'back' });
      }
    }
    b.ip(Phase.NETNS_DEL, '', `netns del ${n}`, { kind: 'netns', name: n });
  }

  // 7. processes and files that no desired interface needs.
  const keep = new Set(full.wireguard.map((w) => w.name));
  for (const [name, pid] of [...actual.wgProcesses].sort()) {
    if (!keep.has(name))
      b.add({
        tool: 'kill',
        phase: Phase.KILL,
        ns: '',
        name,
        pid,
        objects: [{ kind: 'wg-process', name, pid, orphan: false }],
      });
  }
  for (const name of [...actual.keyFiles].sort()) {
    if (!keep.has(name))
      b.add({
        tool: 'rm',
        phase: Phase.RM,
        ns: '',
        file: keyFileName(name),
        objects: [{ kind: 'key-file', wg: name }],
      });
  }
  for (const name of [...actual.pidFiles].sort()) {
    if (!keep.has(name))
      b.add({
        tool: 'rm',
        phase: Phase.RM,
        ns: '',
        file: pidFileName(name),
        objects: [{ kind: 'pid-file', wg: name }],
      });
  }
  // 8. keepalived (stage 2): started once its gateway is built, reloaded when its configuration
  // changed, stopped (before its namespace goes) when no longer wanted. Not read: left alone.
  if (actual.vrrp) {
    const want = new Set((full.vrrp ?? []).map((v) => v.ns));
    for (const v of full.vrrp ?? []) {
      if (skip.has(v.ns)) continue;
      const have = actual.vrrp.get(v.ns);
      if (have?.pid === undefined)
        b.add({
          tool: 'vrrp-start',
          phase: Phase.VRRP,
          ns: v.ns,
          vrrp: v,
          objects: [{ kind: 'keepalived', ns: v.ns, op: 'start' }],
        });
      else if (have.hash !== v.hash)
        b.add({
          tool: 'vrrp-reload',
          phase: Phase.VRRP,
          ns: v.ns,
          vrrp: v,
          pid: have.pid,
          objects: [{ kind: 'keepalived', ns: v.ns, op: 'reload', pid: have.pid }],
        });
    }
    for (const [ns, have] of [...actual.vrrp].sort()) {
      if (want.has(ns)) continue;
      b.add({
        tool: 'vrrp-stop',
        phase: Phase.VRRP_STOP,
        ns,
        ...(have.pid !== undefined ? { pid: have.pid } : {}),
        objects: [{ kind: 'keepalived', ns, op: 'stop', ...(have.pid !== undefined ? { pid: have.pid } : {}) }],
      });
    }
  }
  const steps = b.steps
    .map((s, i) => ({ s, i }))
    .sort((x, y) => x.s.phase - y.s.phase || x.i - y.i)
    .map((x) => x.s);
  return { steps };
}

function configure(b: Builder, ns: NsSpec, a: ActualNs, fresh: Set<string>, owned: boolean): void {
  const adds: [string, ObjectRef][] = [];
  const dels: [string, ObjectRef][] = [];
  if (owned) {
    const lo = a.links.find((l) => l.name === 'lo');
    if (!lo || !lo.up) adds.push(['link set lo up', { kind: 'loopback', ns: ns.name }]);
  }
  const linkNames = new Set(ns.links.map((l) => l.name));
  const keepLL = new Set(ns.links.filter((l) => l.kernelLinkLocal).map((l) => l.name));
  // Stage 2: what keepalived owns on a candidate's uplink is neither added nor deleted here.
  const foreignAddrs = new Set(ns.foreign?.addrs ?? []);
  const foreignRoutes = new Set(ns.foreign?.routes ?? []);
  // A link kept down (an ExitPoint's WireGuard on a backup) holds its addresses (IPv6 ones added
  // while it is down stay), but the kernel takes no route through a down device and drops them
  // all when it goes down: its routes come with the pass that finds it up.
  const down = new Set(ns.links.filter((l) => l.down).map((l) => l.name));
  for (const l of ns.links) {
    const isNew = fresh.has(`${ns.name}/${l.name}`);
    const have = isNew ? undefined : a.links.find((x) => x.name === l.name);
    const obj: ObjectRef = { kind: 'link', ns: ns.name, name: l.name };
    // No kernel-made link-local: ours are set explicitly, and a second one would be a second source.
    if (!l.kernelLinkLocal && (!have || !have.addrgenNone)) adds.push([`link set ${l.name} addrgenmode none`, obj]);
    if (l.master && have?.master !== l.master) adds.push([`link set ${l.name} master ${l.master}`, obj]);
    if (l.down) {
      // Before its addresses: going down drops the IPv6 ones, which this batch then puts back.
      if (have?.up) adds.push([`link set ${l.name} down`, obj]);
    } else if (!have || !have.up) adds.push([`link set ${l.name} up`, obj]);
  }
  const addrs = foreignAddrs.size ? ns.addrs.filter((x) => !foreignAddrs.has(x.addr)) : ns.addrs;
  const wantAddr = new Set(addrs.map((x) => `${x.dev} ${x.addr}`));
  const haveAddr = new Set(a.addrs.map((y) => `${y.dev} ${y.addr}`));
  const wentDown = new Set(
    ns.links.filter((l) => l.down && a.links.find((x) => x.name === l.name)?.up).map((l) => l.name),
  );
  for (const x of addrs) {
    const have =
      !fresh.has(`${ns.name}/${x.dev}`) &&
      !(wentDown.has(x.dev) && x.addr.includes(':')) &&
      haveAddr.has(`${x.dev} ${x.addr}`);
    if (!have)
      adds.push([
        `addr replace ${x.addr} dev ${x.dev}${x.nodad && x.addr.includes(':') ? ' nodad' : ''}`,
        { kind: 'addr', ns: ns.name, dev: x.dev, addr: x.addr },
      ]);
  }
  // Only the part between identical runs can differ (an incremental pass: one TN's routes of 8192).
  const routes =
    foreignRoutes.size || down.size
      ? ns.routes.filter((r) => !foreignRoutes.has(routeKey(r)) && !down.has(r.dev))
      : ns.routes;
  const [wantRoutes, haveRoutes] = changedMiddle(routes, a.routes);
  const wantRoute = new Map(wantRoutes.map((r) => [routeKey(r), r]));
  const haveRoute = new Map(haveRoutes.map((r) => [routeKey(r), r]));
  for (const r of wantRoutes) {
    const have = haveRoute.get(routeKey(r));
    if (!have || !sameRoute(r, have))
      adds.push([routeLine('replace', r), { kind: 'route', ns: ns.name, dst: r.dst, dev: r.dev }]);
  }
  if (owned) {
    for (const r of haveRoutes) {
      // Routes through a link that this plan deletes go with the link.
      if (!linkNames.has(r.dev) && isOwnedLink(r.dev)) continue;
      // keepalived's, or through a link kept down (the kernel drops them itself).
      if (foreignRoutes.has(routeKey(r)) || down.has(r.dev)) continue;
      if (!wantRoute.has(routeKey(r)))
        dels.push([
          `route del ${r.dst} dev ${r.dev} proto ${ROUTE_PROTO}`,
          { kind: 'route', ns: ns.name, dst: r.dst, dev: r.dev },
        ]);
    }
  }
  for (const x of a.addrs) {
    // Addresses on our links only; on links this plan deletes, the address goes with the link.
    if (!linkNames.has(x.dev) || (!isOwnedLink(x.dev) && !owned)) continue;
    if (keepLL.has(x.dev) && x.addr.startsWith('fe80:')) continue;
    if (foreignAddrs.has(x.addr)) continue;
    if (!wantAddr.has(`${x.dev} ${x.addr}`))
      dels.push([`addr del ${x.addr} dev ${x.dev}`, { kind: 'addr', ns: ns.name, dev: x.dev, addr: x.addr }]);
  }
  for (const [l, o] of [...adds, ...dels]) b.ip(Phase.CONFIGURE, ns.name, l, o);
}

function nftTable(b: Builder, ns: string, t: NftTableSpec, have: ActualNftTable | undefined): void {
  const obj: ObjectRef = { kind: 'nft-table', ns, family: t.family, table: t.name };
  const elements = (set: string, count: number, op: 'add' | 'delete'): ObjectRef => ({
    kind: 'nft-elements',
    ns,
    family: t.family,
    table: t.name,
    set,
    count,
    op,
  });
  const intact = have && have.ruleHashes.length === ruleCount(t) && have.ruleHashes.every((h) => h === t.hash);
  if (!intact) {
    // Rebuild the whole table in one transaction: declare (so that delete cannot fail), delete, write.
    b.nft(ns, `table ${t.family} ${t.name}`, obj);
    b.nft(ns, `delete table ${t.family} ${t.name}`, obj);
    for (const line of t.body.split('\n')) b.nft(ns, line, obj);
    for (const [set, elems] of Object.entries(t.sets)) {
      if (elems.length)
        b.nft(
          ns,
          `add element ${t.family} ${t.name} ${set} { ${elems.map(elementText).join(', ')} }`,
          elements(set, elems.length, 'add'),
        );
    }
    for (const [set, elems] of Object.entries(t.texts ?? {}))
      if (elems.length)
        b.nft(
          ns,
          `add element ${t.family} ${t.name} ${set} { ${elems.join(', ')} }`,
          elements(set, elems.length, 'add'),
        );
    return;
  }
  // Text sets (forwards, inbound policy): one element per forward or rule, compared as text.
  for (const [set, elems] of Object.entries(t.texts ?? {})) {
    const cur = new Set(have.texts?.[set] ?? []);
    const want = new Set(elems);
    const add = elems.filter((e) => !cur.has(e));
    const del = [...cur].filter((e) => !want.has(e)).sort();
    // Deletions first: a changed forward keeps its key, and an interval set refuses an overlap.
    if (del.length)
      b.nft(
        ns,
        `delete element ${t.family} ${t.name} ${set} { ${del.join(', ')} }`,
        elements(set, del.length, 'delete'),
      );
    if (add.length)
      b.nft(ns, `add element ${t.family} ${t.name} ${set} { ${add.join(', ')} }`, elements(set, add.length, 'add'));
  }
  for (const [set, all] of Object.entries(t.sets)) {
    const [elems, haveElems] = changedMiddle(all, have.sets[set] ?? []);
    // By link, then prefix: no text is made for the 8000 elements that match, only for the changes.
    const cur = byLink(haveElems);
    const want = byLink(elems);
    const add = elems.filter((e) => !cur.get(e.ifname)?.has(e.prefix)).map(elementText);
    const del: string[] = [];
    for (const [ifname, prefixes] of cur) {
      const w = want.get(ifname);
      for (const prefix of prefixes) if (!w?.has(prefix)) del.push(elementText({ ifname, prefix }));
    }
    del.sort();
    if (add.length)
      b.nft(ns, `add element ${t.family} ${t.name} ${set} { ${add.join(', ')} }`, elements(set, add.length, 'add'));
    if (del.length)
      b.nft(
        ns,
        `delete element ${t.family} ${t.name} ${set} { ${del.join(', ')} }`,
        elements(set, del.length, 'delete'),
      );
  }
}
