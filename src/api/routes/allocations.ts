// Allocations (a farm's /48), their slots and the upstream router configuration.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiContext } from '../context.js';
import { sameFarm } from '../auth.js';
import { ExitnodeError, checkAllocationNumber, checkSlot } from '../../core/index.js';
import { StoreErrors, type AllocationRecord, type Ipv4Pool } from '../../store/index.js';
import { renderUpstream } from '../../render/index.js';
import { NAME, NODE_ID, NUMBER_TEXT, allocation, errors, ipv4Pool, slot } from '../schemas.js';

export function allocationRoutes(app: FastifyInstance, ctx: ApiContext): void {
  /** The allocation, if the caller's farm holds it; another farm's answers as one that does not exist. */
  async function own(req: FastifyRequest, numberText: string): Promise<AllocationRecord> {
    const p = await ctx.auth.need(req, ['farm']);
    const n = checkAllocationNumber(numberText);
    const a = await ctx.store.getAllocation(n);
    if (!a || (p.scope === 'farm' && a.farm !== p.subject))
      throw new ExitnodeError(
        StoreErrors.ALLOCATION_UNKNOWN,
        p.scope === 'farm' ? `allocation ${n} does not exist in your farm` : `allocation ${n} does not exist`,
      );
    return a;
  }
  const numberParams = { type: 'object', required: ['number'], properties: { number: NUMBER_TEXT } } as const;

  app.post(
    '/v1/allocations',
    {
      schema: {
        tags: ['allocations'],
        summary: 'Register a /48 for a farm (farm); TNoDB assigns the grid-unique number unless given',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['farm', 'prefix'],
          properties: {
            farm: NAME,
            prefix: { type: 'string', minLength: 1, maxLength: 64 },
            number: { type: 'integer', minimum: 1, maximum: 65535 },
            ipv4: ipv4Pool,
            upstream: {
              type: 'object',
              additionalProperties: false,
              properties: { ll: { type: 'string', maxLength: 64 }, ip6: { type: 'string', maxLength: 64 } },
            },
            // Stage 2 (DESIGN.md 8.2): 'vrrp' gives every slot candidates (default 'lease', stage 1).
            failover: { type: 'string', enum: ['lease', 'vrrp'] },
            candidates: { type: 'integer', minimum: 1, maximum: 8 },
          },
        },
        response: { 201: allocation, ...errors(403, 404, 409) },
      },
    },
    async (req, reply) => {
      const p = await ctx.auth.need(req, ['farm']);
      const b = req.body as {
        farm: string;
        prefix: string;
        number?: number;
        ipv4?: Ipv4Pool;
        upstream?: { ll?: string; ip6?: string };
        failover?: 'lease' | 'vrrp';
        candidates?: number;
      };
      sameFarm(p, b.farm);
      const a = await ctx.store.createAllocation(b);
      return reply.code(201).send(a);
    },
  );

  app.get(
    '/v1/allocations',
    {
      schema: {
        tags: ['allocations'],
        summary: "Allocations (a farm's own; all for admin)",
        response: { 200: { type: 'array', items: allocation }, ...errors(403) },
      },
    },
    async (req) => {
      const p = await ctx.auth.need(req, ['farm']);
      return ctx.store.listAllocations(p.scope === 'farm' ? p.subject! : undefined);
    },
  );

  app.get(
    '/v1/allocations/:number',
    {
      schema: {
        tags: ['allocations'],
        summary: 'An allocation with its slots',
        params: numberParams,
        response: { 200: allocation, ...errors(403, 404) },
      },
    },
    async (req) => {
      const a = await own(req, (req.params as { number: string }).number);
      return { ...a, slots: await ctx.store.listSlots(a.number) };
    },
  );

  app.put(
    '/v1/allocations/:number/slots/:slot',
    {
      schema: {
        tags: ['allocations'],
        summary:
          "Give a slot to an exit-capable node of the farm (farm); a new holder gets epoch + 1. Stage 2 ('vrrp' allocations): {nodes: [n1, n2]} sets the ordered candidates (1 to the allocation's candidates, the first one holds); {node} makes that node first (the list filled from the farm)",
        params: {
          type: 'object',
          required: ['number', 'slot'],
          properties: { number: NUMBER_TEXT, slot: NUMBER_TEXT },
        },
        body: {
          type: 'object',
          additionalProperties: false,
          oneOf: [{ required: ['node'] }, { required: ['nodes'] }],
          properties: { node: NODE_ID, nodes: { type: 'array', minItems: 1, maxItems: 8, items: NODE_ID } },
        },
        response: { 200: slot, ...errors(403, 404, 409) },
      },
    },
    async (req) => {
      const { number, slot: slotText } = req.params as { number: string; slot: string };
      const a = await own(req, number);
      const b = req.body as { node?: string; nodes?: string[] };
      return ctx.store.assignSlot(a.number, checkSlot(slotText), b.nodes ?? b.node!);
    },
  );

  app.post(
    '/v1/allocations/:number/slots/:slot/move',
    {
      schema: {
        tags: ['allocations'],
        summary:
          "Planned move of a slot to another exit-capable node (farm): the holder fences its gateway and releases the slot, then the target builds it (epoch + 1). Stage 2 ('vrrp'): a handover, never a rebuild: the target becomes the first candidate and the master steps down (priority 0) once the target reports BACKUP",
        params: {
          type: 'object',
          required: ['number', 'slot'],
          properties: { number: NUMBER_TEXT, slot: NUMBER_TEXT },
        },
        body: { type: 'object', additionalProperties: false, required: ['to'], properties: { to: NODE_ID } },
        response: { 200: slot, ...errors(403, 404, 409) },
      },
    },
    async (req) => {
      const { number, slot: slotText } = req.params as { number: string; slot: string };
      const a = await own(req, number);
      return ctx.store.moveSlot(a.number, checkSlot(slotText), (req.body as { to: string }).to);
    },
  );

  app.get(
    '/v1/allocations/:number/upstream',
    {
      schema: {
        tags: ['allocations'],
        summary: 'The upstream router configuration for the slots that have a node (text)',
        params: numberParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['router', 'iface'],
          properties: {
            router: { type: 'string', maxLength: 32 },
            iface: { type: 'string', maxLength: 64 },
            via: { type: 'string', enum: ['ll', 'global'] },
          },
        },
        response: { 200: { type: 'string' }, ...errors(403, 404) },
      },
    },
    async (req, reply) => {
      const a = await own(req, (req.params as { number: string }).number);
      const qs = req.query as { router: string; iface: string; via?: 'll' | 'global' };
      const slots = (await ctx.store.listSlots(a.number)).filter((s) => s.node !== null).map((s) => s.slot);
      const text = renderUpstream({
        prefix: a.prefix,
        slots,
        router: qs.router,
        iface: qs.iface,
        ...(qs.via ? { via: qs.via } : {}),
        upstreamLL: a.upstream.ll,
        upstreamIP6: a.upstream.ip6,
      });
      return reply.type('text/plain; charset=utf-8').send(text);
    },
  );
}
