// exitnode agent apply|check|down: one pass of the node agent from a view file and a config file.
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
  'exitnode agent run --config FILE --server URL --token TOKEN [--metrics HOST:PORT] [--resync S] [--heartbeat S] | agent status --config FILE [--json] | agent apply --view FILE --config FILE [--dry-run] [--json] | agent check --config FILE [--view FILE] [--json] | agent down --config FILE [--dry-run] [--json]';

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

export async function run(argv: string[], io: Io): Promise<number> {
  const [verb, ...rest] = argv;
  // The daemon and the status report live in their own modules (src/agent/daemon.ts, status.ts).
  if (verb === 'run' || verb === 'status') return (await import('../../agent/daemon-cli.js')).runVerb(verb, rest, io);
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
