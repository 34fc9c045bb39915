// The kernel objects a plan step changes, and a failure concerns, as data: `diff` names them, the
// agent asks them which slot or NR they belong to, and `objectText` alone turns them into words
// (the --dry-run/--json output, logs, `agent check` and `agent status`). Namespaces and links are
// named as in the kernel ("" is the host's own namespace); core/ownership reads the names.

import { keyFileName, parseOwnedLink, parseOwnedNamespace, pidFileName } from '../core/ownership.js';

export type ObjectRef =
  | { kind: 'netns'; name: string }
  /** A link; `replaces`: it exists with the wrong kind and is deleted first. */
  | { kind: 'link'; ns: string; name: string; replaces?: { have: string; want: string } }
  | { kind: 'loopback'; ns: string }
  /** A physical NIC moved into a gateway namespace (`into`) or sent home from it (`back`). */
  | { kind: 'nic'; device: string; ns: string; move: 'into' | 'back' }
  /** A link moved from where it was created into NS (WireGuard). */
  | { kind: 'link-move'; ns: string; name: string }
  | { kind: 'sysctl'; ns: string; key: string }
  | { kind: 'addr'; ns: string; dev: string; addr: string }
  | { kind: 'route'; ns: string; dst: string; dev: string }
  | { kind: 'nft-table'; ns: string; family: string; table: string }
  /** COUNT elements added to, or deleted (stale) from, one set in one transaction line. */
  | {
      kind: 'nft-elements';
      ns: string;
      family: string;
      table: string;
      set: string;
      count: number;
      op: 'add' | 'delete';
    }
  /** A WireGuard interface created in NS (kernel link or wireguard-go). */
  | { kind: 'wg'; ns: string; name: string }
  | { kind: 'wg-conf'; ns: string; name: string }
  | { kind: 'private-key'; name: string }
  /** A wireguard-go process; `orphan`: its interface is gone and it is restarted. */
  | { kind: 'wg-process'; name: string; pid: number; orphan: boolean }
  | { kind: 'key-file'; wg: string }
  | { kind: 'pid-file'; wg: string }
  /** The keepalived of gateway namespace NS (stage 2). */
  | { kind: 'keepalived'; ns: string; op: 'start' | 'reload' | 'stop'; pid?: number };

function at(ns: string): string {
  return ns === '' ? 'the host namespace' : ns;
}

/** The one text of an object, for people. */
export function objectText(o: ObjectRef): string {
  switch (o.kind) {
    case 'netns':
      return `namespace ${o.name}`;
    case 'link':
      return `link ${o.name} in ${at(o.ns)}${o.replaces ? ` (kind ${o.replaces.have || 'device'}, not ${o.replaces.want})` : ''}`;
    case 'loopback':
      return `loopback in ${at(o.ns)}`;
    case 'nic':
      return o.move === 'into' ? `NIC ${o.device} into ${o.ns}` : `NIC ${o.device} back from ${o.ns}`;
    case 'link-move':
      return `move ${o.name} into ${o.ns}`;
    case 'sysctl':
      return `sysctl ${o.key} in ${at(o.ns)}`;
    case 'addr':
      return `address ${o.addr} on ${o.dev} in ${at(o.ns)}`;
    case 'route':
      return `route ${o.dst} in ${at(o.ns)}`;
    case 'nft-table':
      return `nft table ${o.family} ${o.table} in ${at(o.ns)}`;
    case 'nft-elements':
      return `${o.count} ${o.op === 'delete' ? 'stale ' : ''}elements of set ${o.set} in ${at(o.ns)}`;
    case 'wg':
      return `WireGuard ${o.name} in ${at(o.ns)}`;
    case 'wg-conf':
      return `WireGuard configuration of ${o.name}`;
    case 'private-key':
      return `private key of ${o.name}`;
    case 'wg-process':
      return `wireguard-go ${o.name} (pid ${o.pid})${o.orphan ? ' without its interface' : ''}`;
    case 'key-file':
      return `key file ${keyFileName(o.wg)}`;
    case 'pid-file':
      return `PID file ${pidFileName(o.wg)}`;
    case 'keepalived':
      return `keepalived in ${o.ns}${o.pid !== undefined ? ` (pid ${o.pid})` : ''}${o.op === 'start' ? '' : `, ${o.op}`}`;
  }
}

/** Several objects (those of one failed step), as one text. */
export function objectsText(list: readonly ObjectRef[]): string {
  return list.map(objectText).join(', ');
}

/** A failure as people read it: "OBJECT[, OBJECT…]: REASON". */
export function failureText(f: { objects: readonly ObjectRef[]; reason: string }): string {
  return `${objectsText(f.objects)}: ${f.reason}`;
}

/** The links an object is, sits on or goes through (a route: its device). */
export function linksOf(o: ObjectRef): string[] {
  switch (o.kind) {
    case 'link':
    case 'link-move':
    case 'wg':
    case 'wg-conf':
    case 'private-key':
    case 'wg-process':
      return [o.name];
    case 'addr':
    case 'route':
      return [o.dev];
    case 'key-file':
    case 'pid-file':
      return [o.wg];
    case 'nic':
      return [o.device];
    default:
      return [];
  }
}

/** A gateway (slot) or an NR of one allocation. */
export type Owner = { kind: 'slot'; slot: number; allocation: number } | { kind: 'nr'; nr: string; allocation: number };

/**
 * The slots and NRs an object belongs to, by the owned names it carries: its namespace (of this
 * node's PREFIX) and its links. A route belongs to its namespace only; a to- link in a gateway
 * belongs to both the slot and the ExitPoint NR.
 */
export function ownersOf(o: ObjectRef, prefix: string): Owner[] {
  const out: Owner[] = [];
  const ns = o.kind === 'netns' ? o.name : 'ns' in o ? o.ns : undefined;
  const n = ns === undefined ? undefined : parseOwnedNamespace(prefix, ns);
  if (n?.kind === 'gateway') out.push({ kind: 'slot', slot: n.slot, allocation: n.allocation });
  else if (n?.kind === 'nr') out.push({ kind: 'nr', nr: n.id, allocation: n.allocation });
  for (const name of o.kind === 'route' ? [] : linksOf(o)) {
    const l = parseOwnedLink(name);
    if (!l) continue;
    if ('slot' in l) out.push({ kind: 'slot', slot: l.slot, allocation: l.allocation });
    else out.push({ kind: 'nr', nr: l.nr, allocation: l.allocation });
  }
  return out;
}

export function sameOwner(x: Owner, y: Owner): boolean {
  return x.kind === 'slot'
    ? y.kind === 'slot' && x.slot === y.slot && x.allocation === y.allocation
    : y.kind === 'nr' && x.nr === y.nr && x.allocation === y.allocation;
}

/** Whether an object belongs to OWNER (see ownersOf). */
export function concerns(o: ObjectRef, owner: Owner, prefix: string): boolean {
  return ownersOf(o, prefix).some((x) => sameOwner(x, owner));
}
