// Port forwards and the IPv6 inbound policy of a network (tenant; admin reads), issue 13.
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';
import { NETWORK_ID, errors } from '../schemas.js';
import { ExitnodeError, ForwardErrors, Ip4, q } from '../../core/index.js';
import { idempotencyKey } from './networks.js';

const PROTOCOL = { type: 'string', maxLength: 8 } as const;
/** Checked by core (checkPort), which names the rule in its message. */
const PORT = { type: 'integer' } as const;

export const forwardSchema = {
  type: 'object',
  properties: {
    network: { type: 'string' },
    allocation: { type: 'integer' },
    slot: { type: 'integer' },
    protocol: { type: 'string' },
    port: { type: 'integer' },
    address: { type: 'string' },
    target: { type: 'string' },
    targetPort: { type: 'integer' },
  },
} as const;

const rule = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    protocol: { type: 'string' },
    ports: { type: 'string' },
    source: { type: 'string' },
  },
} as const;

export const inboundSchema = {
  type: 'object',
  properties: {
    network: { type: 'string' },
    policy: { type: 'string', enum: ['open', 'closed'] },
    rules: { type: 'array', items: rule },
  },
} as const;

export function forwardRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/forwards',
    {
      schema: {
        tags: ['forwards'],
        summary:
          'The forward on GWPubIP4:port, with its network, ExitPoint and allocation (for exitnode explain; tenant: yours, farm: your allocations, admin: all)',
        querystring: {
          type: 'object',
          required: ['address', 'port'],
          properties: { address: { type: 'string', maxLength: 64 }, port: { type: 'string', maxLength: 8 } },
        },
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                ...forwardSchema.properties,
                exit: { type: 'string' },
                prefix: { type: 'string' },
              },
            },
          },
          ...errors(403),
        },
      },
    },
    async (req) => {
      const p = await ctx.auth.need(req, ['tenant', 'farm']);
      const { address, port } = req.query as { address: string; port: string };
      if (!Ip4.tryParse(address))
        throw new ExitnodeError(
          ForwardErrors.FORWARD_INVALID,
          `address ${q(address)} must be an IPv4 address (a GWPubIP4)`,
        );
      const out = [];
      for (const f of await ctx.store.findForward(address, /^[0-9]{1,5}$/.test(port) ? Number(port) : -1)) {
        const net = await ctx.store.getNetwork(f.network, p.scope === 'tenant' ? p.subject! : undefined);
        const alloc = await ctx.store.getAllocation(f.allocation);
        if (!net || !alloc || (p.scope === 'farm' && alloc.farm !== p.subject)) continue;
        out.push({ ...f, exit: net.exit, prefix: alloc.prefix });
      }
      return out;
    },
  );

  const idParams = { type: 'object', required: ['id'], properties: { id: NETWORK_ID } } as const;
  const tenantOf = (p: { scope: string; subject: string | null }): string | undefined =>
    p.scope === 'tenant' ? p.subject! : undefined;

  app.get(
    '/v1/networks/:id/forwards',
    {
      schema: {
        tags: ['forwards'],
        summary: "A network's IPv4 port forwards: GWPubIP4:port of its slot → an NR's address:port",
        params: idParams,
        response: { 200: { type: 'array', items: forwardSchema }, ...errors(403, 404) },
      },
    },
    async (req) => {
      const p = await ctx.auth.need(req, ['tenant']);
      return ctx.store.listForwards((req.params as { id: string }).id, tenantOf(p));
    },
  );

  app.post(
    '/v1/networks/:id/forwards',
    {
      schema: {
        tags: ['forwards'],
        summary:
          "Forward a public port of the network's GWPubIP4 to a workload (tenant): the port asked for if free, else the lowest free one; send Idempotency-Key to make retries safe",
        params: idParams,
        headers: { type: 'object', properties: { 'idempotency-key': { type: 'string' } } },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['protocol', 'target', 'targetPort'],
          properties: {
            protocol: PROTOCOL,
            port: PORT,
            target: { type: 'string', maxLength: 64 },
            targetPort: PORT,
          },
        },
        response: { 201: forwardSchema, ...errors(403, 404, 409) },
      },
    },
    async (req, reply) => {
      const p = await ctx.auth.need(req, ['tenant'], { noAdmin: true });
      const b = req.body as { protocol: string; port?: number; target: string; targetPort: number };
      const key = idempotencyKey(req.headers['idempotency-key']);
      const r = await ctx.store.addForward({
        tenant: p.subject!,
        network: (req.params as { id: string }).id,
        protocol: b.protocol,
        target: b.target,
        targetPort: b.targetPort,
        ...(b.port !== undefined ? { port: b.port } : {}),
        ...(key ? { idempotencyKey: key } : {}),
      });
      if (r.replay) void reply.header('idempotent-replayed', 'true');
      return reply.code(201).send(r.forward);
    },
  );

  app.delete(
    '/v1/networks/:id/forwards/:protocol/:port',
    {
      schema: {
        tags: ['forwards'],
        summary: 'Remove a forward (its nft element goes from the gateway)',
        params: {
          type: 'object',
          required: ['id', 'protocol', 'port'],
          properties: { id: NETWORK_ID, protocol: PROTOCOL, port: { type: 'string', maxLength: 8 } },
        },
        response: { 204: { type: 'null' }, ...errors(403, 404) },
      },
    },
    async (req, reply) => {
      const p = await ctx.auth.need(req, ['tenant'], { noAdmin: true });
      const { id, protocol, port } = req.params as { id: string; protocol: string; port: string };
      await ctx.store.removeForward(p.subject!, id, protocol, port);
      return reply.code(204).send();
    },
  );

  app.get(
    '/v1/networks/:id/inbound',
    {
      schema: {
        tags: ['forwards'],
        summary: "A network's IPv6 inbound policy: open (every port) or closed (only its allow rules)",
        params: idParams,
        response: { 200: inboundSchema, ...errors(403, 404) },
      },
    },
    async (req) => {
      const p = await ctx.auth.need(req, ['tenant']);
      return ctx.store.getInbound((req.params as { id: string }).id, tenantOf(p));
    },
  );

  app.put(
    '/v1/networks/:id/inbound',
    {
      schema: {
        tags: ['forwards'],
        summary: 'Set the IPv6 inbound policy (tenant): open, or closed with the allow rules',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['policy'],
          properties: { policy: { type: 'string', maxLength: 16 } },
        },
        response: { 200: inboundSchema, ...errors(403, 404) },
      },
    },
    async (req) => {
      const p = await ctx.auth.need(req, ['tenant'], { noAdmin: true });
      return ctx.store.setInbound(
        p.subject!,
        (req.params as { id: string }).id,
        (req.body as { policy: string }).policy,
      );
    },
  );

  app.post(
    '/v1/networks/:id/inbound/rules',
    {
      schema: {
        tags: ['forwards'],
        summary: 'Allow a protocol and port (or range) into the network, optionally from one source prefix (tenant)',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['protocol', 'ports'],
          properties: {
            protocol: PROTOCOL,
            ports: { anyOf: [{ type: 'string', maxLength: 16 }, { type: 'integer' }] },
            source: { type: 'string', maxLength: 64 },
          },
        },
        response: { 201: rule, ...errors(403, 404, 409) },
      },
    },
    async (req, reply) => {
      const p = await ctx.auth.need(req, ['tenant'], { noAdmin: true });
      const b = req.body as { protocol: string; ports: string | number; source?: string };
      const r = await ctx.store.addInboundRule({
        tenant: p.subject!,
        network: (req.params as { id: string }).id,
        protocol: b.protocol,
        ports: b.ports,
        ...(b.source !== undefined ? { source: b.source } : {}),
      });
      return reply.code(201).send(r);
    },
  );

  app.delete(
    '/v1/networks/:id/inbound/rules/:rule',
    {
      schema: {
        tags: ['forwards'],
        summary: 'Remove an inbound rule (its nft elements go from the gateway)',
        params: {
          type: 'object',
          required: ['id', 'rule'],
          properties: { id: NETWORK_ID, rule: { type: 'string', maxLength: 12 } },
        },
        response: { 204: { type: 'null' }, ...errors(403, 404) },
      },
    },
    async (req, reply) => {
      const p = await ctx.auth.need(req, ['tenant'], { noAdmin: true });
      const { id, rule: r } = req.params as { id: string; rule: string };
      await ctx.store.removeInboundRule(p.subject!, id, r);
      return reply.code(204).send();
    },
  );
}
