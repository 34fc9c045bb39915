// Quotas (admin sets them; a tenant or farm reads its own): per tenant networks and NRs, per farm
// allocations and nodes. Enforced in the database (src/store/quotas.ts, 004_quotas.sql).
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';
import { notYourFarm } from '../auth.js';
import { ExitnodeError, q } from '../../core/errors.js';
import { StoreErrors } from '../../store/index.js';
import { MAX_QUOTA } from '../../store/quotas.js';
import { NAME, errors } from '../schemas.js';

const limit = { type: 'integer', minimum: 0, maximum: MAX_QUOTA } as const;
const quota = {
  type: 'object',
  properties: { limit: { type: 'integer' }, used: { type: 'integer' } },
} as const;

export function quotaRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const params = { type: 'object', required: ['id'], properties: { id: NAME } } as const;
  const tenantQuota = { type: 'object', properties: { networks: quota, nrs: quota } } as const;
  const farmQuota = { type: 'object', properties: { allocations: quota, nodes: quota } } as const;

  app.get(
    '/v1/tenants/:id/quota',
    {
      schema: {
        tags: ['tenants'],
        summary: "A tenant's quotas and their use (the tenant, admin)",
        params,
        response: { 200: tenantQuota, ...errors(403, 404) },
      },
    },
    async (req) => {
      const p = await ctx.auth.need(req, ['tenant']);
      const { id } = req.params as { id: string };
      const unknown = new ExitnodeError(StoreErrors.TENANT_UNKNOWN, `tenant ${q(id)} does not exist or is not you`);
      if (p.scope === 'tenant' && p.subject !== id) throw unknown;
      const r = await ctx.store.getTenantQuota(id);
      if (!r) throw unknown;
      return r;
    },
  );

  app.put(
    '/v1/tenants/:id/quota',
    {
      schema: {
        tags: ['tenants'],
        summary:
          "Set a tenant's quotas (admin): networks, NRs; what is in use stays, new ones are refused past a limit",
        params,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { networks: limit, nrs: limit },
        },
        response: { 200: tenantQuota, ...errors(403, 404) },
      },
    },
    async (req) => {
      await ctx.auth.need(req, []);
      return ctx.store.setTenantQuota(
        (req.params as { id: string }).id,
        req.body as { networks?: number; nrs?: number },
      );
    },
  );

  app.get(
    '/v1/farms/:id/quota',
    {
      schema: {
        tags: ['farms'],
        summary: "A farm's quotas and their use (the farm, admin)",
        params,
        response: { 200: farmQuota, ...errors(403, 404) },
      },
    },
    async (req) => {
      const p = await ctx.auth.need(req, ['farm']);
      const { id } = req.params as { id: string };
      if (p.scope === 'farm' && p.subject !== id) throw notYourFarm(p, id);
      const r = await ctx.store.getFarmQuota(id);
      if (!r) throw notYourFarm(p, id);
      return r;
    },
  );

  app.put(
    '/v1/farms/:id/quota',
    {
      schema: {
        tags: ['farms'],
        summary:
          "Set a farm's quotas (admin): allocations, nodes; what is in use stays, new ones are refused past a limit",
        params,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { allocations: limit, nodes: limit },
        },
        response: { 200: farmQuota, ...errors(403, 404) },
      },
    },
    async (req) => {
      await ctx.auth.need(req, []);
      return ctx.store.setFarmQuota(
        (req.params as { id: string }).id,
        req.body as { allocations?: number; nodes?: number },
      );
    },
  );
}
