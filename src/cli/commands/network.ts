// exitnode network create|add|rm|delete|show|list: a tenant's networks and their NRs (tenant token).
import { parse, flag, opt, positionals, usageError } from '../args.js';
import { clean, type Io } from '../io.js';
import { table } from '../table.js';
import { clientFrom, clientOptions, CLIENT_USAGE } from '../client.js';
import {
  checkAllocationNumber,
  checkPort,
  checkProtocol,
  checkSourcePrefix,
  ExitnodeError,
  ForwardErrors,
  INBOUND_POLICIES,
  parsePortRange,
  portRangeText,
  q,
} from '../../core/index.js';
import type { InboundPolicyRecord, NetworkRecord, TnodbClient } from '../../client/index.js';

export const summary =
  'tenant networks: create, add/rm an NR on a node, delete, show, list; IPv4 port forwards; the IPv6 inbound policy';
export const usage = `exitnode network create NAME [--allocation N] [--idempotency-key K] | add NETWORK NODE [--idempotency-key K] | rm NETWORK NR | delete NETWORK | show NETWORK | list | forward add NETWORK tcp|udp TARGET:PORT [--port N] [--idempotency-key K] | forward rm NETWORK tcp|udp PORT | forward list NETWORK | policy show NETWORK | policy set NETWORK open|closed | policy allow NETWORK tcp|udp PORT[-PORT] [--from PREFIX] | policy rm NETWORK RULE  ${CLIENT_USAGE}`;

/** TARGET:PORT of a forward, checked here so that bad input never reaches the server. */
function targetOf(v: string): { target: string; targetPort: number } {
  const m = /^([0-9.]+):([^:]+)$/.exec(v);
  if (!m)
    throw new ExitnodeError(ForwardErrors.FORWARD_INVALID, `target ${q(v)} must be IPV4:PORT (e.g. 10.16.1.100:80)`);
  return { target: m[1]!, targetPort: checkPort(m[2], 'target port') };
}

function policyText(p: InboundPolicyRecord): string {
  const head = `network ${p.network}: IPv6 inbound ${p.policy}${p.policy === 'open' ? ' (every port; rules apply once closed)' : ' (only the rules below, replies and the ICMPv6 IPv6 needs)'}`;
  if (!p.rules.length) return `${head}\n  no rules`;
  return [
    head,
    table(
      [
        ['rule', 'protocol', 'ports', 'from'],
        ...p.rules.map((r) => [String(r.id), r.protocol, r.ports, r.source ?? 'any']),
      ],
      '  ',
    ),
  ].join('\n');
}

async function forward(
  c: TnodbClient,
  p: ReturnType<typeof parse>,
  out: (v: unknown, t: string) => void,
): Promise<number> {
  switch (p.positionals[1]) {
    case 'add': {
      const [, , net, proto, target] = positionals(p, ['forward', 'add', 'network', 'protocol', 'target'], usage);
      const port = opt(p, 'port');
      const f = await c.addForward(
        net!,
        {
          protocol: checkProtocol(proto),
          ...targetOf(target!),
          ...(port !== undefined ? { port: checkPort(port, 'public port') } : {}),
        },
        opt(p, 'idempotency-key'),
      );
      out(
        f,
        `forward ${f.protocol} ${f.address}:${f.port} → ${f.target}:${f.targetPort} (network ${f.network}, slot ${f.slot})`,
      );
      return 0;
    }
    case 'rm': {
      const [, , net, proto, port] = positionals(p, ['forward', 'rm', 'network', 'protocol', 'port'], usage);
      const n = checkPort(port, 'port');
      await c.removeForward(net!, checkProtocol(proto), n);
      out({ removed: { protocol: proto, port: n } }, `forward ${proto} ${n} removed`);
      return 0;
    }
    case 'list': {
      const [, , net] = positionals(p, ['forward', 'list', 'network'], usage);
      const all = await c.listForwards(net!);
      out(
        all,
        all.length
          ? table([
              ['protocol', 'public', 'target'],
              ...all.map((f) => [f.protocol, `${f.address}:${f.port}`, `${f.target}:${f.targetPort}`]),
            ])
          : `network ${net} has no forwards`,
      );
      return 0;
    }
    default:
      throw usageError(
        p.positionals[1] === undefined
          ? 'missing forward action'
          : `unknown forward action ${JSON.stringify(p.positionals[1])}`,
        usage,
      );
  }
}

async function policy(
  c: TnodbClient,
  p: ReturnType<typeof parse>,
  out: (v: unknown, t: string) => void,
): Promise<number> {
  switch (p.positionals[1]) {
    case 'show': {
      const [, , net] = positionals(p, ['policy', 'show', 'network'], usage);
      const r = await c.getInbound(net!);
      out(r, policyText(r));
      return 0;
    }
    case 'set': {
      const [, , net, name] = positionals(p, ['policy', 'set', 'network', 'open|closed'], usage);
      if (!INBOUND_POLICIES.includes(name as 'open'))
        throw usageError(`inbound policy ${q(name)} must be "open" or "closed"`, usage);
      const r = await c.setInbound(net!, name!);
      out(r, policyText(r));
      return 0;
    }
    case 'allow': {
      const [, , net, proto, ports] = positionals(p, ['policy', 'allow', 'network', 'protocol', 'ports'], usage);
      const from = opt(p, 'from');
      const r = await c.addInboundRule(net!, {
        protocol: checkProtocol(proto),
        ports: portRangeText(parsePortRange(ports)),
        ...(from !== undefined ? { source: checkSourcePrefix(from) } : {}),
      });
      out(r, `rule ${r.id}: allow ${r.protocol} ${r.ports} from ${r.source ?? 'any'}`);
      return 0;
    }
    case 'rm': {
      const [, , net, rule] = positionals(p, ['policy', 'rm', 'network', 'rule'], usage);
      if (!/^[1-9][0-9]{0,9}$/.test(rule!))
        throw usageError(`rule ${q(rule)} must be a rule number (policy show lists them)`, usage);
      await c.removeInboundRule(net!, Number(rule));
      out({ removed: Number(rule) }, `rule ${rule} removed`);
      return 0;
    }
    default:
      throw usageError(
        p.positionals[1] === undefined
          ? 'missing policy action'
          : `unknown policy action ${JSON.stringify(p.positionals[1])}`,
        usage,
      );
  }
}

/** The API's rule (src/api/routes/networks.ts), checked here: a bad key is the caller's, not the server's. */
function idempotencyKey(p: ReturnType<typeof parse>): string | undefined {
  const k = opt(p, 'idempotency-key');
  if (k !== undefined && !/^[\x21-\x7e]{1,200}$/.test(k))
    throw usageError(
      `--idempotency-key ${JSON.stringify(k)} must be 1 to 200 printable ASCII characters without spaces`,
      usage,
    );
  return k;
}

function show(n: NetworkRecord & { warning?: string }): string {
  return [
    clean(`network ${n.id} (${n.name}): allocation ${n.allocation}, slot ${n.slot}, exit ${n.exit}`),
    table(
      [
        ['NR', 'node', 'prefix', 'key'],
        ...n.resources.map((r) => [r.id + (r.id === n.exit ? '*' : ''), r.node, r.prefix, r.publicKey ?? '-']),
      ],
      '  ',
    ),
    ...(n.warning ? [`warning: ${clean(n.warning)}`] : []),
  ].join('\n');
}

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(
    argv,
    {
      ...clientOptions,
      allocation: { type: 'string' },
      'idempotency-key': { type: 'string' },
      port: { type: 'string' },
      from: { type: 'string' },
    },
    usage,
  );
  const c = clientFrom(p, 'tenant');
  const json = flag(p, 'json');
  const out = (v: unknown, text: string): void => io.out(json ? JSON.stringify(v, null, 2) : text);
  switch (p.positionals[0]) {
    case 'forward':
      return forward(c, p, out);
    case 'policy':
      return policy(c, p, out);
    case 'create': {
      const [, name] = positionals(p, ['create', 'name'], usage);
      const a = opt(p, 'allocation');
      const n = await c.createNetwork(name!, a !== undefined ? checkAllocationNumber(a) : undefined, idempotencyKey(p));
      out(n, show(n));
      return 0;
    }
    case 'add': {
      const [, net, node] = positionals(p, ['add', 'network', 'node'], usage);
      const r = await c.addResource(net!, node!, idempotencyKey(p));
      out(
        r,
        `${clean(`NR ${r.id} on node ${r.node}: ${r.prefix}`)}${r.warning ? `\nwarning: ${clean(r.warning)}` : ''}`,
      );
      return 0;
    }
    case 'rm': {
      const [, net, nr] = positionals(p, ['rm', 'network', 'nr'], usage);
      await c.removeResource(net!, nr!);
      out({ removed: nr }, `NR ${clean(nr)} removed (its id is quarantined before reuse)`);
      return 0;
    }
    case 'delete': {
      const [, net] = positionals(p, ['delete', 'network'], usage);
      await c.deleteNetwork(net!);
      out({ deleted: net }, `network ${clean(net)} deleted`);
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
