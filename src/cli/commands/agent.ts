// exitnode agent apply|check|down: one pass of the node agent from a view file and a config file;
// exitnode agent run: the daemon (src/agent/daemon.ts); exitnode agent status: what the node holds.
// The daemon and the status report are loaded only for their verbs (`agent apply` does not load them).
import { readFileSync } from 'node:fs';
import { AgentErrors } from '../../agent/errors.js';
import { applyView, check, down, planText, viewFile, type PassResult } from '../../agent/index.js';
import { parseNodeConfig } from '../../agent/config.js';
import { ExitnodeError, q } from '../../core/errors.js';
import { failureText, objectsText } from '../../reconcile/objects.js';
import { parseNodeView } from '../../core/view.js';
import { flag, need, opt, parse, usageError } from '../args.js';
import type { Io } from '../io.js';

export const summary = "node agent: apply a node view to this node's kernel, check it for drift, or take it all down";
export const usage =
  'exitnode agent run --config FILE --server URL --token-file FILE [--metrics HOST:PORT] [--resync S] [--heartbeat S] [--fence-margin S] [--no-health-check] | agent status --config FILE [--json] | agent apply --view FILE --config FILE [--dry-run] [--json] | agent check --config FILE [--view FILE] [--json] | agent down --config FILE [--dry-run] [--json]   (--token TOKEN instead of --token-file shows the token in the process list)';

const runUsage =
  'exitnode agent run --config FILE --server URL (--token TOKEN | --token-file FILE) [--metrics HOST:PORT] [--resync S] [--heartbeat S] [--fence-margin S] [--no-health-check] | agent status --config FILE [--json]';

function readFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ExitnodeError(
      AgentErrors.AGENT_FILE,
      `cannot read the ${what} ${q(path)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

function report(r: PassResult, io: Io, json: boolean, stateDir: string): number {
  if (json) {
    io.out(
      JSON.stringify(
        {
          version: r.version,
          dryRun: r.dryRun,
          size: r.size,
          steps: r.plan.steps,
          failures: r.failures.map((f) => ({ object: objectsText(f.objects), ...f })),
          publicKeys: r.publicKeys,
          timings: r.timings,
        },
        null,
        2,
      ),
    );
  } else if (r.dryRun) {
    io.out(r.size ? planText(r.plan, stateDir) : '# nothing to do: the kernel already holds this view');
  } else {
    io.out(
      `${r.size ? `applied ${r.plan.steps.length} steps (${r.size} commands)` : 'nothing to do'} in ${Math.round(r.timings.compileMs + r.timings.observeMs + r.timings.diffMs + r.timings.applyMs)} ms`,
    );
    for (const [k, v] of Object.entries(r.publicKeys)) io.out(`public key ${k} ${v}`);
    for (const f of r.failures) io.err(`failed: ${failureText(f)}`);
  }
  return r.failures.length ? 1 : 0;
}

function seconds(p: ReturnType<typeof parse>, name: string, def: number): number {
  const v = opt(p, name);
  if (v === undefined) return def * 1000;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 86400)
    throw usageError(`--${name} ${q(v)} must be a number of seconds > 0 (e.g. 60 or 0.5)`, runUsage);
  return Math.round(n * 1000);
}

/** `agent run` and `agent status`: this host's kernel and the wall clock go in here. */
export async function runVerb(verb: 'run' | 'status', argv: string[], io: Io): Promise<number> {
  const p = parse(
    argv,
    {
      config: { type: 'string' },
      server: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      metrics: { type: 'string' },
      resync: { type: 'string' },
      heartbeat: { type: 'string' },
      'fence-margin': { type: 'string' },
      'no-health-check': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    runUsage,
  );
  const config = parseNodeConfig(readFile(need(p, 'config', runUsage), 'node configuration'));
  const { linuxKernel } = await import('../../kernel/linux.js');
  if (verb === 'status') {
    const { agentStatus, statusOk, statusText } = await import('../../agent/status.js');
    const s = await agentStatus(config, linuxKernel);
    io.out(flag(p, 'json') ? JSON.stringify(s, null, 2) : statusText(s));
    return statusOk(s) ? 0 : 1;
  }
  const server = need(p, 'server', runUsage);
  if (!/^https?:\/\/[^\s/]+(\/.*)?$/.test(server))
    throw usageError(`--server ${q(server)} is not an http(s) URL`, runUsage);
  const tf = opt(p, 'token-file');
  const token = opt(p, 'token') ?? (tf ? readFile(tf, 'token file').trim() : undefined);
  if (!token) throw usageError('give the node token with --token TOKEN or --token-file FILE', runUsage);
  const { runDaemon, DEFAULT_HEARTBEAT_MS, DEFAULT_RESYNC_MS } = await import('../../agent/daemon.js');
  const { DEFAULT_AGENT_MARGIN_MS } = await import('../../agent/fencing.js');
  const { systemClock } = await import('../../kernel/clock.js');
  return runDaemon({
    config,
    server,
    token,
    kernel: linuxKernel,
    clock: systemClock,
    ...(opt(p, 'metrics') ? { metrics: opt(p, 'metrics')! } : {}),
    resyncMs: seconds(p, 'resync', DEFAULT_RESYNC_MS / 1000),
    heartbeatMs: seconds(p, 'heartbeat', DEFAULT_HEARTBEAT_MS / 1000),
    agentMarginMs: seconds(p, 'fence-margin', DEFAULT_AGENT_MARGIN_MS / 1000),
    healthCheck: !flag(p, 'no-health-check'),
  });
}

export async function run(argv: string[], io: Io): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === 'run' || verb === 'status') return runVerb(verb, rest, io);
  const p = parse(
    rest,
    { view: { type: 'string' }, config: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
    usage,
  );
  const config = parseNodeConfig(readFile(need(p, 'config', usage), 'node configuration'));
  const json = flag(p, 'json');
  const dryRun = flag(p, 'dry-run');
  if (verb === 'apply') {
    const view = parseNodeView(readFile(need(p, 'view', usage), 'node view'));
    return report(await applyView(view, config, { dryRun }), io, json, config.stateDir);
  }
  if (verb === 'check') {
    const view = parseNodeView(readFile(opt(p, 'view') ?? viewFile(config.stateDir), 'node view'));
    const { drift, plan } = await check(view, config);
    if (json) io.out(JSON.stringify({ drift, steps: plan.steps }, null, 2));
    else if (drift.length) io.out(['drift (what apply would change):', ...drift.map((d) => `  ${d}`)].join('\n'));
    else io.out(`ok: the kernel holds view version ${view.version}`);
    return drift.length ? 1 : 0;
  }
  if (verb === 'down') return report(await down(config, { dryRun }), io, json, config.stateDir);
  throw usageError(verb === undefined ? 'missing verb (apply, check, down)' : `unknown verb ${q(verb)}`, usage);
}
