// exitnode allocation add|show|list: a farm's /48s (farm token).
import { parse, positionals, flag, need, opt, usageError } from '../args.js';
import { clean, type Io } from '../io.js';
import { table } from '../table.js';
import { clientFrom, clientOptions, CLIENT_USAGE } from '../client.js';
import { checkAllocationNumber } from '../../core/index.js';

export const summary = "register a farm's /48 (TNoDB assigns its grid-unique number), show or list allocations";
export const usage = `exitnode allocation add PREFIX/48 --farm F [--number N] [--ipv4 A,B,… --ipv4-prefix-length L --ipv4-gateway G] [--upstream-ll LL] [--upstream-ip6 IP] [--failover lease|vrrp] [--candidates N] | allocation show N | allocation list  ${CLIENT_USAGE}`;

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(
    argv,
    {
      ...clientOptions,
      farm: { type: 'string' },
      number: { type: 'string' },
      ipv4: { type: 'string' },
      'ipv4-prefix-length': { type: 'string' },
      'ipv4-gateway': { type: 'string' },
      'upstream-ll': { type: 'string' },
      'upstream-ip6': { type: 'string' },
      failover: { type: 'string' },
      candidates: { type: 'string' },
    },
    usage,
  );
  const c = clientFrom(p, 'farm');
  const json = flag(p, 'json');
  const verb = p.positionals[0];
  if (verb === 'list') {
    positionals(p, ['list'], usage);
    const all = await c.listAllocations();
    io.out(
      json
        ? JSON.stringify(all, null, 2)
        : table([['number', 'prefix', 'farm'], ...all.map((a) => [String(a.number), a.prefix, a.farm])]),
    );
    return 0;
  }
  if (verb === 'show') {
    const [, n] = positionals(p, ['show', 'number'], usage);
    const a = await c.getAllocation(checkAllocationNumber(n!));
    if (json) {
      io.out(JSON.stringify(a, null, 2));
      return 0;
    }
    io.out(
      [
        clean(
          `allocation ${a.number}: ${a.prefix} (farm ${a.farm}), upstream ${a.upstream.ll} / ${a.upstream.ip6}${a.ipv4 ? `, IPv4 gateway ${a.ipv4.gateway}/${a.ipv4.prefixLength}` : ''}, failover ${a.failover ?? 'lease'}${a.failover === 'vrrp' ? ` (${a.candidates} candidates per slot)` : ''}`,
        ),
        table(
          [
            ['slot', 'node', 'epoch', 'NRs', 'ipv4'],
            ...a.slots
              .filter((s) => s.node || s.nrs)
              .map((s) => [String(s.slot), s.node ?? '-', String(s.epoch), String(s.nrs), s.ipv4 ?? '-']),
          ],
          '  ',
        ),
      ].join('\n'),
    );
    return 0;
  }
  if (verb !== 'add')
    throw usageError(verb === undefined ? 'missing action' : `unknown action ${JSON.stringify(verb)}`, usage);
  const [, prefix] = positionals(p, ['add', 'prefix/48'], usage);
  const ipv4 = opt(p, 'ipv4');
  const pl = opt(p, 'ipv4-prefix-length');
  const gw = opt(p, 'ipv4-gateway');
  if (ipv4 !== undefined && (pl === undefined || gw === undefined))
    throw usageError('--ipv4 needs --ipv4-prefix-length and --ipv4-gateway', usage);
  if (pl !== undefined && !/^\d{1,2}$/.test(pl))
    throw usageError(`--ipv4-prefix-length ${JSON.stringify(pl)} must be a number from 1 to 32`, usage);
  const number = opt(p, 'number');
  const failover = opt(p, 'failover');
  if (failover !== undefined && failover !== 'lease' && failover !== 'vrrp')
    throw usageError(`--failover ${JSON.stringify(failover)} must be lease or vrrp`, usage);
  const cands = opt(p, 'candidates');
  if (cands !== undefined && !/^[1-8]$/.test(cands))
    throw usageError(`--candidates ${JSON.stringify(cands)} must be a number from 1 to 8`, usage);
  const up = {
    ...(opt(p, 'upstream-ll') ? { ll: opt(p, 'upstream-ll') } : {}),
    ...(opt(p, 'upstream-ip6') ? { ip6: opt(p, 'upstream-ip6') } : {}),
  };
  const a = await c.addAllocation({
    farm: need(p, 'farm', usage),
    prefix: prefix!,
    ...(number !== undefined ? { number: checkAllocationNumber(number) } : {}),
    ...(ipv4 !== undefined
      ? { ipv4: { addresses: ipv4.split(',').filter(Boolean), prefixLength: Number(pl), gateway: gw! } }
      : {}),
    ...(Object.keys(up).length ? { upstream: up } : {}),
    ...(failover !== undefined ? { failover } : {}),
    ...(cands !== undefined ? { candidates: Number(cands) } : {}),
  });
  io.out(json ? JSON.stringify(a) : clean(`allocation ${a.number}: ${a.prefix} registered for farm ${a.farm}`));
  return 0;
}
