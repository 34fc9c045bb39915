// exitnode network create|add|rm|delete|show|list: a tenant's networks and their NRs (tenant token).
import { parse, flag, opt, positionals, usageError } from '../args.js';
import type { Io } from '../io.js';
import { table } from '../table.js';
import { clientFrom, clientOptions, CLIENT_USAGE } from '../client.js';
import { checkAllocationNumber } from '../../core/index.js';
import type { NetworkRecord } from '../../client/index.js';

export const summary = 'tenant networks: create, add/rm an NR on a node, delete, show, list';
export const usage = `exitnode network create NAME [--allocation N] [--idempotency-key K] | add NETWORK NODE [--idempotency-key K] | rm NETWORK NR | delete NETWORK | show NETWORK | list  ${CLIENT_USAGE}`;

function show(n: NetworkRecord & { warning?: string }): string {
  return [
    `network ${n.id} (${n.name}): allocation ${n.allocation}, slot ${n.slot}, exit ${n.exit}`,
    table(
      [
        ['NR', 'node', 'prefix', 'key'],
        ...n.resources.map((r) => [r.id + (r.id === n.exit ? '*' : ''), r.node, r.prefix, r.publicKey ?? '-']),
      ],
      '  ',
    ),
    ...(n.warning ? [`warning: ${n.warning}`] : []),
  ].join('\n');
}

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(
    argv,
    { ...clientOptions, allocation: { type: 'string' }, 'idempotency-key': { type: 'string' } },
    usage,
  );
  const c = clientFrom(p);
  const json = flag(p, 'json');
  const out = (v: unknown, text: string): void => io.out(json ? JSON.stringify(v, null, 2) : text);
  switch (p.positionals[0]) {
    case 'create': {
      const [, name] = positionals(p, ['create', 'name'], usage);
      const a = opt(p, 'allocation');
      const n = await c.createNetwork(
        name!,
        a !== undefined ? checkAllocationNumber(a) : undefined,
        opt(p, 'idempotency-key'),
      );
      out(n, show(n));
      return 0;
    }
    case 'add': {
      const [, net, node] = positionals(p, ['add', 'network', 'node'], usage);
      const r = await c.addResource(net!, node!, opt(p, 'idempotency-key'));
      out(r, `NR ${r.id} on node ${r.node}: ${r.prefix}${r.warning ? `\nwarning: ${r.warning}` : ''}`);
      return 0;
    }
    case 'rm': {
      const [, net, nr] = positionals(p, ['rm', 'network', 'nr'], usage);
      await c.removeResource(net!, nr!);
      out({ removed: nr }, `NR ${nr} removed (its id is quarantined before reuse)`);
      return 0;
    }
    case 'delete': {
      const [, net] = positionals(p, ['delete', 'network'], usage);
      await c.deleteNetwork(net!);
      out({ deleted: net }, `network ${net} deleted`);
      return 0;
    }
    case 'show': {
      const [, net] = positionals(p, ['show', 'network'], usage);
      const n = await c.getNetwork(net!);
      out(n, show(n));
      return 0;
    }
    case 'list': {
      positionals(p, ['list'], usage);
      const all = await c.listNetworks();
      out(
        all,
        table([
          ['id', 'name', 'allocation', 'slot', 'exit', 'NRs'],
          ...all.map((n) => [n.id, n.name, String(n.allocation), String(n.slot), n.exit, String(n.resources.length)]),
        ]),
      );
      return 0;
    }
    default:
      throw usageError(
        p.positionals[0] === undefined ? 'missing action' : `unknown action ${JSON.stringify(p.positionals[0])}`,
        usage,
      );
  }
}
