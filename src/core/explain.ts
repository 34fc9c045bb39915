// explain(): for an address or prefix, which slot and NR it belongs to, which namespaces and
// interfaces carry it, and the hop-by-hop path from the upstream router to it — as far as the plan
// alone determines it. Which TN an NR belongs to (and so which ExitPoint the gateway routes it
// through) is in TNoDB, not in the plan: pass `exit` to complete the path, otherwise the hop says
// what is missing.

import { CoreErrors, ExitnodeError, q } from './errors.js';
import { Ip4, Ip4Prefix, Ip6, Ip6Prefix, parseAddress, parsePrefix } from './ip.js';
import { gatewayNamespace, nrNamespace, TO_LINK_GLOB, toLinkName, wgLinkName } from './ownership.js';
import {
  type Allocation,
  DEFAULT_UPSTREAM_LL,
  FIRST_NR_ID,
  FIRST_RESERVED_ID,
  GW_TO_EP_IP4,
  MAX_SLOT,
  checkNrId,
  gwPubIP6,
  gwPubLL,
  nrIdText,
  planNr,
  planSlot,
  slotOfNr,
} from './plan.js';

export type ExplainKind =
  | 'nr' //            an address or prefix inside one NR's /64
  | 'slot' //          a prefix inside one slot's /52 covering several NRs
  | 'slots' //         a prefix covering several slots, or the whole /48
  | 'reserved' //      inside slot 15's reserved ids ff00-ffff
  | 'prefixzero' //    PrefixZero (ids 0000-0fff): the upstream segment
  | 'link-local' //    one of the plan's link-local addresses
  | 'forward'; //      GWPubIP4:port of an IPv4 port forward (TNoDB knows it: core/forward.ts)

export interface Carrier {
  /** Namespace as the plan names it (an agent may add its node prefix, e.g. "n1-"). */
  namespace: string;
  interface: string;
  /** How the interface carries it: "address", "on-link", "route", "allowed-ips". */
  how: string;
  detail: string;
}

export interface Hop {
  at: string;
  route: string;
  note: string;
}

export interface Explanation {
  input: string;
  kind: ExplainKind;
  allocation: { prefix: string; number: number };
  slot?: number;
  nr?: string;
  /** One line: what this address is. */
  role: string;
  carriers: Carrier[];
  path: Hop[];
  /** What the plan alone cannot say (e.g. which TN, so which ExitPoint). */
  unknown: string[];
}

export interface ExplainOptions {
  /** The id of the ExitPoint NR of the TN that the NR belongs to, if known. */
  exit?: number;
  /** The upstream router's interface on PrefixZero, for the route text. */
  iface?: string;
  /** The upstream router's link-local address, default fe80::1. */
  upstreamLL?: string;
}

export function explain(a: Allocation, text: string, opts: ExplainOptions = {}): Explanation {
  const base = { input: text, allocation: { prefix: a.prefix.toString(), number: a.number } };
  if (text.includes('/')) {
    const p = parsePrefix(text);
    if (p instanceof Ip4Prefix) return explain4(a, p.network, text, p.length, opts);
    return explainPrefix6(a, p, base, opts);
  }
  const addr = parseAddress(text);
  if (addr instanceof Ip4) return explain4(a, addr, text, 32, opts);
  if (addr.isLinkLocal()) return explainLinkLocal(a, addr, base);
  if (!a.prefix.contains(addr)) {
    throw new ExitnodeError(
      CoreErrors.ADDRESS_OUTSIDE_ALLOCATION,
      `${q(text)} is not inside the allocation ${a.prefix} (number ${a.number})`,
    );
  }
  return explainId(a, Number((addr.value >> 64n) & 0xffffn), addr, base, opts);
}

type Base = { input: string; allocation: { prefix: string; number: number } };

function explainPrefix6(a: Allocation, p: Ip6Prefix, base: Base, opts: ExplainOptions): Explanation {
  if (!a.prefix.contains(p)) {
    throw new ExitnodeError(
      CoreErrors.ADDRESS_OUTSIDE_ALLOCATION,
      `${q(base.input)} is not inside the allocation ${a.prefix} (number ${a.number})`,
    );
  }
  const id = Number((p.network.value >> 64n) & 0xffffn);
  if (p.length >= 64) return explainId(a, id, p.length === 64 ? undefined : p.network, base, opts);
  if (p.length >= 52) {
    const slot = id >> 12;
    const first = id;
    const last = id + (1 << (64 - p.length)) - 1;
    if (slot === 0) {
      return {
        ...base,
        kind: 'prefixzero',
        slot: 0,
        role: `part of PrefixZero (ids ${nrIdText(first)}-${nrIdText(last)}), the upstream segment: no slot, no NR`,
        carriers: [],
        path: [],
        unknown: [],
      };
    }
    const s = planSlot(a, slot);
    const firstNr = first;
    const lastNr = Math.min(last, FIRST_RESERVED_ID - 1);
    const reserved =
      last >= FIRST_RESERVED_ID
        ? `; ids ${nrIdText(Math.max(first, FIRST_RESERVED_ID))}-${nrIdText(last)} are reserved`
        : '';
    return {
      ...base,
      kind: 'slot',
      slot,
      role:
        firstNr <= lastNr
          ? `NR ids ${nrIdText(firstNr)}-${nrIdText(lastNr)} of slot ${slot} (${lastNr - firstNr + 1} possible NRs)${reserved}`
          : `reserved ids ${nrIdText(first)}-${nrIdText(last)} of slot ${slot}: never NRs`,
      carriers: [
        {
          namespace: s.Namespace,
          interface: 'to-*',
          how: 'route',
          detail: `one /64 route per NR of this range that exists, each via its TN's ExitPoint`,
        },
      ],
      path: [
        upstreamHop(a, slot, opts),
        {
          at: `gateway ${s.Namespace}`,
          route: `one route per NR /64`,
          note: 'each NR of the range is routed on its own',
        },
      ],
      unknown: ['which of these ids are allocated (TNoDB knows)'],
    };
  }
  const firstSlot = id >> 12;
  const lastSlot = (id + (1 << (64 - p.length)) - 1) >> 12;
  const slots = [];
  for (let s = Math.max(1, firstSlot); s <= Math.min(MAX_SLOT, lastSlot); s++) slots.push(s);
  return {
    ...base,
    kind: 'slots',
    role:
      p.length === 48
        ? `the whole allocation ${a.prefix}: PrefixZero and slots 1-15`
        : `slots ${slots.join(', ')}${firstSlot === 0 ? ' and PrefixZero' : ''}`,
    carriers: [],
    path: slots.map((s) => upstreamHop(a, s, opts)),
    unknown: ['which slots are enabled (the upstream router holds a route only for those)'],
  };
}

function upstreamHop(a: Allocation, slot: number, opts: ExplainOptions): Hop {
  const s = planSlot(a, slot);
  const dev = opts.iface ? ` dev ${opts.iface}` : '';
  return {
    at: 'upstream router',
    route: `${s.upstreamRoute}${dev}`,
    note: `slot ${slot}'s /52 goes to the gateway ${s.Namespace} on whichever node holds the slot (its uplink ${s.GWPubName} answers for ${gwPubLL(slot)})`,
  };
}

function explainId(a: Allocation, id: number, addr: Ip6 | undefined, base: Base, opts: ExplainOptions): Explanation {
  const slot = slotOfNr(id);
  if (id < FIRST_NR_ID) return explainPrefixZero(a, id, addr, base, opts);
  if (id >= FIRST_RESERVED_ID) {
    return {
      ...base,
      kind: 'reserved',
      slot,
      nr: nrIdText(id),
      role: `id ${nrIdText(id)} is reserved (ff00-ffff): never an NR. The upstream router sends it to slot 15's gateway, which has no route for it`,
      carriers: [],
      path: [upstreamHop(a, slot, opts)],
      unknown: [],
    };
  }
  const nr = planNr(a, id);
  const s = planSlot(a, slot);
  const A = a.number;
  const exit = opts.exit === undefined ? undefined : checkNrId(opts.exit, slot);
  const exitText = exit === undefined ? undefined : nrIdText(exit);
  const local = nr.NRLocalIP6.replace(/\/64$/, '');
  let role: string;
  if (addr === undefined) role = `the /64 of NR ${nr.id} (slot ${slot})`;
  else if (addr.toString() === local)
    role = `NRLocalIP6 of NR ${nr.id}: the address of ${nr.NRLocalName} in ${nr.Namespace}, the workloads' gateway`;
  else role = `an address in NR ${nr.id}'s /64 (slot ${slot}): a workload on ${nr.BridgeName}`;

  const carriers: Carrier[] = [
    {
      namespace: s.Namespace,
      interface: toLinkName(exitText ?? '<exit>', A),
      how: 'route',
      detail: `${nr.prefix} via fe80::${exitText ?? '<exit>'}:1`,
    },
  ];
  if (exitText !== nr.id) {
    carriers.push({
      namespace: nrNamespace('', exitText ?? '<exit>', A),
      interface: wgLinkName(exitText ?? '<exit>', A),
      how: 'allowed-ips',
      detail: `${nr.prefix} dev ${wgLinkName(exitText ?? '<exit>', A)}; WireGuard peer ${nr.id} allows ${nr.prefix}`,
    });
  }
  carriers.push({
    namespace: nr.Namespace,
    interface: nr.NRLocalName,
    how: addr?.toString() === local ? 'address' : 'on-link',
    detail: `${nr.NRLocalIP6} (NRLocalIP6)`,
  });
  carriers.push({
    namespace: '<node root>',
    interface: nr.BridgeName,
    how: 'on-link',
    detail: "workloads of the NR attach to this bridge in the node's root namespace",
  });

  const path: Hop[] = [upstreamHop(a, slot, opts)];
  const unknown: string[] = [];
  if (exitText === undefined) {
    path.push({
      at: `gateway ${s.Namespace}`,
      route: `${nr.prefix} via fe80::<exit>:1 dev ${toLinkName('<exit>', A)}`,
      note: `<exit> is the ExitPoint NR of the TN that ${nr.id} belongs to; if ${nr.id} is itself an ExitPoint, <exit> = ${nr.id}`,
    });
    path.push({
      at: `ExitPoint ${nrNamespace('', '<exit>', A)}`,
      route: `${nr.prefix} dev ${wgLinkName('<exit>', A)} (or, when ${nr.id} is the ExitPoint, on-link on ${nr.NRLocalName})`,
      note: `WireGuard sends it to the peer whose allowed IPs hold ${nr.prefix}: NR ${nr.id}, listening on UDP ${nr.WGPort} at its node's public address`,
    });
    unknown.push(
      `which TN NR ${nr.id} belongs to, hence its ExitPoint (TNoDB knows; pass the exit id to complete the path)`,
    );
  } else {
    path.push({
      at: `gateway ${s.Namespace}`,
      route: `${nr.prefix} via fe80::${exitText}:1 dev ${toLinkName(exitText, A)}`,
      note: `the TN's ExitPoint is NR ${exitText}`,
    });
    if (exitText === nr.id) {
      path.push({
        at: `ExitPoint ${nr.Namespace}`,
        route: `${nr.prefix} dev ${nr.NRLocalName} (connected)`,
        note: `NR ${nr.id} is the ExitPoint itself: delivered to ${nr.BridgeName}`,
      });
    } else {
      path.push({
        at: `ExitPoint ${nrNamespace('', exitText, A)}`,
        route: `${nr.prefix} dev ${wgLinkName(exitText, A)}`,
        note: `WireGuard peer ${nr.id}: allowed IPs ${nr.prefix}, endpoint <node of ${nr.id}>:${nr.WGPort}`,
      });
      path.push({
        at: `NR ${nr.Namespace}`,
        route: `${nr.prefix} dev ${nr.NRLocalName} (connected)`,
        note: `arrives on ${nr.WGName}; delivered to ${nr.BridgeName} in its node's root namespace`,
      });
    }
  }
  if (exitText === undefined) {
    path.push({
      at: `NR ${nr.Namespace}`,
      route: `${nr.prefix} dev ${nr.NRLocalName} (connected)`,
      note: `arrives on ${nr.WGName} (or from ${nr.EPPubName} when it is the ExitPoint); delivered to ${nr.BridgeName}`,
    });
  }
  unknown.push(`which node hosts NR ${nr.id} (TNoDB knows)`);
  return { ...base, kind: 'nr', slot, nr: nr.id, role, carriers, path, unknown };
}

function explainPrefixZero(
  a: Allocation,
  id: number,
  addr: Ip6 | undefined,
  base: Base,
  opts: ExplainOptions,
): Explanation {
  const out = {
    ...base,
    kind: 'prefixzero' as const,
    slot: 0,
    carriers: [] as Carrier[],
    path: [] as Hop[],
    unknown: [] as string[],
  };
  if (addr && id === 0) {
    if (addr.equals(a.prefix.at(1))) {
      return {
        ...out,
        role: `the upstream router's address on PrefixZero (${addr}/64)`,
        carriers: [
          {
            namespace: 'upstream router',
            interface: opts.iface ?? '<upstream iface>',
            how: 'address',
            detail: `${addr}/64`,
          },
        ],
      };
    }
    for (let slot = 1; slot <= MAX_SLOT; slot++) {
      if (addr.equals(gwPubIP6(a, slot))) {
        const s = planSlot(a, slot);
        return {
          ...out,
          slot,
          role: `GWPubIP6 of slot ${slot}: the uplink ${s.GWPubName} of the gateway ${s.Namespace}`,
          carriers: [{ namespace: s.Namespace, interface: s.GWPubName, how: 'address', detail: s.GWPubIP6 }],
          path: [
            {
              at: 'upstream router',
              route: `${a.prefix.at(0)}/64 dev ${opts.iface ?? '<upstream iface>'} (connected)`,
              note: 'on-link on PrefixZero',
            },
          ],
        };
      }
    }
    return {
      ...out,
      role: `an address on the PrefixZero segment ${a.prefix.at(0)}/64, on-link at the upstream router; no gateway holds it`,
    };
  }
  return { ...out, role: `id ${nrIdText(id)} is PrefixZero (0000-0fff): never an NR, and no slot routes it` };
}

function explainLinkLocal(a: Allocation, addr: Ip6, base: Base): Explanation {
  const out = { ...base, kind: 'link-local' as const, path: [] as Hop[], unknown: [] as string[] };
  const A = a.number;
  const v = addr.value & ((1n << 64n) - 1n);
  const g = [
    Number((v >> 48n) & 0xffffn),
    Number((v >> 32n) & 0xffffn),
    Number((v >> 16n) & 0xffffn),
    Number(v & 0xffffn),
  ];
  const isNr = (id: number): boolean => id >= FIRST_NR_ID && id < FIRST_RESERVED_ID;
  if (addr.value >> 64n === 0xfe80n << 48n) {
    if (addr.toString() === DEFAULT_UPSTREAM_LL) {
      return {
        ...out,
        role: "the upstream router's default link-local address on PrefixZero (every gateway's IPv6 default route points at it)",
        carriers: [
          { namespace: 'upstream router', interface: '<upstream iface>', how: 'address', detail: 'fe80::1/64' },
        ],
      };
    }
    if (g[1] === 0 && g[2] === 0 && g[3] === 1 && (g[0]! & 0xfff) === 0 && g[0]! >> 12 >= 1) {
      const s = planSlot(a, g[0]! >> 12);
      return {
        ...out,
        slot: s.number,
        role: `GWPubLL of slot ${s.number}: the upstream route's next hop`,
        carriers: [{ namespace: s.Namespace, interface: s.GWPubName, how: 'address', detail: s.GWPubLL }],
      };
    }
    if (g[0] === 0 && g[1] === 0 && g[2] === 1 && isNr(g[3]!)) {
      const n = planNr(a, g[3]!);
      return {
        ...out,
        slot: slotOfNr(g[3]!),
        nr: n.id,
        role: `GWtoEPLL of ExitPoint ${n.id}: the gateway end of its veth (the ExitPoint's IPv6 default route)`,
        carriers: [
          {
            namespace: gatewayNamespace('', slotOfNr(g[3]!), A),
            interface: n.GWtoEPName,
            how: 'address',
            detail: n.GWtoEPLL,
          },
        ],
      };
    }
    if (g[0] === 0 && g[1] === 0 && g[3] === 1 && isNr(g[2]!)) {
      const n = planNr(a, g[2]!);
      return {
        ...out,
        slot: slotOfNr(g[2]!),
        nr: n.id,
        role: `EPPubLL of ExitPoint ${n.id}: the gateway's next hop for every NR of its TN`,
        carriers: [{ namespace: n.Namespace, interface: n.EPPubName, how: 'address', detail: n.EPPubLL }],
      };
    }
    if (g[0] === 0 && g[1] === 0 && g[2] === 0 && isNr(g[3]!)) {
      const n = planNr(a, g[3]!);
      return {
        ...out,
        slot: slotOfNr(g[3]!),
        nr: n.id,
        role: `WGLL of NR ${n.id}: its WireGuard interface`,
        carriers: [{ namespace: n.Namespace, interface: n.WGName, how: 'address', detail: n.WGLL }],
      };
    }
  }
  throw new ExitnodeError(
    CoreErrors.ADDRESS_OUTSIDE_ALLOCATION,
    `${q(base.input)} is a link-local address that the plan does not assign`,
  );
}

function explain4(a: Allocation, addr: Ip4, text: string, length: number, _opts: ExplainOptions): Explanation {
  const base = {
    input: text,
    allocation: { prefix: a.prefix.toString(), number: a.number },
    path: [] as Hop[],
    unknown: [] as string[],
  };
  const v = addr.value;
  const A = a.number;
  if (addr.toString() === GW_TO_EP_IP4 && length === 32) {
    return {
      ...base,
      kind: 'link-local',
      role: "GWtoEPIP4: the address of every to- link of a gateway (the ExitPoints' IPv4 default gateway)",
      carriers: [{ namespace: `gw-<slot>-${A}`, interface: TO_LINK_GLOB, how: 'address', detail: '10.1.0.1/32' }],
    };
  }
  if (v >>> 24 === 10 && length >= 16) {
    const second = (v >>> 16) & 255;
    const id = second === 255 ? v & 0xffff : (v >>> 8) & 0xffff;
    if (id >= FIRST_NR_ID && id < FIRST_RESERVED_ID && (second === 255 ? length >= 16 : length >= 24)) {
      const n = planNr(a, id);
      const slot = slotOfNr(id);
      if (second === 255) {
        return {
          ...base,
          kind: 'nr',
          slot,
          nr: n.id,
          role: `EPPubIP4R / WGIP4RT of NR ${n.id}: its IPv4 routing address`,
          carriers: [
            { namespace: n.Namespace, interface: n.WGName, how: 'address', detail: n.WGIP4RT },
            {
              namespace: n.Namespace,
              interface: n.EPPubName,
              how: 'address',
              detail: `${n.EPPubIP4R} (when NR ${n.id} is an ExitPoint)`,
            },
          ],
        };
      }
      const isLocal = length === 32 && addr.toString() === n.NRLocalIP4.replace(/\/24$/, '');
      return {
        ...base,
        kind: 'nr',
        slot,
        nr: n.id,
        role: isLocal
          ? `NRLocalIP4 of NR ${n.id} (the workloads' IPv4 gateway)`
          : `in NR ${n.id}'s IPv4 /24 (10.${id >> 8}.${id & 255}.0/24): private, leaves the farm only through SNAT at the gateway`,
        carriers: [
          {
            namespace: gatewayNamespace('', slot, A),
            interface: toLinkName('<exit>', A),
            how: 'route',
            detail: `10.${id >> 8}.${id & 255}.0/24 via 10.255.<exit> onlink`,
          },
          {
            namespace: n.Namespace,
            interface: n.NRLocalName,
            how: isLocal ? 'address' : 'on-link',
            detail: n.NRLocalIP4,
          },
        ],
        unknown: [`which TN NR ${n.id} belongs to (TNoDB knows)`],
      };
    }
  }
  throw new ExitnodeError(
    CoreErrors.ADDRESS_OUTSIDE_ALLOCATION,
    `${q(text)} is not an IPv4 address the plan assigns (NR /24s are 10.16.0.0-10.254.255.255, routing addresses 10.255.16.0-10.255.254.255)`,
  );
}
