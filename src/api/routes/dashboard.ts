// What the dashboard (web/, served at /ui/) reads beyond the resources' own routes, and what the
// agents report about themselves for it:
//   GET  /v1/session                               who the token is, and the constants the page needs
//   GET  /v1/farms/{id}/overview                   every slot, node (with its agent's report) and the counts
//   GET  /v1/farms/{id}/networks                   network summaries of a farm (the virtualised list)
//   GET  /v1/allocations/{n}/slots/{slot}/resources every NR of a slot (the slot's virtualised list)
//   GET  /v1/explain?address=X                     explain (src/core/explain.ts) completed by what TNoDB knows
//   POST /v1/nodes/{id}/report                     the agent's own account (applied version, last pass, drift)
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';
import { slotWarning, SLOT_WARN_NRS } from '../context.js';
import { sameFarm } from '../auth.js';
import {
  ExitnodeError,
  allocation as planAllocation,
  checkAllocationNumber,
  checkSlot,
  explain,
  parseAddress,
  parsePrefix,
  Ip6,
  Ip6Prefix,
  q,
} from '../../core/index.js';
import { ROUTER_OSES } from '../../render/index.js';
import { EVENT_KINDS, StoreErrors, type AgentReport, type AllocationRecord } from '../../store/index.js';
import { ApiErrors } from '../errors.js';
import { NAME, NETWORK_ID, NODE_ID, NUMBER_TEXT, errors } from '../schemas.js';

const anyObject = { type: 'object', additionalProperties: true } as const;

export function dashboardRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/session',
    {
      schema: {
        tags: ['dashboard'],
        summary: "The token's scope and subject, with the constants the dashboard needs (router OSes, event kinds)",
        response: { 200: anyObject, ...errors() },
      },
    },
    async (req) => {
      const p = await ctx.auth.principal(req);
      return {
        scope: p.scope,
        subject: p.subject,
        now: ctx.store.options.clock(),
        leaseTtlMs: ctx.store.options.leaseTtlMs,
        warnNrs: SLOT_WARN_NRS,
        routers: ROUTER_OSES,
        eventKinds: EVENT_KINDS,
      };
    },
  );

  const farmParams = { type: 'object', required: ['id'], properties: { id: NAME } } as const;

  async function farmOf(req: Parameters<typeof ctx.auth.need>[0]): Promise<string> {
    const p = await ctx.auth.need(req, ['farm']);
    const { id } = req.params as { id: string };
    sameFarm(p, id);
    if (!(await ctx.store.hasFarm(id)))
      throw new ExitnodeError(StoreErrors.FARM_UNKNOWN, `farm ${q(id)} does not exist`);
    return id;
  }

  app.get(
    '/v1/farms/:id/overview',
    {
      schema: {
        tags: ['dashboard'],
        summary:
          "A farm at a glance (farm, admin): every slot of every allocation (holder, candidates, lease, health, fill, last move, warning), every node with its agent's own report, the counts",
        params: farmParams,
        response: { 200: anyObject, ...errors(403, 404) },
      },
    },
    async (req) => {
      const o = await ctx.store.dashboard.overview(await farmOf(req));
      const warnings: string[] = [];
      for (const a of o.allocations)
        for (const s of a.slots) {
          const w =
            slotWarning(a.number, s.slot, s.nrs) ??
            (s.node && s.leaseExpiresAt !== null && s.leaseExpiresAt <= o.now
              ? `slot ${s.slot} of allocation ${a.number}: the lease of node ${s.node} has lapsed`
              : undefined);
          if (w) {
            (s as { warning?: string }).warning = w;
            warnings.push(w);
          }
        }
      return { ...o, warnings };
    },
  );

  app.get(
    '/v1/farms/:id/networks',
    {
      schema: {
        tags: ['dashboard'],
        summary: 'The tenant networks of a farm, as summaries (farm, admin): slot, ExitPoint and its node, NR count',
        params: farmParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            allocation: { type: 'integer', minimum: 1, maximum: 65535 },
            slot: { type: 'integer', minimum: 1, maximum: 15 },
          },
        },
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                id: { type: 'string' },
                name: { type: 'string' },
                tenant: { type: 'string' },
                allocation: { type: 'integer' },
                slot: { type: 'integer' },
                exit: { type: 'string' },
                exitNode: { type: ['string', 'null'] },
                nrs: { type: 'integer' },
              },
            },
          },
          ...errors(403, 404),
        },
      },
    },
    async (req) => {
      const farm = await farmOf(req);
      return ctx.store.dashboard.networks({ farm }, req.query as { allocation?: number; slot?: number });
    },
  );

  app.get(
    '/v1/allocations/:number/slots/:slot/resources',
    {
      schema: {
        tags: ['dashboard'],
        summary:
          'Every NR of a slot, in id order (farm, admin): network, tenant, node, prefix, ExitPoint or not, key published',
        params: {
          type: 'object',
          required: ['number', 'slot'],
          properties: { number: NUMBER_TEXT, slot: NUMBER_TEXT },
        },
        querystring: { type: 'object', additionalProperties: false, properties: { network: NETWORK_ID } },
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                id: { type: 'string' },
                network: { type: 'string' },
                name: { type: 'string' },
                tenant: { type: 'string' },
                node: { type: 'string' },
                prefix: { type: 'string' },
                exit: { type: 'boolean' },
                key: { type: 'boolean' },
              },
            },
          },
          ...errors(403, 404),
        },
      },
    },
    async (req) => {
      const p = await ctx.auth.need(req, ['farm']);
      const { number, slot } = req.params as { number: string; slot: string };
      const a = await ctx.store.getAllocation(checkAllocationNumber(number));
      if (!a) throw new ExitnodeError(StoreErrors.ALLOCATION_UNKNOWN, `allocation ${number} does not exist`);
      sameFarm(p, a.farm);
      const { network } = req.query as { network?: string };
      return ctx.store.dashboard.slotResources(a.number, checkSlot(slot), network);
    },
  );

  app.get(
    '/v1/explain',
    {
      schema: {
        tags: ['dashboard'],
        summary:
          "What an address or prefix is in the plan, who carries it and the path to it, completed by what TNoDB knows (the NR's network, node and ExitPoint). Farm: its allocations; tenant: its own networks' addresses only",
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['address'],
          properties: {
            address: { type: 'string', minLength: 1, maxLength: 64 },
            allocation: { type: 'integer', minimum: 1, maximum: 65535 },
          },
        },
        response: { 200: anyObject, ...errors(403, 404) },
      },
    },
    async (req) => {
      const p = await ctx.auth.need(req, ['farm', 'tenant']);
      const qs = req.query as { address: string; allocation?: number };
      const text = qs.address.trim();
      let allocs: AllocationRecord[];
      if (p.scope === 'tenant') {
        const nums = [...new Set((await ctx.store.listNetworks(p.subject!)).map((n) => n.allocation))];
        allocs = (await Promise.all(nums.map((n) => ctx.store.getAllocation(n)))).filter(
          (a): a is AllocationRecord => a !== undefined,
        );
      } else allocs = await ctx.store.listAllocations(p.scope === 'farm' ? p.subject! : undefined);
      if (qs.allocation !== undefined) allocs = allocs.filter((a) => a.number === qs.allocation);
      if (!allocs.length)
        throw new ExitnodeError(
          StoreErrors.ALLOCATION_UNKNOWN,
          qs.allocation !== undefined
            ? `allocation ${qs.allocation} does not exist or is not yours`
            : 'no allocation to explain the address in',
        );
      // The allocation whose /48 holds a global IPv6 address or prefix; else (IPv4, link-local:
      // the same in every allocation) the first one.
      let v6: Ip6 | Ip6Prefix | undefined;
      try {
        const x = text.includes('/') ? parsePrefix(text) : parseAddress(text);
        if (x instanceof Ip6Prefix || (x instanceof Ip6 && !x.isLinkLocal())) v6 = x;
      } catch {
        /* explain() below names the syntax error */
      }
      const inside = v6 && allocs.find((x) => planAllocation(x.prefix, x.number).prefix.contains(v6!));
      if (v6 && !inside && p.scope === 'tenant')
        throw new ExitnodeError(StoreErrors.NR_UNKNOWN, `${q(text)} is not an address of your networks`);
      const a = inside || allocs[0]!;
      const plan = planAllocation(a.prefix, a.number);
      let e = explain(plan, text, { upstreamLL: a.upstream.ll });
      const owner = e.nr ? await ctx.store.dashboard.findResource(a.number, parseInt(e.nr, 16)) : undefined;
      if (p.scope === 'tenant' && (!owner || owner.tenant !== p.subject))
        throw new ExitnodeError(
          StoreErrors.NR_UNKNOWN,
          `${q(text)} is not an address of your networks (a tenant token explains its own NRs' addresses only)`,
        );
      if (owner) e = explain(plan, text, { upstreamLL: a.upstream.ll, exit: parseInt(owner.exit, 16) });
      const slot = e.slot !== undefined ? (await ctx.store.listSlots(a.number))[e.slot - 1] : undefined;
      return {
        ...e,
        tnodb: {
          ...(owner ?? {}),
          ...(slot ? { slotHolder: slot.node, epoch: slot.epoch } : {}),
          ...(allocs.length > 1 && !v6 ? { otherAllocations: allocs.slice(1).map((x) => x.number) } : {}),
        },
      };
    },
  );

  app.post(
    '/v1/nodes/:id/report',
    {
      schema: {
        tags: ['nodes'],
        summary:
          "The agent's own account (the node): status, applied and held view versions, last pass, server reachability, last drift repair. Shown by the dashboard; drift repairs and status changes become events",
        params: { type: 'object', required: ['id'], properties: { id: NODE_ID } },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['status', 'appliedVersion', 'viewVersion', 'serverReachable', 'served'],
          properties: {
            status: { type: 'string', enum: ['ok', 'degraded'] },
            appliedVersion: { type: ['integer', 'null'], minimum: 0 },
            viewVersion: { type: ['integer', 'null'], minimum: 0 },
            viewSource: { type: ['string', 'null'], enum: ['saved', 'server', null] },
            serverReachable: { type: 'boolean' },
            lastServerContactAgoMs: { type: ['integer', 'null'], minimum: 0 },
            lastPass: {
              type: ['object', 'null'],
              additionalProperties: false,
              required: ['agoMs', 'ms', 'full', 'size', 'failures'],
              properties: {
                agoMs: { type: 'integer', minimum: 0 },
                ms: { type: 'number', minimum: 0 },
                full: { type: 'boolean' },
                size: { type: 'integer', minimum: 0 },
                failures: { type: 'integer', minimum: 0 },
                version: { type: 'integer', minimum: 0 },
              },
            },
            drift: {
              type: ['object', 'null'],
              additionalProperties: false,
              required: ['seq', 'objects', 'agoMs'],
              properties: {
                seq: { type: 'string', maxLength: 40 },
                objects: { type: 'array', maxItems: 50, items: { type: 'string', maxLength: 120 } },
                version: { type: 'integer', minimum: 0 },
                agoMs: { type: 'integer', minimum: 0 },
              },
            },
            served: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 12 } },
            uptimeS: { type: 'integer', minimum: 0 },
          },
        },
        response: { 204: { type: 'null' }, ...errors(403, 404) },
      },
    },
    async (req, reply) => {
      const p = await ctx.auth.need(req, ['node'], { noAdmin: true });
      const { id } = req.params as { id: string };
      if (p.subject !== id)
        throw new ExitnodeError(ApiErrors.FORBIDDEN, `your token is for node ${q(p.subject)}, not ${q(id)}`);
      if (!(await ctx.store.dashboard.report(id, req.body as AgentReport)))
        throw new ExitnodeError(StoreErrors.NODE_UNKNOWN, `node ${q(id)} does not exist`);
      return reply.code(204).send();
    },
  );
}
