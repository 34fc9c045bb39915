// exitnode tenant create|quota: tenants (admin creates; the tenant token is shown once; the admin
// sets a tenant's quotas).
import { parse, positionals, flag } from '../args.js';
import { clean, type Io } from '../io.js';
import { table } from '../table.js';
import { quotaValue, verbOf } from '../verbs.js';
import { clientFrom, clientOptions, CLIENT_USAGE } from '../client.js';

export const summary = 'create a tenant (admin; prints its token once) or show and set its quotas';
export const usage = `exitnode tenant create NAME | tenant quota NAME [--networks N] [--nrs N] (setting: admin)  ${CLIENT_USAGE}`;

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { ...clientOptions, networks: { type: 'string' }, nrs: { type: 'string' } }, usage);
  const verb = verbOf(p, ['create', 'quota'], usage);
  const [, name] = positionals(p, [verb, 'name'], usage);
  if (verb === 'quota') {
    const limits = { networks: quotaValue(p, 'networks', usage), nrs: quotaValue(p, 'nrs', usage) };
    const set = limits.networks !== undefined || limits.nrs !== undefined;
    const c = clientFrom(p, set ? 'admin' : 'tenant');
    const r = set ? await c.setTenantQuota(name!, limits) : await c.tenantQuota(name!);
    io.out(
      flag(p, 'json')
        ? JSON.stringify(r, null, 2)
        : table([
            ['quota', 'limit', 'used'],
            ['networks', String(r.networks.limit), String(r.networks.used)],
            ['nrs', String(r.nrs.limit), String(r.nrs.used)],
          ]),
    );
    return 0;
  }
  const r = await clientFrom(p, 'admin').createTenant(name!);
  io.out(
    flag(p, 'json')
      ? JSON.stringify(r)
      : `tenant ${clean(r.id)} created; its token (shown only now):\n${clean(r.token)}`,
  );
  return 0;
}
