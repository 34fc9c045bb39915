// The farm's history (issue 12): GET /v1/events (a page of history, or a tail with a long-poll) and
// GET /v1/events/stream (Server-Sent Events). Scoped like everything else: a farm token sees its
// farm's events, a tenant token its own networks' and NRs', the admin every farm's (or one with
// ?farm=); node tokens see none.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiContext } from '../context.js';
import { sameFarm } from '../auth.js';
import { ExitnodeError, checkAllocationNumber, checkSlot, q } from '../../core/index.js';
import { MAX_EVENTS_PAGE, type EventFilter, type Principal } from '../../store/index.js';
import { ApiErrors } from '../errors.js';
import { queryNumbers } from '../query-numbers.js';
import { NAME, NETWORK_ID, NODE_ID, errors } from '../schemas.js';

/** Upper bound of one long-poll wait (seconds). */
const MAX_WAIT_S = 60;
/** A stream sends a comment this often, so that proxies and the page see it alive. */
const KEEPALIVE_MS = 15_000;

export const eventSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    at: { type: 'integer' },
    kind: { type: 'string' },
    farm: { type: 'string' },
    tenant: { type: 'string' },
    allocation: { type: 'integer' },
    slot: { type: 'integer' },
    node: { type: 'string' },
    network: { type: 'string' },
    nr: { type: 'string' },
    data: { type: 'object', additionalProperties: true },
    text: { type: 'string' },
  },
} as const;

const filterQuery = {
  farm: NAME,
  kind: { type: 'string', maxLength: 400, description: 'kinds, comma-separated; "slot.*" matches a prefix' },
  slot: { type: 'string', maxLength: 12, description: 'a slot: "A/E", or E with ?allocation=A' },
  allocation: { type: 'integer', minimum: 1, maximum: 65535 },
  node: NODE_ID,
  network: NETWORK_ID,
  since: { type: 'integer', minimum: 0, description: 'ms since the epoch' },
  until: { type: 'integer', minimum: 0, description: 'ms since the epoch' },
} as const;

interface FilterQuery {
  farm?: string;
  kind?: string;
  slot?: string;
  allocation?: number;
  node?: string;
  network?: string;
  since?: number;
  until?: number;
}

/** The caller's scope and the query's filters as one store filter. */
export function eventFilter(p: Principal, qs: FilterQuery): EventFilter {
  const f: EventFilter = {};
  if (p.scope === 'farm') {
    if (qs.farm !== undefined) sameFarm(p, qs.farm);
    f.farm = p.subject!;
  } else if (p.scope === 'tenant') {
    if (qs.farm !== undefined)
      throw new ExitnodeError(ApiErrors.FORBIDDEN, 'a tenant token sees its own events only; leave out ?farm');
    f.tenant = p.subject!;
  } else if (p.scope === 'admin') {
    if (qs.farm !== undefined) f.farm = qs.farm;
  } else {
    throw new ExitnodeError(ApiErrors.FORBIDDEN, `a ${p.scope} token cannot read events; use a farm or tenant token`);
  }
  if (qs.kind) {
    const kinds = qs.kind
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean);
    for (const k of kinds)
      if (!/^[a-z][a-z0-9._-]{0,40}\*?$/.test(k))
        throw new ExitnodeError(
          ApiErrors.BAD_REQUEST,
          `event kind ${q(k)} is not a kind (e.g. slot.moved, failover, node.*); see docs/events.md`,
        );
    f.kinds = kinds;
  }
  if (qs.allocation !== undefined) f.allocation = checkAllocationNumber(qs.allocation);
  if (qs.slot !== undefined) {
    const m = /^(?:(\d{1,5})\/)?(\d{1,2})$/.exec(qs.slot);
    if (!m)
      throw new ExitnodeError(ApiErrors.BAD_REQUEST, `slot ${q(qs.slot)} must be "A/E" (allocation/slot) or a slot E`);
    if (m[1] !== undefined) f.allocation = checkAllocationNumber(m[1]);
    f.slot = checkSlot(m[2]!);
  }
  if (qs.node !== undefined) f.node = qs.node;
  if (qs.network !== undefined) f.network = qs.network;
  if (qs.since !== undefined) f.since = qs.since;
  if (qs.until !== undefined) f.until = qs.until;
  return f;
}

export function eventRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/events',
    {
      preValidation: queryNumbers('allocation', 'since', 'until', 'after', 'before', 'limit', 'wait'),
      schema: {
        tags: ['events'],
        summary:
          "The farm's events (farm: its farm; tenant: its networks; admin: all or ?farm=), filtered by kind, slot, node, network and time. Without ?after: the newest page (older with ?before=ID). With ?after=ID: the events after it, oldest first; with ?wait=S the request waits up to S seconds for one",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...filterQuery,
            after: { type: 'integer', minimum: 0 },
            before: { type: 'integer', minimum: 1 },
            limit: { type: 'integer', minimum: 1, maximum: MAX_EVENTS_PAGE },
            wait: { type: 'number', minimum: 0, maximum: MAX_WAIT_S },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              events: { type: 'array', items: eventSchema },
              next: { type: 'integer', description: 'tail from here: ?after=next' },
              more: { type: 'boolean', description: 'the limit cut this page' },
            },
          },
          ...errors(403),
        },
      },
    },
    async (req) => {
      const qs = req.query as FilterQuery & { after?: number; before?: number; limit?: number; wait?: number };
      const p = await ctx.auth.need(req, ['farm', 'tenant']);
      const f: EventFilter = {
        ...eventFilter(p, qs),
        ...(qs.after !== undefined ? { after: qs.after } : {}),
        ...(qs.before !== undefined ? { before: qs.before } : {}),
        ...(qs.limit !== undefined ? { limit: qs.limit } : {}),
      };
      let page = await ctx.store.events.list(f);
      if (qs.after === undefined || !qs.wait || page.events.length) return page;
      const deadline = Date.now() + Math.min(qs.wait, MAX_WAIT_S) * 1000;
      let gone = false;
      req.raw.once('close', () => {
        gone = true;
      });
      // Other farms' events move the head too: read again each time it moves, until one is ours.
      while (!gone && !ctx.events.closed && !page.events.length) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        if (!(await ctx.events.wait(page.next, left))) break;
        page = await ctx.store.events.list({ ...f, after: page.next });
      }
      return page;
    },
  );

  app.get(
    '/v1/events/stream',
    {
      preValidation: queryNumbers('allocation', 'since', 'until', 'after'),
      schema: {
        tags: ['events'],
        summary:
          'The same events as a Server-Sent Events stream (text/event-stream), each "id: N" and "data: {event}"; from ?after=ID or the Last-Event-ID header, else from now. Filters as GET /v1/events',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { ...filterQuery, after: { type: 'integer', minimum: 0 } },
        },
        headers: { type: 'object', properties: { 'last-event-id': { type: 'string', maxLength: 20 } } },
        response: { 200: { type: 'string', description: 'text/event-stream' }, ...errors(403) },
      },
    },
    async (req, reply) => stream(req, reply, ctx),
  );
}

async function stream(req: FastifyRequest, reply: FastifyReply, ctx: ApiContext): Promise<void> {
  const qs = req.query as FilterQuery & { after?: number };
  const p = await ctx.auth.need(req, ['farm', 'tenant']);
  const filter = eventFilter(p, qs);
  const last = req.headers['last-event-id'];
  let cursor =
    typeof last === 'string' && /^\d{1,18}$/.test(last) ? Number(last) : (qs.after ?? (await ctx.store.events.head()));
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  });
  let open = true;
  let wake: (() => void) | undefined;
  const end = (): void => {
    if (!open) return;
    open = false;
    wake?.();
    res.end();
  };
  const unregister = ctx.events.onClose(end);
  req.raw.once('close', end);
  // retry: how long a browser's EventSource waits before it reconnects.
  res.write(`retry: 2000\n: exitnode events from ${cursor}\n\n`);
  try {
    while (open) {
      const page = await ctx.store.events.list({ ...filter, after: cursor, limit: MAX_EVENTS_PAGE });
      if (page.events.length) res.write(page.events.map((e) => `id: ${e.id}\ndata: ${JSON.stringify(e)}\n\n`).join(''));
      cursor = page.next;
      if (page.more) continue;
      const moved = await Promise.race([
        ctx.events.wait(cursor, KEEPALIVE_MS),
        new Promise<boolean>((r) => (wake = () => r(false))),
      ]);
      if (!moved && open) res.write(': keep-alive\n\n');
    }
  } catch (e) {
    req.log.error({ err: e }, 'event stream failed');
  } finally {
    unregister();
    end();
  }
}
