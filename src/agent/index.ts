// The agent's three verbs, after CNI's ADD/CHECK/DEL and Tailscale's Set(config):
//   applyView(view, config)  compile → observe → diff → apply; idempotent, safe to call in a loop
//   check(view, config)      compile → observe → diff; reads only, returns the drift
//   down(config)             removes everything this node owns, nothing else
// The long-running daemon (`agent run`) calls these with each new view and on its resync timer.

import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Compiler, type CompileRuntime } from '../compile/index.js';
import type { DesiredState } from '../compile/desired.js';
import { ExitnodeError, q } from '../core/errors.js';
import type { NodeView } from '../core/view.js';
import { planText, type StepFailure } from '../kernel/apply.js';
import type { Kernel } from '../kernel/kernel.js';
import { linuxKernel } from '../kernel/linux.js';
import { assumeApplied } from '../reconcile/assume.js';
import { diff } from '../reconcile/diff.js';
import { failureText, objectText, type ObjectRef } from '../reconcile/objects.js';
import { planSize, type Plan, type Step } from '../reconcile/plan.js';
import type { NodeConfig } from './config.js';
import { AgentErrors } from './errors.js';
import { nodeKeyFile } from './node-key.js';
import { runtimeFromKernel } from './vrrp.js';

export { parseNodeConfig, type NodeConfig } from './config.js';

export interface PassResult {
  /** The view version applied (undefined for down). */
  version?: number;
  plan: Plan;
  /** Number of batch lines and single commands in the plan (0: nothing to do). */
  size: number;
  dryRun: boolean;
  failures: StepFailure[];
  /** What this pass made true; pass it as `previous` to the next pass when `failures` is empty. */
  desired: DesiredState;
  /** Whether the kernel was read (a full pass) or assumed from `previous`. */
  observed: boolean;
  /** Public keys of this node's WireGuard interfaces (for TNoDB): interface name → key. */
  publicKeys: Record<string, string>;
  timings: { compileMs: number; observeMs: number; diffMs: number; applyMs: number };
}

export interface PassOptions {
  dryRun?: boolean;
  /**
   * Incremental pass: the desired state of the previous pass, which succeeded with no failures.
   * The kernel is then assumed to hold it (only the state directory is read), so a changed view
   * costs its delta. Leave it out for a full pass that re-reads the kernel and repairs drift;
   * a daemon does a full pass at start, after any failure and on its resync timer.
   */
  previous?: DesiredState;
  /**
   * The compiler whose history this pass uses and extends: a daemon keeps one for its life, so
   * that a pass hands unchanged TNs' objects over as they were (and diff skips them). Without
   * one, a pass compiles without history.
   */
  compiler?: Compiler;
  /** Steps of one phase run at most this many at a time (default 4). */
  concurrency?: number;
  onStep?: (s: Step) => void;
  /** The node's kernel (default: this host's, src/kernel/linux.ts; tests give src/kernel/fake.ts). */
  kernel?: Kernel;
  /** Stage 2: which vrrp slots are master here, which ExitPoints lack their key (default: none, none). */
  runtime?: CompileRuntime;
}

/** Kernel WireGuard when configured, or when "auto" and the kernel has it. */
export function useKernelWireguard(config: NodeConfig, kernel: Kernel = linuxKernel): boolean {
  if (config.wireguard === 'kernel') return true;
  if (config.wireguard === 'auto') return kernel.kernelWireguard();
  return false;
}

const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

export function publicKeyOf(privateKey: string): string {
  const k = createPrivateKey({
    key: Buffer.concat([PKCS8_X25519, Buffer.from(privateKey, 'base64')]),
    format: 'der',
    type: 'pkcs8',
  });
  return Buffer.from(createPublicKey(k).export({ format: 'jwk' }).x!, 'base64url').toString('base64');
}

async function pass(view: NodeView, config: NodeConfig, opts: PassOptions, save: boolean): Promise<PassResult> {
  if (view.node.id !== config.node) {
    throw new ExitnodeError(
      AgentErrors.CONFIG_INVALID,
      `the view is for node ${q(view.node.id)} but this agent is node ${q(config.node)}`,
    );
  }
  const t0 = performance.now();
  const kernel = opts.kernel ?? linuxKernel;
  const runtime = opts.runtime ?? runtimeFromKernel(kernel, config.stateDir, config.namespacePrefix, view);
  const desired = (opts.compiler ?? new Compiler()).compile(view, config, runtime);
  const t1 = performance.now();
  const kernelWireguard = useKernelWireguard(config, kernel);
  const privateKeys = kernel.privateKeys(config.stateDir, desired.wireguard);
  const observeOpts = { namespacePrefix: config.namespacePrefix, stateDir: config.stateDir, kernelWireguard };
  const actual = opts.previous
    ? assumeApplied(
        opts.previous,
        kernel.privateKeys(config.stateDir, opts.previous.wireguard),
        kernel.observeFiles(observeOpts),
      )
    : await kernel.observe(desired, observeOpts);
  const t2 = performance.now();
  const plan = diff(desired, actual, { kernelWireguard, privateKeys });
  const t3 = performance.now();
  const dryRun = opts.dryRun ?? false;
  let failures: StepFailure[] = [];
  if (!dryRun && plan.steps.length) {
    try {
      mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new ExitnodeError(
        AgentErrors.AGENT_STATE_DIR,
        `cannot create the state directory ${q(config.stateDir)}: ${(e as Error).message}`,
      );
    }
    const unlock = lock(config.stateDir);
    try {
      failures = await kernel.apply(plan, {
        stateDir: config.stateDir,
        concurrency: opts.concurrency,
        onStep: opts.onStep,
      });
    } finally {
      unlock();
    }
  }
  for (const [ns, why] of actual.unreadable ?? [])
    failures.push({ objects: [{ kind: 'netns', name: ns }], reason: `cannot be read, left alone this pass: ${why}` });
  const t4 = performance.now();
  if (!dryRun && save) saveView(config.stateDir, view);
  const publicKeys: Record<string, string> = {};
  for (const [name, key] of kernel.privateKeys(config.stateDir, desired.wireguard)) publicKeys[name] = publicKeyOf(key);
  return {
    version: view.version,
    plan,
    size: planSize(plan),
    dryRun,
    failures,
    publicKeys,
    desired,
    observed: !opts.previous,
    timings: { compileMs: t1 - t0, observeMs: t2 - t1, diffMs: t3 - t2, applyMs: t4 - t3 },
  };
}

const held = new Set<string>();

/**
 * One pass at a time per node: a lock file with the holder's PID in the state directory. A lock
 * left by a killed agent (its PID gone) is taken over; a live holder is refused with AGENT_BUSY.
 */
function lock(stateDir: string): () => void {
  const file = join(stateDir, 'lock');
  if (held.has(file))
    throw new ExitnodeError(
      AgentErrors.AGENT_BUSY,
      `another pass of this process is applying to ${q(stateDir)}; passes of one node run one at a time`,
    );
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      held.add(file);
      return () => {
        held.delete(file);
        rmSync(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new ExitnodeError(AgentErrors.AGENT_STATE_DIR, `cannot write ${q(file)}: ${(e as Error).message}`);
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (pid > 0 && pid !== process.pid && existsSync(`/proc/${pid}`)) {
        throw new ExitnodeError(
          AgentErrors.AGENT_BUSY,
          `another agent (pid ${pid}) is applying to this node (lock ${q(file)}); try again when it is done`,
        );
      }
      rmSync(file, { force: true });
    }
  }
  throw new ExitnodeError(AgentErrors.AGENT_BUSY, `cannot take the lock ${q(file)}`);
}

/** Makes the node's kernel state what the view says. Safe to call again with the same view. */
export function applyView(view: NodeView, config: NodeConfig, opts: PassOptions = {}): Promise<PassResult> {
  return pass(view, config, opts, true);
}

/** One line of drift: an object that differs, or a failure (its objects and reason). */
export interface DriftItem {
  objects: ObjectRef[];
  text: string;
}

/**
 * CNI-style CHECK: observes and compares; `drift` lists every object that differs (as text),
 * `items` the same as data.
 */
export async function check(
  view: NodeView,
  config: NodeConfig,
  opts: Pick<PassOptions, 'kernel'> = {},
): Promise<{ drift: string[]; items: DriftItem[]; plan: Plan }> {
  const r = await pass(view, config, { ...opts, dryRun: true }, false);
  const items: DriftItem[] = [
    ...r.plan.steps.flatMap((s) => s.objects.map((o) => ({ objects: [o], text: objectText(o) }))),
    ...r.failures.map((f) => ({ objects: f.objects, text: failureText(f) })),
  ];
  return { drift: items.map((d) => d.text), items, plan: r.plan };
}

/** The view of a node that serves nothing: everything owned goes. */
export function emptyView(config: NodeConfig): NodeView {
  return { version: 0, node: { id: config.node }, allocations: [], slots: [], networks: [] };
}

/** Removes every namespace, link, route, nft table, process and key this node owns; nothing else. */
export async function down(config: NodeConfig, opts: PassOptions = {}): Promise<PassResult> {
  const r = await pass(emptyView(config), config, opts, false);
  if (!opts.dryRun && r.failures.length === 0) {
    rmSync(join(config.stateDir, 'view.json'), { force: true });
    // Stage 2: the node key goes too (a node that comes back makes a new one; the first
    // candidates seal their ExitPoint keys to it again).
    rmSync(nodeKeyFile(config.stateDir), { force: true });
  }
  return r;
}

export function viewFile(stateDir: string): string {
  return join(stateDir, 'view.json');
}

/** The last applied view, so that a node restarting while TNoDB is away comes back as it was. */
export function saveView(stateDir: string, view: NodeView): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = join(stateDir, `view.json.${process.pid}`);
  writeFileSync(tmp, JSON.stringify(view) + '\n', { mode: 0o600 });
  renameSync(tmp, viewFile(stateDir));
}

export { planText };
