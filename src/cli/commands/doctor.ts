// exitnode doctor: preflight for an ExitNode (tools, WireGuard, neighbour table, pid_max, NICs, config).
import { readFileSync } from 'node:fs';
import { parseNodeConfig } from '../../agent/config.js';
import { doctor } from '../../agent/doctor.js';
import { AgentErrors } from '../../agent/errors.js';
import { ExitnodeError, q } from '../../core/errors.js';
import { flag, opt, parse, usageError } from '../args.js';
import type { Io } from '../io.js';
import { table } from '../table.js';

export const summary =
  'preflight for an ExitNode: tools, WireGuard, neighbour table and pid_max against N NRs, NICs, config';
export const usage = 'exitnode doctor [--config FILE] [--expect-nrs N] [--json]';

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(
    argv,
    { config: { type: 'string' }, 'expect-nrs': { type: 'string' }, json: { type: 'boolean' } },
    usage,
  );
  const nText = opt(p, 'expect-nrs');
  if (nText !== undefined && !/^(0|[1-9]\d{0,5})$/.test(nText))
    throw usageError(`--expect-nrs ${q(nText)} is not a whole number of NRs (0-999999)`, usage);
  const file = opt(p, 'config');
  let config;
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ExitnodeError(
        AgentErrors.AGENT_FILE,
        `cannot read the node configuration ${q(file)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
    config = parseNodeConfig(text);
  }
  const findings = await doctor({ config, expectNrs: nText === undefined ? undefined : Number(nText) });
  if (flag(p, 'json')) io.out(JSON.stringify(findings, null, 2));
  else {
    io.out(table(findings.map((f) => [f.status.toUpperCase(), f.check, f.finding])));
    const fixes = findings.filter((f) => f.fix);
    if (fixes.length) io.out(['', 'to change:', ...fixes.map((f) => `  ${f.check}: ${f.fix}`)].join('\n'));
  }
  return findings.some((f) => f.status === 'fail') ? 1 : 0;
}
