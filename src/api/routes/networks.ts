// Tenant networks and their NRs (tenant), and the WireGuard keys of NRs (the hosting node).
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';
import { slotWarning } from '../context.js';
import { ExitnodeError, q } from '../../core/errors.js';
import { StoreErrors } from '../../store/index.js';
import { ApiErrors } from '../errors.js';
import { NETWORK_ID, NODE_ID, NR_ID, errors, network, resource } from '../schemas.js';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

export function idempotencyKey(v: unknown): string | undefined {
  if (v !== undefined && (typeof v !== 'string' || !IDEMPOTENCY_KEY.test(v))) {
    throw new ExitnodeError(
      ApiErrors.BAD_REQUEST,
      `Idempotency-Key ${q(v)} must be 1 to 200 printable ASCII characters without spaces`,
    );
  }
  return v;
}

export function networkRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const idParams = { type: 'object', required: ['id'], properties: { id: NETWORK_ID } } as const;
  const nrParams = { type: 'object', required: ['id', 'nr'], properties: { id: NETWORK_ID, nr: NR_ID } } as const;

  app.post(
    '/v1/networks',
    {
      schema: {
        tags: ['networks'],
        summary:
          "Create a tenant network (tenant) on the healthy slot with the fewest NRs, with its ExitPoint NR on that slot's node; send Idempotency-Key to make retries safe",
        headers: { type: 'object', properties: { 'idempotency-key': { type: 'string' } } },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 63 },
            allocation: { type: 'integer', minimum: 1, maximum: 65535 },
          },
        },
        response: { 201: network, ...errors(403, 404, 409) },
      },
    },
    async (req, reply) => {
      const p = await ctx.auth.need(req, ['tenant'], { noAdmin: true });
      const b = req.body as { name: string; allocation?: number };
      const key = idempotencyKey(req.headers['idempotency-key']);
      const {
        network: n,
        slotNrs,
        replay,
      } = await ctx.store.createNetwork({
        tenant: p.subject!,
        name: b.name,
        ...(b.allocation !== undefined ? { allocation: b.allocation } : {}),
        ...(key ? { idempotencyKey: key } : {}),
      });
      if (replay) void reply.header('idempotent-replayed', 'true');
      const warning = slotWarning(n.allocation, n.slot, slotNrs);
      return reply.code(201).send({ ...n, ...(warning ? { warning } : {}) });
    },
  );

  app.get(
    '/v1/networks',
    {
      schema: {
        tags: ['networks'],
        summary: 'Your networks (tenant; admin: all)',
        response: { 200: { type: 'array', items: network }, ...errors(403) },
      },
    },
    async (req) => {
      const p = await ctx.auth.need(req, ['tenant']);
      return ctx.store.listNetworks(p.scope === 'tenant' ? p.subject! : undefined);
    },
  );

  app.get(
    '/v1/networks/:id',
    {
      schema: {
        tags: ['networks'],
        summary: 'A network of yours with every NR',
        params: idParams,
        response: { 200: network, ...errors(403, 404) },
      },
    },
    async (req) => {
      const p = await ctx.auth.need(req, ['tenant']);
      const { id } = req.params as { id: string };
      const n = await ctx.store.getNetwork(id, p.scope === 'tenant' ? p.subject! : undefined);
      if (!n) throw new ExitnodeError(StoreErrors.NETWORK_UNKNOWN, `network ${q(id)} does not exist or is not yours`);
      return n;
    },
  );

  app.delete(
    '/v1/networks/:id',
    {
      schema: {
        tags: ['networks'],
        summary: 'Delete a network with all its NRs (their ids go to quarantine)',
        params: idParams,
        response: { 204: { type: 'null' }, ...errors(403, 404) },
      },
    },
    async (req, reply) => {
      const p = await ctx.auth.need(req, ['tenant'], { noAdmin: true });
      await ctx.store.deleteNetwork(p.subject!, (req.params as { id: string }).id);
      return reply.code(204).send();
    },
  );

  app.post(
    '/v1/networks/:id/resources',
    {
      schema: {
        tags: ['networks'],
        summary:
          "Add an NR on a node (tenant): the lowest free id of the network's slot; send Idempotency-Key to make retries safe",
        params: idParams,
        headers: { type: 'object', properties: { 'idempotency-key': { type: 'string' } } },
        body: { type: 'object', additionalProperties: false, required: ['node'], properties: { node: NODE_ID } },
        response: { 201: resource, ...errors(403, 404, 409) },
      },
    },
    async (req, reply) => {
      const p = await ctx.auth.need(req, ['tenant'], { noAdmin: true });
      const key = idempotencyKey(req.headers['idempotency-key']);
      const r = await ctx.store.addResource({
        tenant: p.subject!,
        network: (req.params as { id: string }).id,
        node: (req.body as { node: string }).node,
        ...(key ? { idempotencyKey: key } : {}),
      });
      const warning = slotWarning(r.allocation, r.slot, r.slotNrs);
      if (r.replay) void reply.header('idempotent-replayed', 'true');
      return reply.code(201).send({ ...r.resource, ...(warning ? { warning } : {}) });
    },
  );

  app.delete(
    '/v1/networks/:id/resources/:nr',
    {
      schema: {
        tags: ['networks'],
        summary: 'Remove an NR (not the ExitPoint: delete the network for that); its id goes to quarantine',
        params: nrParams,
        response: { 204: { type: 'null' }, ...errors(403, 404, 409) },
      },
    },
    async (req, reply) => {
      const p = await ctx.auth.need(req, ['tenant'], { noAdmin: true });
      const { id, nr } = req.params as { id: string; nr: string };
      await ctx.store.removeResource(p.subject!, id, nr);
      return reply.code(204).send();
    },
  );

  app.put(
    '/v1/networks/:id/resources/:nr/key',
    {
      schema: {
        tags: ['networks'],
        summary: 'Publish the WireGuard public key of an NR (the node hosting it)',
        params: nrParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['publicKey'],
          properties: { publicKey: { type: 'string', maxLength: 100 } },
        },
        response: { 204: { type: 'null' }, ...errors(403, 404) },
      },
    },
    async (req, reply) => {
      const p = await ctx.auth.need(req, ['node'], { noAdmin: true });
      const { id, nr } = req.params as { id: string; nr: string };
      await ctx.store.setKey(p.subject!, id, nr, (req.body as { publicKey: string }).publicKey);
      return reply.code(204).send();
    },
  );

  app.put(
    '/v1/networks/:id/resources/:nr/sealed',
    {
      schema: {
        tags: ['networks'],
        summary:
          "Stage 2: store an ExitPoint's private key sealed to other exit-capable nodes of the farm (the node hosting the ExitPoint; ciphertext only, src/core/seal.ts)",
        params: nrParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['keys'],
          properties: {
            keys: {
              type: 'array',
              minItems: 1,
              maxItems: 256,
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['node', 'sealed'],
                properties: { node: NODE_ID, sealed: { type: 'string', maxLength: 200 } },
              },
            },
          },
        },
        response: { 204: { type: 'null' }, ...errors(403, 404, 409) },
      },
    },
    async (req, reply) => {
      const p = await ctx.auth.need(req, ['node'], { noAdmin: true });
      const { id, nr } = req.params as { id: string; nr: string };
      await ctx.store.setSealedKeys(
        p.subject!,
        id,
        nr,
        (req.body as { keys: { node: string; sealed: string }[] }).keys,
      );
      return reply.code(204).send();
    },
  );
}
