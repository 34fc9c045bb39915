// A plan: ordered steps, each one process on the kernel side (one `ip -batch` per namespace,
// one `nft -f` transaction per namespace, one `wg syncconf` per interface). Printed as exact
// commands by --dry-run; executed by src/kernel/apply.ts. Each step names the objects it changes
// as data (ObjectRef, one per line of a batch).

import type { VrrpSpec } from '../compile/desired.js';
import type { ObjectRef } from './objects.js';

export const Phase = {
  NETNS_ADD: 10,
  LINK_ADD: 20,
  WG_START: 30,
  LINK_MOVE: 40,
  SYSCTL: 50,
  CONFIGURE: 60,
  NFT: 70,
  /** keepalived starts once its gateway's uplink is configured. */
  VRRP: 75,
  KEYGEN: 80,
  WG_CONF: 90,
  /** keepalived stops before anything of its gateway goes (a deleted namespace would orphan it). */
  VRRP_STOP: 95,
  LINK_DEL: 100,
  NETNS_DEL: 110,
  KILL: 120,
  RM: 130,
} as const;
export type PhaseNo = (typeof Phase)[keyof typeof Phase];

export type Step =
  /** `ip -force -batch -` in NS ("" = the host's namespace); one object per line. */
  | { tool: 'ip'; phase: PhaseNo; ns: string; lines: string[]; objects: ObjectRef[] }
  /** `nft -f -` in NS: one transaction. */
  | { tool: 'nft'; phase: PhaseNo; ns: string; lines: string[]; objects: ObjectRef[] }
  /** `sysctl -q -w K=V …` in NS. */
  | { tool: 'sysctl'; phase: PhaseNo; ns: string; lines: string[]; objects: ObjectRef[] }
  /** Start wireguard-go (or add a kernel wireguard link) named NAME in NS. */
  | { tool: 'wg-start'; phase: PhaseNo; ns: string; name: string; kernel: boolean; objects: ObjectRef[] }
  /** Generate a private key into the state directory (0600). */
  | { tool: 'keygen'; phase: PhaseNo; ns: string; name: string; keyFile: string; objects: ObjectRef[] }
  /** `wg syncconf NAME FILE` in NS: CONF with the private key read from KEYFILE at apply time, written to a 0600
   *  file of the state directory and removed at once (wg cannot read /dev/stdin when it is a socket). */
  | { tool: 'wg'; phase: PhaseNo; ns: string; name: string; keyFile: string; conf: string; objects: ObjectRef[] }
  /** End a wireguard-go process left without an interface (by PID, checked against its name). */
  | { tool: 'kill'; phase: PhaseNo; ns: string; name: string; pid: number; objects: ObjectRef[] }
  /** Remove a file of the state directory (key, PID file, log). */
  | { tool: 'rm'; phase: PhaseNo; ns: string; file: string; objects: ObjectRef[] }
  /** Write STATE/vrrp/NS/ and start keepalived in NS, detached (it outlives the agent, like wireguard-go). */
  | { tool: 'vrrp-start'; phase: PhaseNo; ns: string; vrrp: VrrpSpec; objects: ObjectRef[] }
  /** Rewrite the configuration and SIGHUP keepalived PID (checked against its command line). */
  | { tool: 'vrrp-reload'; phase: PhaseNo; ns: string; vrrp: VrrpSpec; pid: number; objects: ObjectRef[] }
  /** SIGTERM keepalived PID (if running) and wait for it; then remove STATE/vrrp/NS/. */
  | { tool: 'vrrp-stop'; phase: PhaseNo; ns: string; pid?: number; objects: ObjectRef[] };

export interface Plan {
  steps: Step[];
}

export function planSize(p: Plan): number {
  let n = 0;
  for (const s of p.steps) n += 'lines' in s ? s.lines.length : 1;
  return n;
}
