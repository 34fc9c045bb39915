// exitnode tenant create: tenants (admin creates; the tenant token is shown once).
import { parse, positionals, flag, usageError } from '../args.js';
import type { Io } from '../io.js';
import { clientFrom, clientOptions, CLIENT_USAGE } from '../client.js';

export const summary = 'create a tenant (admin); prints its token once';
export const usage = `exitnode tenant create NAME  ${CLIENT_USAGE}`;

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, clientOptions, usage);
  const [verb, name] = positionals(p, ['create', 'name'], usage);
  if (verb !== 'create') throw usageError(`unknown action ${JSON.stringify(verb)}`, usage);
  const r = await clientFrom(p).createTenant(name!);
  io.out(flag(p, 'json') ? JSON.stringify(r) : `tenant ${r.id} created; its token (shown only now):\n${r.token}`);
  return 0;
}
