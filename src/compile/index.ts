// compile: (NodeView, NodeConfig) → DesiredState, pure. Exactly the objects of DESIGN.md section 3
// for every gateway (slot) the view gives this node, every ExitPoint, every NR and every workload
// bridge; nothing else. The view is trusted to be validated (parseNodeView) and so is the config.

import { createHash } from 'node:crypto';
import { Ip4, Ip4Prefix } from '../core/ip.js';
import {
  allocation as mkAllocation,
  epPubLL,
  GW_TO_EP_IP4,
  gwPubIP6,
  gwPubLL,
  gwToEpLL,
  nrLocalIP4,
  nrLocalIP6,
  nrPrefix,
  nrPrefix4,
  nrRouting4,
  parseNrIdText,
  planNr,
  planSlot,
  slotOfNr,
  wgAllowedIPs,
  type Allocation,
} from '../core/plan.js';
import {
  gatewayNamespace,
  gatewayUplinkName,
  keyFileName,
  NFT_CHAIN_INBOUND6,
  NFT_FILTER,
  NFT_MAP_FWD4,
  NFT_NAT,
  NFT_SET_ALLOW6,
  NFT_SET_CLOSED6,
  NFT_SET_SRC4,
  NFT_SET_SRC4_HOST,
  NFT_SET_SRC6,
  nrNamespace,
  ruleMarker,
  TO_LINK_GLOB,
  uplinkPeerName,
  vbrName,
} from '../core/ownership.js';
import type { NodeView } from '../core/view.js';
import { allowElement, closedElement, disjointRules, forwardElement } from '../core/forward.js';
import { slotKey } from '../core/slot-ref.js';
import type { CompileConfig, CompileRuntime } from './config.js';
import { keepalivedSpec } from './keepalived.js';
import type {
  DesiredState,
  LinkSpec,
  NftElement,
  NftTableSpec,
  NsRole,
  NsSpec,
  RouteSpec,
  WgPeerSpec,
  VrrpSpec,
  WgSpec,
} from './desired.js';

export type { DesiredState } from './desired.js';
export type { CompileConfig, CompileRuntime, UplinkMode, WireGuardMode } from './config.js';

/** Keepalive towards peers when this node has no public address, so that they learn its endpoint. */
export const WG_KEEPALIVE = 25;

function newNs(name: string, roles: NsRole[]): NsSpec {
  return { name, roles, links: [], addrs: [], routes: [], sysctls: {}, nft: [] };
}

const FORWARDING = { 'net.ipv4.conf.all.forwarding': '1', 'net.ipv6.conf.all.forwarding': '1' };

/** A TN's share of its gateway: the route pair and the two source elements of each of its NRs. */
interface GatewayPart {
  key: string;
  ifname: string;
  routes: RouteSpec[];
  src6: NftElement[];
  src4: NftElement[];
  src4h: NftElement[];
}

/**
 * The gateway parts and route objects of the last compile, by a key of everything they are made
 * of. A pass that changes one NR recompiles one TN and hands the others' objects over as they
 * were: 4096 NRs cost 15 ms to plan (bigint prefix text), and `diff` skips runs of identical
 * objects. The agent owns one Compiler for its life; `compile` alone starts without history.
 */
interface CompileRun {
  parts: Map<string, GatewayPart>;
  nextParts: Map<string, GatewayPart>;
  routes: Map<string, RouteSpec>;
  nextRoutes: Map<string, RouteSpec>;
}

export class Compiler {
  private parts = new Map<string, GatewayPart>();
  private routes = new Map<string, RouteSpec>();

  compile(view: NodeView, config: CompileConfig, runtime: CompileRuntime = {}): DesiredState {
    const run: CompileRun = { parts: this.parts, routes: this.routes, nextParts: new Map(), nextRoutes: new Map() };
    const out = compileWith(run, view, config, runtime);
    this.parts = run.nextParts;
    this.routes = run.nextRoutes;
    return out;
  }
}

/** One compile without history (every object new). */
export function compile(view: NodeView, config: CompileConfig, runtime: CompileRuntime = {}): DesiredState {
  return new Compiler().compile(view, config, runtime);
}

/** The route object of the last compile that equals R, or R. */
function stable(run: CompileRun, r: RouteSpec): RouteSpec {
  const key = `${r.dst} ${r.via ?? ''} ${r.dev} ${r.onlink ?? false} ${r.src ?? ''}`;
  const have = run.routes.get(key) ?? r;
  run.nextRoutes.set(key, have);
  return have;
}

function gatewayPart(
  run: CompileRun,
  a: Allocation,
  exitId: number,
  to: string,
  resources: NodeView['networks'][number]['resources'],
): GatewayPart {
  let key = `${a.number} ${a.prefix.toString()} ${exitId} ${to}`;
  for (const r of resources) key += ` ${r.id}`;
  const have = run.parts.get(key);
  if (have) return have;
  const p: GatewayPart = {
    key,
    ifname: to,
    routes: [],
    src6: [{ ifname: to, prefix: 'fe80::/64' }],
    src4: [],
    src4h: [{ ifname: to, prefix: `${nrRouting4(exitId)}/32` }],
  };
  const via6 = epPubLL(exitId).toString();
  const via4 = nrRouting4(exitId).toString();
  for (const r of resources) {
    const id = parseNrIdText(r.id);
    const p6 = nrPrefix(a, id).toString();
    const p4 = nrPrefix4(id).toString();
    p.routes.push({ dst: p6, via: via6, dev: to }, { dst: p4, via: via4, dev: to, onlink: true });
    p.src6.push({ ifname: to, prefix: p6 });
    p.src4.push({ ifname: to, prefix: p4 });
  }
  p.src6 = uniqueElements(p.src6);
  p.src4 = uniqueElements(p.src4);
  p.src4h = uniqueElements(p.src4h);
  return p;
}

/** The parts' elements in order; duplicates can only come from two parts on one link. */
function joinElements(list: GatewayPart[], set: 'src6' | 'src4' | 'src4h'): NftElement[] {
  const links = new Set(list.map((p) => p.ifname));
  const out: NftElement[] = [];
  for (const p of list) for (const e of p[set]) out.push(e);
  return links.size === list.length ? out : uniqueElements(out);
}

function compileWith(run: CompileRun, view: NodeView, config: CompileConfig, runtime: CompileRuntime): DesiredState {
  const px = config.namespacePrefix;
  const spaces = new Map<string, NsSpec>();
  const ns = (name: string, role: NsRole): NsSpec => {
    let s = spaces.get(name);
    if (!s) spaces.set(name, (s = newNs(name, [role])));
    else if (!s.roles.includes(role)) s.roles.push(role);
    return s;
  };
  // The root and public namespaces always take part: they hold owned links to sweep.
  const root = ns(config.rootNamespace, 'root');
  const pub = ns(config.publicNamespace, 'public');
  const wireguard: WgSpec[] = [];
  const me = view.node.id;
  const allocs = new Map<number, { a: Allocation; v: NodeView['allocations'][number] }>();
  for (const v of view.allocations) allocs.set(v.number, { a: mkAllocation(v.prefix, v.number), v });
  const hasPublic = view.node.publicIPv4 !== undefined || view.node.publicIPv6 !== undefined;

  // Gateways: one per slot this node serves now.
  const gateways = new Map<
    string,
    { spec: NsSpec; parts: GatewayPart[]; slot: NodeView['slots'][number]; texts: Record<string, string[]> }
  >();
  const vrrp: VrrpSpec[] = [];
  for (const s of view.slots) {
    const { a, v } = allocs.get(s.allocation)!;
    const p = planSlot(a, s.slot);
    const g = ns(gatewayNamespace(px, s.slot, a.number), 'gateway');
    const up = p.GWPubName;
    const u = config.uplink;
    const link: LinkSpec = { name: up, kind: u.kind === 'veth' ? 'veth' : u.kind };
    // Stage 2 (DESIGN.md 8.2): the slot's addresses and its IPv4 default route are keepalived's;
    // the uplink keeps the kernel's own link-local address, from which the adverts go out.
    const vrrpMode = s.candidates !== undefined;
    if (vrrpMode) link.kernelLinkLocal = true;
    if (u.kind === 'veth') {
      link.create = { how: 'veth', peer: uplinkPeerName(s.slot, a.number), peerNs: u.peerNamespace };
      ns(u.peerNamespace, 'segment').links.push({
        name: uplinkPeerName(s.slot, a.number),
        kind: 'veth',
        master: u.bridge,
      });
    } else if (u.kind === 'macvlan') link.create = { how: 'macvlan', parent: u.parent, parentNs: config.rootNamespace };
    else link.create = { how: 'nic', device: u.device, fromNs: config.rootNamespace };
    g.links.push(link);
    Object.assign(g.sysctls, FORWARDING, {
      [`net.ipv6.conf.${up}.ndisc_notify`]: '1',
      [`net.ipv4.conf.${up}.arp_notify`]: '1',
    });
    // The uplink keeps DAD: a second guard against two gateways answering for one slot.
    const slotAddrs = [`${gwPubLL(s.slot)}/64`, `${gwPubIP6(a, s.slot)}/64`];
    if (s.ipv4 !== undefined) slotAddrs.push(`${s.ipv4}/${v.upstream.ipv4PrefixLength ?? 24}`);
    // Stable objects, like the TN parts: diff trims identical runs from both ends of the list.
    g.routes.push(stable(run, { dst: '::/0', via: v.upstream.ll, dev: up }));
    const route4 =
      s.ipv4 !== undefined && v.upstream.ipv4Gateway !== undefined
        ? stable(run, { dst: '0.0.0.0/0', via: v.upstream.ipv4Gateway, dev: up })
        : undefined;
    if (vrrpMode) {
      g.foreign = { addrs: slotAddrs, routes: route4 ? [route4.dst] : [] };
      vrrp.push(
        keepalivedSpec({
          allocation: a,
          slot: s.slot,
          ns: g.name,
          priority: vrrpPriority(s, me),
          upstreamLL: v.upstream.ll,
          stateDir: config.stateDir,
          ...(s.ipv4 !== undefined
            ? {
                ipv4: {
                  address: s.ipv4,
                  prefixLength: v.upstream.ipv4PrefixLength ?? 24,
                  ...(v.upstream.ipv4Gateway !== undefined ? { gateway: v.upstream.ipv4Gateway } : {}),
                },
              }
            : {}),
        }),
      );
    } else {
      for (const addr of slotAddrs) g.addrs.push({ dev: up, addr, nodad: false });
      if (route4) g.routes.push(route4);
    }
    gateways.set(`${s.allocation}/${s.slot}`, {
      spec: g,
      parts: [],
      slot: s,
      texts: { [NFT_MAP_FWD4]: [], [NFT_SET_CLOSED6]: [], [NFT_SET_ALLOW6]: [] },
    });
  }

  for (const tn of view.networks) {
    const { a } = allocs.get(tn.allocation)!;
    const A = a.number;
    const exitId = parseNrIdText(tn.exit);
    const slot = slotOfNr(exitId);
    const exitRes = tn.resources.find((r) => r.id === tn.exit)!;
    // Stage 2: every candidate of the exit's slot builds the ExitPoint, whoever the exit NR's node is.
    const slotGw = gateways.get(slotKey({ allocation: tn.allocation, slot }));
    const vrrpExit = slotGw?.slot.candidates !== undefined ? slotGw : undefined;
    // The gateway wires a TN only when its ExitPoint NR is here too (they share the veth).
    const gw = exitRes.node === me || vrrpExit ? slotGw : undefined;
    const ep = planNr(a, exitId);
    if (gw) {
      const g = gw.spec;
      g.links.push({
        name: ep.GWtoEPName,
        kind: 'veth',
        create: { how: 'veth', peer: ep.EPPubName, peerNs: nrNamespace(px, ep.id, A) },
      });
      g.addrs.push(
        { dev: ep.GWtoEPName, addr: ep.GWtoEPLL, nodad: true },
        { dev: ep.GWtoEPName, addr: ep.GWtoEPIP4, nodad: true },
      );
      const part = gatewayPart(run, a, exitId, ep.GWtoEPName, tn.resources);
      gw.parts.push(part);
      run.nextParts.set(part.key, part);
      // Forwards on GWPubIP4 (only where the slot has one) and the IPv6 inbound policy (issue 13).
      if (gw.slot.ipv4 !== undefined)
        for (const f of tn.forwards ?? []) gw.texts[NFT_MAP_FWD4]!.push(forwardElement(f));
      // Overlapping rules are one element too many for the interval set (TNoDB refuses them).
      const rules = tn.inbound?.policy === 'closed' ? disjointRules(tn.inbound.rules) : [];
      if (tn.inbound?.policy === 'closed')
        for (const r of tn.resources) {
          const p6 = nrPrefix(a, parseNrIdText(r.id)).toString();
          gw.texts[NFT_SET_CLOSED6]!.push(closedElement(p6));
          for (const rule of rules) gw.texts[NFT_SET_ALLOW6]!.push(allowElement(p6, rule));
        }
    }
    for (const r of tn.resources) {
      const id = parseNrIdText(r.id);
      const isExit = id === exitId;
      if (r.node !== me && !(isExit && vrrpExit)) continue;
      const n = planNr(a, id);
      // A VRRP slot's ExitPoint: its WireGuard socket lives in the gateway namespace (the endpoint
      // floats with the slot), its link is up only on the master, and it is left out while this
      // node lacks the shared key.
      const floating = isExit && vrrpExit !== undefined;
      const linkDown = floating && !runtime.masters?.has(slotKey({ allocation: A, slot }));
      const s = ns(nrNamespace(px, n.id, A), 'nr');
      Object.assign(s.sysctls, FORWARDING);
      // The workload side: veth-h-A here, vbr-h-A in br-h-A of the root namespace.
      root.links.push({ name: n.BridgeName, kind: 'bridge', create: { how: 'bridge' } });
      root.links.push({
        name: vbrName(n.id, A),
        kind: 'veth',
        create: { how: 'veth', peer: n.NRLocalName, peerNs: s.name },
        master: n.BridgeName,
      });
      s.links.push({ name: n.NRLocalName, kind: 'veth', kernelLinkLocal: true });
      s.addrs.push(
        { dev: n.NRLocalName, addr: n.NRLocalIP6, nodad: true },
        { dev: n.NRLocalName, addr: n.NRLocalIP4, nodad: true },
      );
      const wgOn = config.wireguard !== 'none' && !(floating && runtime.withoutKey?.has(n.WGName));
      if (wgOn) {
        const wgLink: LinkSpec = {
          name: n.WGName,
          kind: 'wireguard',
          create: { how: 'wireguard', fromNs: floating ? vrrpExit.spec.name : pub.name },
        };
        if (linkDown) wgLink.down = true;
        s.links.push(wgLink);
        s.addrs.push({ dev: n.WGName, addr: n.WGLL, nodad: true }, { dev: n.WGName, addr: n.WGIP4RT, nodad: true });
        const peers: WgPeerSpec[] = [];
        for (const o of tn.resources) {
          if (o.id === r.id || o.publicKey === undefined) continue;
          const oid = parseNrIdText(o.id);
          const allowed = wgAllowedIPs(a, oid);
          if (!isExit && oid === exitId) allowed.push('::/0', '0.0.0.0/0');
          const peer: WgPeerSpec = { publicKey: o.publicKey, allowedIps: allowed };
          // A peer behind NAT has no endpoint of its own: a standby ExitPoint starts from the one the
          // slot's master learnt (stage 2), so that its first handshake on promotion reaches the
          // peer; a master's roams with the peer's packets (a configured one would be reset).
          const endpoint = o.endpoint ?? (linkDown ? o.learnedEndpoint : undefined);
          if (endpoint !== undefined) peer.endpoint = endpoint;
          // A floating ExitPoint keeps every peer's NAT mapping and lets a promotion kick a handshake.
          if (!hasPublic || floating) peer.keepalive = WG_KEEPALIVE;
          peers.push(peer);
        }
        wireguard.push({ name: n.WGName, ns: s.name, listenPort: n.WGPort, keyFile: keyFileName(n.WGName), peers });
      }
      if (isExit) {
        if (gw) {
          s.links.push({ name: n.EPPubName, kind: 'veth' });
          s.addrs.push(
            { dev: n.EPPubName, addr: n.EPPubLL, nodad: true },
            { dev: n.EPPubName, addr: n.EPPubIP4R, nodad: true },
          );
          s.routes.push({ dst: '::/0', via: gwToEpLL(id).toString(), dev: n.EPPubName });
          s.routes.push({ dst: '0.0.0.0/0', via: GW_TO_EP_IP4, dev: n.EPPubName, onlink: true });
        }
        // A link that is down holds no route ("Nexthop device is not up"): the pass after a
        // promotion adds them.
        if (wgOn && !linkDown) {
          for (const o of tn.resources) {
            if (o.id === r.id) continue;
            const oid = parseNrIdText(o.id);
            s.routes.push(
              { dst: nrPrefix(a, oid).toString(), dev: n.WGName },
              { dst: nrPrefix4(oid).toString(), dev: n.WGName },
            );
          }
        }
      } else if (wgOn) {
        s.routes.push({ dst: '::/0', dev: n.WGName, src: nrLocalIP6(a, id).toString() });
        s.routes.push({ dst: '0.0.0.0/0', dev: n.WGName, src: nrLocalIP4(id).toString() });
      }
    }
  }

  for (const gw of gateways.values()) {
    const { spec, parts } = gw;
    for (const p of parts) for (const r of p.routes) spec.routes.push(r);
    spec.nft.push(
      ...gatewayNft(
        gw.slot,
        {
          [NFT_SET_SRC6]: joinElements(parts, 'src6'),
          [NFT_SET_SRC4]: joinElements(parts, 'src4'),
          [NFT_SET_SRC4_HOST]: joinElements(parts, 'src4h'),
        },
        gw.texts,
      ),
    );
  }
  const namespaces = [...spaces.values()].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  wireguard.sort((x, y) => (x.name < y.name ? -1 : 1));
  const out: DesiredState = { node: config.node, namespacePrefix: px, namespaces, wireguard };
  if (config.uplink.kind === 'nic') out.nicUplink = { device: config.uplink.device, homeNs: config.rootNamespace };
  if (vrrp.length) out.vrrp = vrrp;
  return out;
}

/** This node's VRRP priority for a slot: the view's, else 250 - 50 × its rank among the candidates. */
export function vrrpPriority(slot: NodeView['slots'][number], node: string): number {
  if (slot.priority !== undefined) return slot.priority;
  const rank = Math.max(0, slot.candidates?.indexOf(node) ?? 0);
  return Math.max(1, 250 - 50 * rank);
}

/** Without duplicates, in first-seen order (a sort of 8000 elements cost a resync 4 ms). */
function uniqueElements(list: NftElement[]): NftElement[] {
  const seen = new Map<string, NftElement>();
  for (const e of list) {
    const k = `${e.ifname} ${e.prefix}`;
    if (!seen.has(k)) seen.set(k, e);
  }
  return [...seen.values()];
}

/** Stands for the marker in the table text until the text's hash is known. */
const MARK = ruleMarker('@HASH@');
const TO = TO_LINK_GLOB;

function hashed(
  family: 'ip' | 'inet',
  name: string,
  body: string,
  sets: Record<string, NftElement[]>,
  texts: Record<string, string[]>,
): NftTableSpec {
  const hash = createHash('sha256').update(`${family} ${name}\n${body}`).digest('hex').slice(0, 16);
  return { family, name, body: body.replaceAll(MARK, ruleMarker(hash)), hash, sets, texts };
}

/** Without duplicates, sorted (so that two passes over one view give one list). */
function uniqueTexts(list: string[]): string[] {
  return [...new Set(list)].sort();
}

/**
 * The gateway's two tables (DESIGN.md section 3). Every rule carries the comment "exitnode:HASH"
 * of the table text, which is how `observe` tells that the rules are still the ones we wrote:
 * nft 1.0.6 does not return table comments in JSON, and its JSON rules are not the text we write.
 */
function gatewayNft(
  slot: { slot: number; allocation: number; ipv4?: string },
  sets: Record<string, NftElement[]>,
  texts: Record<string, string[]>,
): NftTableSpec[] {
  const up = gatewayUplinkName(slot.slot, slot.allocation);
  const out: NftTableSpec[] = [];
  if (slot.ipv4 !== undefined) {
    const snat = Ip4.parse(slot.ipv4).toString();
    const body = [
      `table ${NFT_NAT.family} ${NFT_NAT.name} {`,
      // Port forwards: GWPubIP4 . protocol . port → an NR's address . port, one element each.
      `  map ${NFT_MAP_FWD4} {`,
      '    type inet_proto . inet_service : ipv4_addr . inet_service',
      '  }',
      '  chain prerouting {',
      '    type nat hook prerouting priority dstnat; policy accept;',
      `    iifname "${up}" ip daddr ${snat} dnat to meta l4proto . th dport map @${NFT_MAP_FWD4} comment "${MARK}"`,
      '  }',
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      `    oifname "${up}" ip saddr ${Ip4Prefix.parse('10.0.0.0/8')} snat to ${snat} comment "${MARK}"`,
      '  }',
      '}',
    ].join('\n');
    out.push(
      hashed(NFT_NAT.family, NFT_NAT.name, body, {}, { [NFT_MAP_FWD4]: uniqueTexts(texts[NFT_MAP_FWD4] ?? []) }),
    );
  }
  const body = [
    `table ${NFT_FILTER.family} ${NFT_FILTER.name} {`,
    `  set ${NFT_SET_SRC6} {`,
    '    type ifname . ipv6_addr',
    '  }',
    `  set ${NFT_SET_SRC4} {`,
    '    type ifname . ipv4_addr',
    '  }',
    `  set ${NFT_SET_SRC4_HOST} {`,
    '    type ifname . ipv4_addr',
    '  }',
    // The IPv6 inbound policy: the /64s of closed networks, and their allow rules.
    `  set ${NFT_SET_CLOSED6} {`,
    '    type ipv6_addr',
    '  }',
    `  set ${NFT_SET_ALLOW6} {`,
    '    type ipv6_addr . inet_proto . inet_service . ipv6_addr',
    '    flags interval',
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    // Source validation: a to- link may only send its own TN's prefixes (and link-local / routing
    // addresses): the source masked to the sets' prefix length (NFT_SET_PREFIX_LEN) must be there.
    `    iifname "${TO}" meta nfproto ipv6 iifname . ip6 saddr & ffff:ffff:ffff:ffff:: != @${NFT_SET_SRC6} counter drop comment "${MARK}"`,
    `    iifname "${TO}" meta nfproto ipv4 iifname . ip saddr & 255.255.255.0 != @${NFT_SET_SRC4} iifname . ip saddr != @${NFT_SET_SRC4_HOST} counter drop comment "${MARK}"`,
    // Tenant isolation: IPv4 between two to- links is traffic between tenants.
    `    iifname "${TO}" oifname "${TO}" meta nfproto ipv4 counter drop comment "${MARK}"`,
    // From the internet into a closed network: judged by the inbound chain.
    `    iifname "${up}" meta nfproto ipv6 ip6 daddr & ffff:ffff:ffff:ffff:: @${NFT_SET_CLOSED6} jump ${NFT_CHAIN_INBOUND6} comment "${MARK}"`,
    '  }',
    `  chain ${NFT_CHAIN_INBOUND6} {`,
    // Stateful: replies to connections the network opened pass; so does the ICMPv6 IPv6 needs (RFC 4890).
    `    ct state established,related accept comment "${MARK}"`,
    `    icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, echo-request, echo-reply } accept comment "${MARK}"`,
    `    ip6 daddr . meta l4proto . th dport . ip6 saddr @${NFT_SET_ALLOW6} accept comment "${MARK}"`,
    `    counter drop comment "${MARK}"`,
    '  }',
    '}',
  ].join('\n');
  out.push(
    hashed(NFT_FILTER.family, NFT_FILTER.name, body, sets, {
      [NFT_SET_CLOSED6]: uniqueTexts(texts[NFT_SET_CLOSED6] ?? []),
      [NFT_SET_ALLOW6]: uniqueTexts(texts[NFT_SET_ALLOW6] ?? []),
    }),
  );
  return out;
}
