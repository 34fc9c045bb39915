// The simulated farm's state file (STATE/sim.json): everything `sim check|status|exec|down` and
// the tests need to find what `sim up` made — namespaces prefix, server URL and tokens, process
// PIDs, node configs, tenants, networks and workloads.
//
// The state directory defaults to /run/exitnode-sim: /run is a tmpfs, so the state goes away on a
// reboot together with the namespaces it describes (which live in /run/netns).

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitnodeError, q } from '../core/errors.js';
import { SimErrors } from './errors.js';

export const DEFAULT_STATE_DIR = '/run/exitnode-sim';
export const DEFAULT_NS_PREFIX = 'sim-';

export interface SimNodeState {
  id: string;
  /** The node's root (and public) namespace. */
  ns: string;
  publicIPv4: string;
  exitCapable: boolean;
  configFile: string;
  tokenFile: string;
  stateDir: string;
  logFile: string;
  pid?: number;
  /** The node's own relay to the server (src/sim/failover.ts): `sim partition` cuts it. */
  relayPort?: number;
  relayPid?: number;
  /** Set by `sim fail` until `sim recover`. */
  failed?: boolean;
  /** Set by `sim partition` until `sim heal`. */
  partitioned?: boolean;
  /** The node's own wireguard-go socket directory, bound on /var/run/wireguard in its agent's mount namespace. */
  wgDir?: string;
  /** The node's own PrefixZero access namespace (its uplinks' far ends; `sim fail` cuts its trunk). */
  segNs?: string;
  /** The NAT box in front of a node without a public address (publicIPv4 is then its private address). */
  nat?: string;
  /** The NAT box's public address on the underlay. */
  natPublicIPv4?: string;
  /** Set by `sim cut-vrrp` until `sim heal-vrrp`: the nodes whose VRRP adverts to this one are dropped. */
  vrrpCut?: string[];
}

export interface SimWorkload {
  /** Short name, e.g. "t1n2" (tenant 1 on node 2). */
  name: string;
  ns: string;
  tenant: string;
  network: string;
  nr: string;
  node: string;
  bridge: string;
  addr6: string;
  addr4: string;
}

export interface SimTenant {
  name: string;
  id: string;
  tokenFile: string;
  network: string;
  slot: number;
  exit: string;
}

/** How the allocation fails over (DESIGN.md 8): stage 1 leases or stage 2 VRRP candidates. */
export type SimFailover = 'lease' | 'vrrp';

export interface SimState {
  stateDir: string;
  /** As asked at `sim up` (absent: the server's default, stage 1 today). */
  failover?: SimFailover;
  /** Candidates per slot asked at `sim up` (vrrp). */
  candidates?: number;
  nsPrefix: string;
  prefix: string;
  allocation: number;
  slots: { slot: number; node: string; ipv4: string }[];
  server: {
    url: string;
    listen: string;
    pid?: number;
    dataDir: string;
    logFile: string;
    adminTokenFile: string;
    farmTokenFile: string;
  };
  farm: string;
  nodes: SimNodeState[];
  tenants: SimTenant[];
  workloads: SimWorkload[];
  createdAt: string;
}

export function stateFile(dir: string): string {
  return join(dir, 'sim.json');
}

export function saveState(s: SimState): void {
  mkdirSync(s.stateDir, { recursive: true, mode: 0o700 });
  const tmp = `${stateFile(s.stateDir)}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, stateFile(s.stateDir));
}

export function loadState(dir: string): SimState {
  const f = stateFile(dir);
  if (!existsSync(f))
    throw new ExitnodeError(
      SimErrors.SIM_NOT_RUNNING,
      `no simulated farm in ${q(dir)} (no ${q(f)}): run exitnode sim up first`,
    );
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as SimState;
  } catch (e) {
    throw new ExitnodeError(
      SimErrors.SIM_NOT_RUNNING,
      `the sim state ${q(f)} is unreadable: ${(e as Error).message}; exitnode sim down --state ${dir} removes what is left`,
    );
  }
}

export function readToken(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

/** The URL this node's agent uses: its relay when it has one. */
export function agentServerUrl(s: SimState, n: SimNodeState): string {
  return n.relayPort ? `http://127.0.0.1:${n.relayPort}` : s.server.url;
}
