// The seam between the agent and its node: everything the agent does to the kernel (and to the
// state directory's keys and PID files, which the kernel side writes) goes through one `Kernel`,
// and every wait or timestamp through one `Clock`. Two implementations of each: the real ones
// (src/kernel/linux.ts, src/kernel/clock.ts) and in-memory fakes (src/kernel/fake.ts,
// src/kernel/fake-clock.ts). One contract suite (test/kernel/contract.ts) runs against both
// kernels: the fake in the unit tests, the real adapter in throwaway namespaces as root.

import type { DesiredState } from '../compile/desired.js';
import type { ActualState } from '../reconcile/actual.js';
import type { Plan } from '../reconcile/plan.js';
import type { ApplyOptions, StepFailure } from './apply.js';
import type { ObserveOptions } from './observe.js';
import type { VrrpStatus } from './vrrp.js';

export type { ApplyOptions, StepFailure } from './apply.js';
export type { ObserveOptions } from './observe.js';
export type { VrrpStatus } from './vrrp.js';

/** The state directory's part of ActualState: live wireguard-go processes, PID and key files, keepalived instances. */
export type StateFiles = Pick<ActualState, 'wgProcesses' | 'keyFiles' | 'pidFiles' | 'vrrp'>;

/** One link to bring up or down at once (setLinksUp). */
export interface LinkUp {
  ns: string;
  dev: string;
  up: boolean;
}

export interface Kernel {
  /** Reads every namespace DESIRED names or the node's prefix makes ours, WireGuard, and the state files. */
  observe(desired: DesiredState, opts: ObserveOptions): Promise<ActualState>;
  /** Only the state directory's part (an incremental pass assumes the kernel holds the previous pass). */
  observeFiles(opts: ObserveOptions): StateFiles;
  /** Executes a plan in phase order; every object that failed, with the kernel's reason. Never throws for one object. */
  apply(plan: Plan, opts: ApplyOptions): Promise<StepFailure[]>;
  /** The private keys the state directory holds for these interfaces: name → base64 key (absent: none yet). */
  privateKeys(stateDir: string, wg: readonly { name: string; keyFile: string }[]): Map<string, string>;
  /**
   * Writes a private key this node did not generate (stage 2: an ExitPoint's shared key, opened
   * from its sealed copy) into the state directory, mode 0600, replacing what was there.
   */
  writePrivateKey(stateDir: string, keyFile: string, key: string): void;
  /** Whether WireGuard is in the kernel (else the agent runs wireguard-go). */
  kernelWireguard(): boolean;
  /** Whether namespace NS exists ("" is the host's own: always). */
  namespaceExists(ns: string): boolean;
  /**
   * Whether DEV in NS still has tentative IPv6 addresses (duplicate address detection running);
   * undefined when DEV (or NS) is missing.
   */
  tentative(ns: string, dev: string): Promise<boolean | undefined>;
  /**
   * One echo request from NS out of DEV to TARGET (`ping -6 TARGET%DEV` for a link-local target,
   * else `ping -I DEV TARGET`); true when answered within WAITS seconds.
   */
  ping(ns: string, dev: string, target: string, waitS: number): Promise<boolean>;
  /** Forgets DEV's neighbour entries of one family (`ip -F neigh flush dev DEV`); never fails. */
  flushNeighbours(ns: string, dev: string, family: 4 | 6): Promise<void>;
  /**
   * Takes DEV in NS out of service in one batch: down, addresses flushed, and with REMOVE deleted.
   * A DEV that is gone already counts as done. Undefined, or the kernel's words.
   */
  fence(ns: string, dev: string, remove: boolean): Promise<string | undefined>;

  // ---- stage 2 (DESIGN.md 8.2): keepalived and the ExitPoints' fast path ----------------------

  /**
   * The state of every keepalived of the state directory, by gateway namespace, as its notify
   * reader last wrote it ("MASTER|BACKUP|FAULT|STOPPED PRIORITY UNIX-MS"); one whose process is
   * not running is STOPPED.
   */
  vrrpStates(stateDir: string): Map<string, VrrpStatus>;
  /**
   * Calls ONCHANGE with every instance's state whenever one changes (inotify on the state files,
   * and a poll for a keepalived that died). Returns the function that stops watching.
   */
  watchVrrp(stateDir: string, onChange: (states: Map<string, VrrpStatus>) => void): () => void;
  /**
   * Planned handover: the keepalived of NS gives up mastership now (FAULT through its drain
   * file: a priority-0 advert, the backup takes over after its skew time), then comes back as a
   * backup. Resolves once it is back; at once when it is not running.
   */
  vrrpDrain(stateDir: string, ns: string): Promise<void>;
  /** `ip link set DEV up|down` for every item, one batch per namespace, side by side. A missing device is skipped. */
  setLinksUp(items: readonly LinkUp[]): Promise<void>;
  /** A handshake with every peer of these WireGuard interfaces now (persistent keepalive 0 → 25 → as it was). Missing ones are skipped. */
  wgKick(names: readonly string[]): Promise<void>;
  /** Each interface's peers' current endpoints (learned from their packets): name → peer public key → endpoint. */
  wgEndpoints(names: readonly string[]): Promise<Map<string, Map<string, string>>>;
}

/** Time as the agent sees it: timestamps, deadlines and every wait. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after MS, or at once when SIGNAL aborts (never rejects). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}
