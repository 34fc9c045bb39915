// `exitnode agent run` and `exitnode agent status` (dispatched from src/cli/commands/agent.ts),
// kept apart so that `agent apply` does not load the daemon.
import { readFileSync } from 'node:fs';
import { ExitnodeError, q } from '../core/errors.js';
import { flag, need, opt, parse, usageError } from '../cli/args.js';
import type { Io } from '../cli/io.js';
import { parseNodeConfig } from './config.js';
import { AgentErrors } from './errors.js';
import { DEFAULT_HEARTBEAT_MS, DEFAULT_RESYNC_MS, runDaemon } from './daemon.js';
import { DEFAULT_AGENT_MARGIN_MS } from './fencing.js';
import { agentStatus, statusOk, statusText } from './status.js';

const usage =
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

function seconds(p: ReturnType<typeof parse>, name: string, def: number): number {
  const v = opt(p, name);
  if (v === undefined) return def * 1000;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 86400)
    throw usageError(`--${name} ${q(v)} must be a number of seconds > 0 (e.g. 60 or 0.5)`, usage);
  return Math.round(n * 1000);
}

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
    usage,
  );
  const config = parseNodeConfig(readFile(need(p, 'config', usage), 'node configuration'));
  if (verb === 'status') {
    const s = await agentStatus(config);
    io.out(flag(p, 'json') ? JSON.stringify(s, null, 2) : statusText(s));
    return statusOk(s) ? 0 : 1;
  }
  const server = need(p, 'server', usage);
  if (!/^https?:\/\/[^\s/]+(\/.*)?$/.test(server))
    throw usageError(`--server ${q(server)} is not an http(s) URL`, usage);
  const tf = opt(p, 'token-file');
  const token = opt(p, 'token') ?? (tf ? readFile(tf, 'token file').trim() : undefined);
  if (!token) throw usageError('give the node token with --token TOKEN or --token-file FILE', usage);
  return runDaemon({
    config,
    server,
    token,
    ...(opt(p, 'metrics') ? { metrics: opt(p, 'metrics')! } : {}),
    resyncMs: seconds(p, 'resync', DEFAULT_RESYNC_MS / 1000),
    heartbeatMs: seconds(p, 'heartbeat', DEFAULT_HEARTBEAT_MS / 1000),
    agentMarginMs: seconds(p, 'fence-margin', DEFAULT_AGENT_MARGIN_MS / 1000),
    healthCheck: !flag(p, 'no-health-check'),
  });
}
