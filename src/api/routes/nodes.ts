// Nodes: registration (farm), heartbeat and view (the node itself), long-poll on the view.
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';
import { issueToken, sameFarm } from '../auth.js';
import { ExitnodeError, q } from '../../core/errors.js';
import { StoreErrors, type HeartbeatReport, type Principal } from '../../store/index.js';
import { ApiErrors } from '../errors.js';
import { NAME, NETWORK_ID, NODE_ID, created, errors, node, nodeView } from '../schemas.js';

const MAX_WAIT_S = 300;
/** A waiting request checks that its client is still there this often. */
const SLICE_MS = 5000;

export function nodeRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const idParams = { type: 'object', required: ['id'], properties: { id: NODE_ID } } as const;

  /** The node itself; its farm and the admin may read too unless `selfOnly`. A node of another
   *  farm gets the answer of a node that does not exist. */
  async function nodeAccess(p: Principal, id: string, selfOnly: boolean): Promise<void> {
    if (p.scope === 'node') {
      if (p.subject !== id)
        throw new ExitnodeError(ApiErrors.FORBIDDEN, `your token is for node ${q(p.subject)}, not ${q(id)}`);
      return;
    }
    if (selfOnly)
      throw new ExitnodeError(ApiErrors.FORBIDDEN, `only node ${q(id)} itself may do this (with its node token)`);
    const n = await ctx.store.getNode(id);
    if (!n || (p.scope === 'farm' && n.farm !== p.subject))
      throw new ExitnodeError(
        StoreErrors.NODE_UNKNOWN,
        p.scope === 'farm' ? `node ${q(id)} does not exist in your farm` : `node ${q(id)} does not exist`,
      );
  }

  app.post(
    '/v1/nodes',
    {
      schema: {
        tags: ['nodes'],
        summary: 'Register a node of a farm (farm); returns the node token, shown once',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['farm', 'id', 'exitCapable'],
          properties: {
            farm: NAME,
            id: NODE_ID,
            publicIPv4: { type: 'string', maxLength: 64 },
            publicIPv6: { type: 'string', maxLength: 64 },
            exitCapable: { type: 'boolean' },
          },
        },
        response: { 201: created, ...errors(403, 404, 409) },
      },
    },
    async (req, reply) => {
      const p = await ctx.auth.need(req, ['farm']);
      const b = req.body as {
        farm: string;
        id: string;
        publicIPv4?: string;
        publicIPv6?: string;
        exitCapable: boolean;
      };
      sameFarm(p, b.farm);
      const n = await ctx.store.createNode(b);
      const token = await issueToken(ctx.store, 'node', n.id);
      return reply.code(201).send({ id: n.id, token });
    },
  );

  app.get(
    '/v1/nodes',
    {
      schema: {
        tags: ['nodes'],
        summary: 'The nodes of a farm (farm, admin)',
        querystring: { type: 'object', additionalProperties: false, properties: { farm: NAME } },
        response: { 200: { type: 'array', items: node }, ...errors(403) },
      },
    },
    async (req) => {
      const p = await ctx.auth.need(req, ['farm']);
      const farm = p.scope === 'farm' ? p.subject! : (req.query as { farm?: string }).farm;
      if (!farm) throw new ExitnodeError(ApiErrors.BAD_REQUEST, 'give ?farm=NAME (an admin token sees every farm)');
      sameFarm(p, farm);
      return ctx.store.listNodes(farm);
    },
  );

  app.get(
    '/v1/nodes/:id',
    {
      schema: {
        tags: ['nodes'],
        summary: 'A node (the node, its farm, admin)',
        params: idParams,
        response: { 200: node, ...errors(403, 404) },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string };
      const p = await ctx.auth.need(req, ['farm', 'node']);
      await nodeAccess(p, id, false);
      const n = await ctx.store.getNode(id);
      if (!n) throw new ExitnodeError(StoreErrors.NODE_UNKNOWN, `node ${q(id)} does not exist`);
      return n;
    },
  );

  app.post(
    '/v1/nodes/:id/heartbeat',
    {
      schema: {
        tags: ['nodes'],
        summary: 'Heartbeat (the node): marks it healthy and renews the leases of the slots it holds',
        params: idParams,
        // A master with many ExitPoints reports many learned endpoints.
        bodyLimit: 1024 * 1024,
        // Optional body: the holder's gateway health per slot (an unhealthy slot is not renewed) and
        // the slots it fenced and releases (planned move or lost health: they move at once).
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: {
            slots: {
              type: 'array',
              maxItems: 64,
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['allocation', 'slot', 'healthy'],
                properties: {
                  allocation: { type: 'integer', minimum: 1, maximum: 65535 },
                  slot: { type: 'integer', minimum: 1, maximum: 15 },
                  healthy: { type: 'boolean' },
                  // Shown in `exitnode slot list`: printable text only (control characters are
                  // refused for every field, src/api/text.ts).
                  reason: { type: 'string', maxLength: 200 },
                },
              },
            },
            release: {
              type: 'array',
              maxItems: 64,
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['allocation', 'slot', 'epoch'],
                properties: {
                  allocation: { type: 'integer', minimum: 1, maximum: 65535 },
                  slot: { type: 'integer', minimum: 1, maximum: 15 },
                  epoch: { type: 'integer', minimum: 0, maximum: 2147483647 },
                },
              },
            },
            // Stage 2: keepalived's state of each candidate gateway of this node (stored for the
            // slots it is a candidate of; two masters make TNoDB order a step-down).
            vrrp: {
              type: 'array',
              maxItems: 256,
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['allocation', 'slot', 'state', 'priority', 'since'],
                properties: {
                  allocation: { type: 'integer', minimum: 1, maximum: 65535 },
                  slot: { type: 'integer', minimum: 1, maximum: 15 },
                  state: { type: 'string', enum: ['MASTER', 'BACKUP', 'FAULT', 'STOPPED'] },
                  priority: { type: 'integer', minimum: 0, maximum: 255 },
                  since: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
                },
              },
            },
            // Stage 2: the endpoints the master's ExitPoints learned from their peers (NAT).
            endpoints: {
              type: 'array',
              maxItems: 8192,
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['network', 'nr', 'endpoint'],
                properties: {
                  network: NETWORK_ID,
                  nr: { type: 'string', minLength: 1, maxLength: 8 },
                  endpoint: { type: 'string', minLength: 1, maxLength: 64 },
                },
              },
            },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              slots: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    allocation: { type: 'integer' },
                    slot: { type: 'integer' },
                    epoch: { type: 'integer' },
                    leaseExpiresAt: { type: 'integer' },
                    movingTo: { type: 'string' },
                  },
                },
              },
              // Server clock and lease TTL, so the node measures its own deadline from its send time.
              now: { type: 'integer' },
              leaseTtlMs: { type: 'integer' },
              fenceMarginMs: { type: 'integer' },
            },
          },
          ...errors(400, 403, 404),
        },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string };
      await nodeAccess(await ctx.auth.need(req, ['node'], { noAdmin: true }), id, true);
      const slots = await ctx.store.heartbeat(id, (req.body ?? {}) as HeartbeatReport);
      return {
        slots,
        now: ctx.store.options.clock(),
        leaseTtlMs: ctx.store.options.leaseTtlMs,
        fenceMarginMs: ctx.store.options.fenceMarginMs,
      };
    },
  );

  app.put(
    '/v1/nodes/:id/node-key',
    {
      schema: {
        tags: ['nodes'],
        summary:
          "Publish the node's own X25519 public key (the node itself): stage 2 seals the shared ExitPoint keys to it",
        params: idParams,
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
      const { id } = req.params as { id: string };
      await nodeAccess(await ctx.auth.need(req, ['node'], { noAdmin: true }), id, true);
      await ctx.store.setNodeKey(id, (req.body as { publicKey: string }).publicKey);
      return reply.code(204).send();
    },
  );

  app.get(
    '/v1/nodes/:id/view',
    {
      schema: {
        tags: ['nodes'],
        summary:
          'The node view (DESIGN.md section 4); with ?after=V waits up to ?wait=S seconds (default 30) for a newer version. Long-polls are limited per token and per server (429 LONG_POLL_LIMIT)',
        params: idParams,
        // Numbers as text with a pattern: query strings are not coerced (no 1e309, no "0x10").
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            after: { type: 'string', pattern: '^[0-9]{1,15}$' },
            wait: { type: 'string', pattern: '^[0-9]{1,3}(\\.[0-9]{1,3})?$' },
          },
        },
        response: { 200: nodeView, ...errors(403, 404, 429) },
      },
    },
    async (req, reply) => {
      const arrived = performance.now();
      const { id } = req.params as { id: string };
      const qs = req.query as { after?: string; wait?: string };
      const after = qs.after === undefined ? undefined : Number(qs.after);
      const wait = qs.wait === undefined ? 30 : Number(qs.wait);
      if (wait > MAX_WAIT_S)
        throw new ExitnodeError(
          ApiErrors.BAD_REQUEST,
          `querystring/wait ${q(qs.wait)} must be at most ${MAX_WAIT_S} (seconds)`,
        );
      await nodeAccess(await ctx.auth.need(req, ['farm', 'node']), id, false);
      // Polls come in bursts: a share per event-loop turn, heartbeats in between (pacer.ts).
      if (after !== undefined) await ctx.pacer.turn();
      let v = await ctx.views.get(id, arrived);
      if (after !== undefined && v.version <= after) {
        // Only a request that waits takes a place (429 when none is left: no socket held).
        const release = ctx.polls.take(ctx.auth.tokenOf(req) ?? '');
        try {
          const deadline = Date.now() + Math.min(wait, ctx.maxWaitS) * 1000;
          let closed = false;
          req.raw.once('close', () => {
            closed = true;
          });
          let seen;
          while (!closed && !ctx.watch.closed) {
            const left = deadline - Date.now();
            if (left <= 0) break;
            // In slices, so that a client that went away stops costing version polls.
            seen = await ctx.watch.waitForVersion(id, after, Math.min(left, SLICE_MS));
            if (seen) break;
          }
          // Every waiter woken by one version gets the same bytes, built once (src/api/views.ts).
          v = seen ? await ctx.views.get(id, seen.at, seen.version) : await ctx.views.get(id, performance.now());
        } finally {
          release();
        }
      }
      return reply.type('application/json; charset=utf-8').send(v.body);
    },
  );
}
