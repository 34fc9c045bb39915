// exitnode slot assign: give a slot of an allocation to an exit-capable node (farm token).
import { parse, positionals, flag, usageError } from '../args.js';
import type { Io } from '../io.js';
import { clientFrom, clientOptions, CLIENT_USAGE } from '../../client/cli.js';
import { checkAllocationNumber, checkSlot } from '../../core/index.js';

export const summary = 'give a slot (ExitNode number) of an allocation to an exit-capable node';
export const usage = `exitnode slot assign ALLOCATION SLOT NODE  ${CLIENT_USAGE}`;

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, clientOptions, usage);
  const [verb, a, s, node] = positionals(p, ['assign', 'allocation', 'slot', 'node'], usage);
  if (verb !== 'assign') throw usageError(`unknown action ${JSON.stringify(verb)}`, usage);
  const r = await clientFrom(p).assignSlot(checkAllocationNumber(a!), checkSlot(s!), node!);
  io.out(flag(p, 'json') ? JSON.stringify(r) : `slot ${r.slot} of allocation ${r.allocation} → node ${r.node}, epoch ${r.epoch}${r.ipv4 ? `, GWPubIP4 ${r.ipv4}` : ''}`);
  return 0;
}
