// The node view (DESIGN.md section 4): the only input of a node agent, served by TNoDB as JSON.
// `parseNodeView` is the gate between that JSON and the kernel: every value that later reaches a
// command line (addresses, ids, keys, endpoints) is checked here and refused with a message that
// names the field, so nothing from a view ever reaches `ip`, `nft` or `wg` unvalidated.

import { ExitnodeError, q } from './errors.js';
import { Ip4, Ip6 } from './ip.js';
import { checkAllocationNumber, checkSlot, nrId, parseAllocationPrefix, slotOfNr } from './plan.js';
import {
  checkForwardTarget,
  checkPort,
  checkProtocol,
  checkSourcePrefix,
  type Forward,
  type InboundRule,
} from './forward.js';

import { ViewErrors } from './view/errors.js';
import { sealedProblem } from './seal.js';

export { ViewErrors };

export interface NodeView {
  version: number;
  node: { id: string; publicIPv4?: string; publicIPv6?: string };
  allocations: {
    number: number;
    prefix: string;
    upstream: { ll: string; ip6?: string; ipv4Gateway?: string; ipv4PrefixLength?: number };
  }[];
  slots: {
    allocation: number;
    slot: number;
    epoch: number;
    ipv4?: string;
    /**
     * Stage 2 (DESIGN.md 8.2): the slot's candidate nodes in order, this node among them. Every
     * candidate builds the gateway and every ExitPoint; keepalived (VRRP) decides who answers.
     * Absent: stage 1, this node is the slot's only holder and its lease fences it.
     */
    candidates?: string[];
    /** Stage 2: this node's VRRP priority for the slot (1-254; the first candidate highest). */
    priority?: number;
    /** Stage 2: TNoDB saw two masters and asks this one to give up mastership (priority 0). */
    stepDown?: boolean;
  }[];
  /**
   * Stage 2, in the views of slot candidates: the node keys (X25519, base64) of the farm's other
   * exit-capable nodes, to which a candidate seals the ExitPoint private keys it generates.
   */
  sealTo?: { node: string; key: string }[];
  networks: {
    id: string;
    allocation: number;
    exit: string;
    resources: {
      id: string;
      node: string;
      publicKey?: string;
      endpoint?: string;
      /**
       * Stage 2, on the ExitPoint NR in a candidate's view: its WireGuard private key sealed to
       * this node's node key (src/core/seal.ts), when another candidate generated it.
       */
      sealedKey?: string;
      /** Stage 2, in a candidate's view: this NR's endpoint as the slot's master last saw it (NAT). */
      learnedEndpoint?: string;
    }[];
    /** IPv4 port forwards on the slot's GWPubIP4 (only the gateway uses them). */
    forwards?: Forward[];
    /** The IPv6 inbound policy; absent: open. */
    inbound?: { policy: 'closed'; rules: InboundRule[] };
  }[];
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

function fail(field: string, value: unknown, rule: string): never {
  throw new ExitnodeError(ViewErrors.VIEW_INVALID, `view field ${field} = ${q(value)} ${rule}`, { field });
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, v, 'is not an object');
  return v as Record<string, unknown>;
}

function arr(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) fail(field, v, 'is not an array');
  return v;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    fail(field, v, `is not a whole number from ${min} to ${max}`);
  return v;
}

function name(v: unknown, field: string): string {
  if (typeof v !== 'string' || !NAME_RE.test(v))
    fail(field, v, 'is not a name (1-64 letters, digits, ".", "_", "-", starting with a letter or digit)');
  return v;
}

function optional<T>(o: Record<string, unknown>, key: string, f: (v: unknown) => T): T | undefined {
  return o[key] === undefined || o[key] === null ? undefined : f(o[key]);
}

function ip4(v: unknown, field: string): string {
  const a = typeof v === 'string' ? Ip4.tryParse(v) : undefined;
  if (!a) fail(field, v, 'is not an IPv4 address');
  return a.toString();
}

function ip6(v: unknown, field: string): string {
  const a = typeof v === 'string' ? Ip6.tryParse(v) : undefined;
  if (!a) fail(field, v, 'is not an IPv6 address');
  return a.toString();
}

/** A WireGuard public key: 32 bytes in base64 (44 characters, the last of them "="). */
export function checkWgKey(v: unknown, field: string): string {
  if (typeof v !== 'string' || !KEY_RE.test(v) || Buffer.from(v, 'base64').length !== 32)
    fail(field, v, 'is not a WireGuard key (32 bytes in base64, 44 characters)');
  return v;
}

/** An endpoint: IPv4:port or [IPv6]:port, port 1-65535. Returns it in canonical form. */
export function checkEndpoint(v: unknown, field: string): string {
  const m = typeof v === 'string' ? /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):([0-9]{1,5})$/.exec(v) : null;
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535 || !/^[1-9]/.test(m[3]!))
    fail(field, v, 'is not an endpoint (IPv4:port or [IPv6]:port, port 1-65535)');
  if (m[1] !== undefined) {
    const a = Ip6.tryParse(m[1]);
    if (!a) fail(field, v, 'is not an endpoint: the part in brackets is not an IPv6 address');
    return `[${a}]:${port}`;
  }
  const a = Ip4.tryParse(m[2]!);
  if (!a) fail(field, v, 'is not an endpoint: the address is not IPv4 (write IPv6 as [address]:port)');
  return `${a}:${port}`;
}

/** Wraps a core error (prefix, slot, id rules) so that its message also names the field. */
function core<T>(field: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ExitnodeError)
      throw new ExitnodeError(ViewErrors.VIEW_INVALID, `view field ${field}: ${e.message}`, { field, cause: e.code });
    throw e;
  }
}

/** Validates a node view (parsed JSON or text) and returns it with every value in canonical form. */
export function parseNodeView(input: unknown): NodeView {
  let json = input;
  if (typeof input === 'string') {
    try {
      json = JSON.parse(input);
    } catch (e) {
      throw new ExitnodeError(ViewErrors.VIEW_INVALID, `the node view is not JSON: ${(e as Error).message}`);
    }
  }
  const v = obj(json, 'view');
  const version = int(v.version, 'version', 0, Number.MAX_SAFE_INTEGER);
  const n = obj(v.node, 'node');
  const node: NodeView['node'] = { id: name(n.id, 'node.id') };
  const pub4 = optional(n, 'publicIPv4', (x) => ip4(x, 'node.publicIPv4'));
  const pub6 = optional(n, 'publicIPv6', (x) => ip6(x, 'node.publicIPv6'));
  if (pub4 !== undefined) node.publicIPv4 = pub4;
  if (pub6 !== undefined) node.publicIPv6 = pub6;

  const allocations: NodeView['allocations'] = [];
  const prefixes = new Map<number, string>();
  arr(v.allocations, 'allocations').forEach((x, i) => {
    const f = `allocations[${i}]`;
    const a = obj(x, f);
    const number = core(`${f}.number`, () => checkAllocationNumber(a.number as number));
    if (typeof a.number !== 'number') fail(`${f}.number`, a.number, 'is not a number');
    if (prefixes.has(number)) fail(`${f}.number`, number, 'appears twice');
    if (typeof a.prefix !== 'string') fail(`${f}.prefix`, a.prefix, 'is not a prefix');
    const prefix = core(`${f}.prefix`, () => parseAllocationPrefix(a.prefix as string)).toString();
    const u = obj(a.upstream, `${f}.upstream`);
    const ll = ip6(u.ll, `${f}.upstream.ll`);
    if (!Ip6.parse(ll).isLinkLocal()) fail(`${f}.upstream.ll`, u.ll, 'is not a link-local address (fe80::/10)');
    const upstream: NodeView['allocations'][number]['upstream'] = { ll };
    const uip6 = optional(u, 'ip6', (y) => ip6(y, `${f}.upstream.ip6`));
    const gw4 = optional(u, 'ipv4Gateway', (y) => ip4(y, `${f}.upstream.ipv4Gateway`));
    const len4 = optional(u, 'ipv4PrefixLength', (y) => int(y, `${f}.upstream.ipv4PrefixLength`, 1, 32));
    if (uip6 !== undefined) upstream.ip6 = uip6;
    if (gw4 !== undefined) upstream.ipv4Gateway = gw4;
    if (len4 !== undefined) upstream.ipv4PrefixLength = len4;
    prefixes.set(number, prefix);
    allocations.push({ number, prefix, upstream });
  });

  const known = (x: unknown, f: string): number => {
    const num = int(x, f, 1, 65535);
    if (!prefixes.has(num)) fail(f, x, 'names no allocation of this view');
    return num;
  };

  const slots: NodeView['slots'] = [];
  const seenSlots = new Set<string>();
  arr(v.slots, 'slots').forEach((x, i) => {
    const f = `slots[${i}]`;
    const s = obj(x, f);
    const allocation = known(s.allocation, `${f}.allocation`);
    if (typeof s.slot !== 'number') fail(`${f}.slot`, s.slot, 'is not a number');
    const slot = core(`${f}.slot`, () => checkSlot(s.slot as number));
    const epoch = int(s.epoch, `${f}.epoch`, 0, Number.MAX_SAFE_INTEGER);
    const key = `${allocation}/${slot}`;
    if (seenSlots.has(key)) fail(`${f}.slot`, slot, `appears twice for allocation ${allocation}`);
    seenSlots.add(key);
    const out: NodeView['slots'][number] = { allocation, slot, epoch };
    const v4 = optional(s, 'ipv4', (y) => ip4(y, `${f}.ipv4`));
    if (v4 !== undefined) out.ipv4 = v4;
    // Stage 2: the ordered candidates (this node among them), its VRRP priority, a step-down.
    const candidates = optional(s, 'candidates', (y) => {
      const list = arr(y, `${f}.candidates`).map((z, j) => name(z, `${f}.candidates[${j}]`));
      if (!list.length || list.length > 16) fail(`${f}.candidates`, y, 'does not list 1 to 16 nodes');
      if (new Set(list).size !== list.length) fail(`${f}.candidates`, y, 'names a node twice');
      if (!list.includes(node.id)) fail(`${f}.candidates`, y, `does not name this node (${node.id})`);
      return list;
    });
    const priority = optional(s, 'priority', (y) => int(y, `${f}.priority`, 1, 254));
    const stepDown = optional(s, 'stepDown', (y) => {
      if (typeof y !== 'boolean') fail(`${f}.stepDown`, y, 'is not true or false');
      return y;
    });
    if (candidates !== undefined) out.candidates = candidates;
    if (priority !== undefined) out.priority = priority;
    if (stepDown !== undefined) out.stepDown = stepDown;
    slots.push(out);
  });

  // Stage 2: the node keys of the farm's other exit-capable nodes (candidates seal to them).
  const sealTo = optional(v, 'sealTo', (y) => {
    const seen = new Set<string>();
    return arr(y, 'sealTo').map((z, j) => {
      const w = obj(z, `sealTo[${j}]`);
      const n2 = name(w.node, `sealTo[${j}].node`);
      if (seen.has(n2)) fail(`sealTo[${j}].node`, n2, 'appears twice');
      if (n2 === node.id) fail(`sealTo[${j}].node`, n2, 'is this node itself');
      seen.add(n2);
      return { node: n2, key: checkWgKey(w.key, `sealTo[${j}].key`) };
    });
  });

  const networks: NodeView['networks'] = [];
  const seenNr = new Set<string>();
  const seenTn = new Set<string>();
  arr(v.networks, 'networks').forEach((x, i) => {
    const f = `networks[${i}]`;
    const t = obj(x, f);
    const id = name(t.id, `${f}.id`);
    if (seenTn.has(id)) fail(`${f}.id`, id, 'appears twice');
    seenTn.add(id);
    const allocation = known(t.allocation, `${f}.allocation`);
    if (typeof t.exit !== 'string') fail(`${f}.exit`, t.exit, 'is not an NR id');
    const exitId = core(`${f}.exit`, () => nrId(t.exit as string));
    const slot = slotOfNr(exitId);
    const exit = exitId.toString(16).padStart(4, '0');
    const resources: NodeView['networks'][number]['resources'] = [];
    arr(t.resources, `${f}.resources`).forEach((y, j) => {
      const g = `${f}.resources[${j}]`;
      const r = obj(y, g);
      if (typeof r.id !== 'string') fail(`${g}.id`, r.id, 'is not an NR id');
      const rid = core(`${g}.id`, () => nrId(r.id as string, slot))
        .toString(16)
        .padStart(4, '0');
      if (seenNr.has(`${allocation}/${rid}`)) fail(`${g}.id`, rid, `appears twice in allocation ${allocation}`);
      seenNr.add(`${allocation}/${rid}`);
      const res: NodeView['networks'][number]['resources'][number] = { id: rid, node: name(r.node, `${g}.node`) };
      const key = optional(r, 'publicKey', (z) => checkWgKey(z, `${g}.publicKey`));
      const ep = optional(r, 'endpoint', (z) => checkEndpoint(z, `${g}.endpoint`));
      const sealed = optional(r, 'sealedKey', (z) => {
        const why = sealedProblem(z);
        if (why) fail(`${g}.sealedKey`, z, why);
        return z as string;
      });
      const learned = optional(r, 'learnedEndpoint', (z) => checkEndpoint(z, `${g}.learnedEndpoint`));
      if (key !== undefined) res.publicKey = key;
      if (ep !== undefined) res.endpoint = ep;
      if (sealed !== undefined) res.sealedKey = sealed;
      if (learned !== undefined) res.learnedEndpoint = learned;
      resources.push(res);
    });
    if (!resources.some((r) => r.id === exit)) fail(`${f}.exit`, t.exit, "is not one of the network's resources");
    const net: NodeView['networks'][number] = { id, allocation, exit, resources };
    const nrs = resources.map((r) => r.id);
    const forwards = optional(t, 'forwards', (y) =>
      arr(y, `${f}.forwards`).map((z, j) => {
        const g = `${f}.forwards[${j}]`;
        const w = obj(z, g);
        return {
          protocol: core(`${g}.protocol`, () => checkProtocol(w.protocol)),
          port: core(`${g}.port`, () => checkPort(w.port)),
          target: core(`${g}.target`, () => checkForwardTarget(w.target, nrs)),
          targetPort: core(`${g}.targetPort`, () => checkPort(w.targetPort, 'target port')),
        } satisfies Forward;
      }),
    );
    const seenFw = new Set<string>();
    for (const [j, w] of (forwards ?? []).entries()) {
      const k = `${w.protocol}/${w.port}`;
      if (seenFw.has(k)) fail(`${f}.forwards[${j}]`, k, 'appears twice');
      seenFw.add(k);
    }
    if (forwards?.length) net.forwards = forwards;
    const inbound = optional(t, 'inbound', (y) => {
      const g = `${f}.inbound`;
      const p = obj(y, g);
      if (p.policy !== 'closed')
        fail(`${g}.policy`, p.policy, 'is not "closed" (an open network has no inbound field)');
      const rules = arr(p.rules, `${g}.rules`).map((z, j) => {
        const h = `${g}.rules[${j}]`;
        const w = obj(z, h);
        const rule: InboundRule = {
          protocol: core(`${h}.protocol`, () => checkProtocol(w.protocol)),
          from: core(`${h}.from`, () => checkPort(w.from)),
          to: core(`${h}.to`, () => checkPort(w.to)),
        };
        if (rule.to < rule.from) fail(`${h}.to`, rule.to, `is below from (${rule.from})`);
        const src = optional(w, 'source', (x) => core(`${h}.source`, () => checkSourcePrefix(x)));
        if (src !== undefined) rule.source = src;
        return rule;
      });
      return { policy: 'closed' as const, rules };
    });
    if (inbound) net.inbound = inbound;
    networks.push(net);
  });
  return { version, node, allocations, slots, ...(sealTo !== undefined ? { sealTo } : {}), networks };
}
