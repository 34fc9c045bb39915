// Farms and tenants: created by the admin, each with its own token.
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';
import { slotWarning } from '../context.js';
import { issueToken, notYourFarm, sameFarm } from '../auth.js';
import { NAME, created, errors, allocation, node } from '../schemas.js';

export function farmRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const body = { type: 'object', additionalProperties: false, required: ['name'], properties: { name: NAME } } as const;

  app.post(
    '/v1/farms',
    {
      schema: {
        tags: ['farms'],
        summary: 'Create a farm (admin); returns the farm token, shown once',
        body,
        response: { 201: created, ...errors(403, 409) },
      },
    },
    async (req, reply) => {
      await ctx.auth.need(req, [], {});
      const { name } = req.body as { name: string };
      await ctx.store.createFarm(name);
      const token = await issueToken(ctx.store, 'farm', name);
      return reply.code(201).send({ id: name, token });
    },
  );

  app.post(
    '/v1/tenants',
    {
      schema: {
        tags: ['tenants'],
        summary: 'Create a tenant (admin); returns the tenant token, shown once',
        body,
        response: { 201: created, ...errors(403, 409) },
      },
    },
    async (req, reply) => {
      await ctx.auth.need(req, [], {});
      const { name } = req.body as { name: string };
      await ctx.store.createTenant(name);
      const token = await issueToken(ctx.store, 'tenant', name);
      return reply.code(201).send({ id: name, token });
    },
  );

  app.get(
    '/v1/farms/:id',
    {
      schema: {
        tags: ['farms'],
        summary: "A farm's status: allocations with their slots, nodes and warnings (farm, admin)",
        params: { type: 'object', properties: { id: NAME }, required: ['id'] },
        response: {
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              allocations: { type: 'array', items: allocation },
              nodes: { type: 'array', items: node },
              warnings: { type: 'array', items: { type: 'string' } },
            },
          },
          ...errors(403, 404),
        },
      },
    },
    async (req) => {
      const p = await ctx.auth.need(req, ['farm']);
      const { id } = req.params as { id: string };
      sameFarm(p, id);
      if (!(await ctx.store.hasFarm(id))) throw notYourFarm(p, id);
      const allocs = await ctx.store.listAllocations(id);
      const nodes = await ctx.store.listNodes(id);
      const warnings: string[] = [];
      const withSlots = [];
      for (const a of allocs) {
        const slots = (await ctx.store.listSlots(a.number))
          .filter((s) => s.node !== null || s.nrs > 0)
          .map((s) => {
            const warning = slotWarning(a.number, s.slot, s.nrs);
            if (warning) warnings.push(warning);
            if (s.node && s.leaseExpiresAt !== null && s.leaseExpiresAt <= ctx.store.options.clock())
              warnings.push(
                `slot ${s.slot} of allocation ${a.number}: the lease of node ${s.node} has lapsed and no other healthy exit-capable node can take it`,
              );
            return { ...s, ...(warning ? { warning } : {}) };
          });
        withSlots.push({ ...a, slots });
      }
      return { id, allocations: withSlots, nodes, warnings };
    },
  );
}
