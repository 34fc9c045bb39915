// The TNoDB HTTP API: Fastify with a JSON schema on every route, the API reference at /docs (the
// OpenAPI document at /docs/json), errors as {error: {code, message}} with 4xx for the caller's
// mistakes and never a stack trace.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import rateLimit from '@fastify/rate-limit';
import { docsRoutes } from './docs.js';
import { versionCheck } from './version.js';
import { VERSION } from '../core/version.js';
import { ExitnodeError, isExitnodeError, catalog } from '../core/errors.js';
import type { Store } from '../store/index.js';
import { Auth } from './auth.js';
import { ApiErrors } from './errors.js';
import { Metrics, renderMetrics } from './metrics.js';
import { errorBody } from './schemas.js';
import { ViewWatch } from './watch.js';
import { ViewCache } from './views.js';
import { PollLimits, spreadRetry } from './polls.js';
import { Pacer } from './pacer.js';
import { refuseControl } from './text.js';
import { quotaRoutes } from './routes/quotas.js';
import type { ApiContext } from './context.js';
import { farmRoutes } from './routes/farms.js';
import { allocationRoutes } from './routes/allocations.js';
import { nodeRoutes } from './routes/nodes.js';
import { networkRoutes } from './routes/networks.js';
import { forwardRoutes } from './routes/forwards.js';
import { eventRoutes } from './routes/events.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { EventWatch } from './event-watch.js';
import { uiRoutes } from './ui.js';

export interface AppOptions {
  store: Store;
  /** Fastify's logger (pino) options; off by default. */
  logger?: boolean | object;
  bodyLimit?: number;
  /** Upper bound of a view long-poll's wait, in seconds (default 300; the fuzz test lowers it). */
  maxWaitS?: number;
  /** Concurrent view long-polls per token (default 32) and on the whole server (default 4096). */
  maxPollsPerToken?: number;
  maxPolls?: number;
  /** Requests per token in a window (@fastify/rate-limit); false: none. Default RATE_LIMIT. */
  rateLimit?: RateLimit | false;
}

export interface RateLimit {
  max: number;
  windowMs: number;
}

/** Per token: 1,000 requests in 10 s (an agent sends a few a second; a tenant's burst of NRs fits). */
export const RATE_LIMIT: RateLimit = { max: 1000, windowMs: 10_000 };

/**
 * Errors of Node's HTTP parser (431 headers too large, 400 bad framing, 408 timeout) happen
 * before Fastify sees a request: they are written on the socket here, in the API's error shape.
 */
export function clientError(err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: Socket): void {
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, code, message]: [number, string, string] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, ApiErrors.HEADERS_TOO_LARGE, "the request's headers are larger than the server accepts (16 KiB)"]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, ApiErrors.REQUEST_TIMEOUT, 'the request did not arrive in full in time']
        : [
            400,
            ApiErrors.BAD_REQUEST,
            `malformed HTTP request (${err.code ?? 'parse error'}${err.bytesParsed !== undefined ? ` after ${err.bytesParsed} bytes` : ''}): ${String(err.message).split('\n')[0]!.slice(0, 200)}`,
          ];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export type App = FastifyInstance & { tnodb: ApiContext };

export async function buildApp(o: AppOptions): Promise<App> {
  const app = Fastify({
    logger: o.logger ?? false,
    bodyLimit: o.bodyLimit ?? 64 * 1024,
    // Reject unknown properties instead of silently dropping them (Fastify's default), and wrong
    // types instead of coercing them ("prefixLength": true is not 1; query numbers are patterns).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    clientErrorHandler: clientError,
    return503OnClosing: true,
    // Long path parameters reach the route schemas (a 400 in our error shape) instead of the
    // router's own answer.
    routerOptions: { maxParamLength: 2048 },
    frameworkErrors: (err, _req, reply) => {
      void (reply as unknown as { code(n: number): { send(b: unknown): unknown } })
        .code(400)
        .send({ error: { code: ApiErrors.BAD_REQUEST, message: String(err.message).split('\n')[0]!.slice(0, 300) } });
    },
  });
  const ctx: ApiContext = {
    store: o.store,
    auth: new Auth(o.store),
    watch: new ViewWatch(o.store),
    views: new ViewCache(o.store),
    polls: new PollLimits(o.maxPollsPerToken, o.maxPolls),
    metrics: new Metrics(),
    maxWaitS: o.maxWaitS ?? 300,
    events: new EventWatch(o.store),
    pacer: new Pacer(),
  };
  (app as unknown as App).tnodb = ctx;

  app.setErrorHandler(async (err: FastifyError, req, reply) => {
    const send = (status: number, code: string, message: string) =>
      reply.code(status).type('application/json').send({ error: { code, message } });
    if (isExitnodeError(err)) {
      const after = err.details?.retryAfterS;
      if (typeof after === 'number') void reply.header('retry-after', String(after));
      // A 429 comes in bursts (a token's polls over their limit): a share per turn (pacer.ts).
      if (err.status === 429) await ctx.pacer.turn();
      return send(err.status, err.code, err.message);
    }
    if (err.validation) return send(400, ApiErrors.BAD_REQUEST, err.message);
    switch (err.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return send(413, ApiErrors.PAYLOAD_TOO_LARGE, `the body is larger than ${o.bodyLimit ?? 65536} bytes`);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return send(
          415,
          ApiErrors.UNSUPPORTED_MEDIA_TYPE,
          `Content-Type ${JSON.stringify(req.headers['content-type'] ?? '')} is not accepted: send application/json`,
        );
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500)
      return send(status, status === 404 ? ApiErrors.NOT_FOUND : ApiErrors.BAD_REQUEST, err.message.split('\n')[0]!);
    req.log.error({ err }, 'request failed');
    if (status === 503)
      return send(503, 'STORE_UNAVAILABLE', 'the server is shutting down or its database is unavailable; retry');
    return send(
      500,
      'INTERNAL',
      `internal error while serving ${req.method} ${req.routeOptions?.url ?? 'this route'} (logged on the server)`,
    );
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      error: {
        code: ApiErrors.NOT_FOUND,
        message: `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}; the API is described at /docs`,
      },
    }),
  );

  // Bodies are JSON only; Fastify's default text/plain parser would turn a 415 into a schema error.
  app.removeContentTypeParser('text/plain');
  versionCheck(app);
  // Authenticate before the body is parsed or validated: a caller without a valid token learns
  // nothing about the API's schemas and always gets 401.
  app.addHook('onRequest', async (req) => {
    if (req.routeOptions?.url?.startsWith('/v1/')) await ctx.auth.principal(req);
  });
  // Nothing a client sends reaches a terminal raw: no control characters in any text (text.ts).
  app.addHook('preValidation', async (req) => {
    refuseControl(req.params, 'params');
    refuseControl(req.query, 'querystring');
    refuseControl(req.body, 'body');
  });

  app.addHook('onResponse', async (req, reply) => {
    ctx.metrics.observe(req.method, req.routeOptions?.url ?? 'unknown', reply.statusCode, reply.elapsedTime / 1000);
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'exitnode TNoDB',
        version: '1',
        description:
          'Lists and keys of an exitnode farm; NR id allocation, slot leases, node views. Errors: {error: {code, message}}; codes in docs/errors.md.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await docsRoutes(app);

  // Per token (after authentication: the key is the token's hash), on /v1 routes only.
  const limit = o.rateLimit === undefined ? RATE_LIMIT : o.rateLimit;
  if (limit)
    await app.register(rateLimit, {
      global: true,
      max: limit.max,
      timeWindow: limit.windowMs,
      hook: 'onRequest',
      allowList: (req) => ctx.auth.tokenOf(req) === undefined,
      keyGenerator: (req) => ctx.auth.tokenOf(req) ?? req.ip,
      // Retry-After: the window's end plus up to one more window, drawn per answer. The end alone
      // would bring every refused request back in the same instant (a herd that holds the event
      // loop for a second, heartbeats waiting behind it); spread, they come back a few at a time.
      errorResponseBuilder: (_req, c) => {
        const after = spreadRetry(Math.ceil(c.ttl / 1000), Math.ceil(limit.windowMs / 1000));
        return new ExitnodeError(
          ApiErrors.RATE_LIMITED,
          `this token sent more than ${c.max} requests in ${limit.windowMs / 1000} s, the rate limit per token; retry in ${after} s`,
          { retryAfterS: after },
        );
      },
    });

  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness and database round trip',
        security: [],
        response: {
          200: {
            type: 'object',
            properties: { status: { type: 'string' }, driver: { type: 'string' }, version: { type: 'string' } },
          },
        },
      },
    },
    async () => {
      await ctx.store.ping();
      return { status: 'ok', driver: ctx.store.driver, version: VERSION };
    },
  );
  // It names every farm's nodes and slots: the admin's (or the server's --metrics-listen address).
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['health'],
        summary: "Prometheus metrics (admin token; or unauthenticated on the server's --metrics-listen address)",
        response: { 200: { type: 'string' }, 401: errorBody, 403: errorBody },
      },
    },
    async (req, reply) => {
      await ctx.auth.need(req, []);
      return reply.type('text/plain; version=0.0.4').send(await renderMetrics(ctx));
    },
  );
  app.get('/docs/errors', { schema: { tags: ['health'], summary: 'The error catalog', security: [] } }, async () =>
    Object.fromEntries([...catalog()].map(([code, s]) => [code, { status: s.status, summary: s.summary }])),
  );

  farmRoutes(app, ctx);
  allocationRoutes(app, ctx);
  nodeRoutes(app, ctx);
  networkRoutes(app, ctx);
  forwardRoutes(app, ctx);
  quotaRoutes(app, ctx);
  eventRoutes(app, ctx);
  dashboardRoutes(app, ctx);
  uiRoutes(app);

  // Long-polls would hold a graceful shutdown for up to their wait: end them first.
  app.addHook('preClose', async () => {
    ctx.watch.close();
    ctx.events.close();
  });
  await app.ready();
  return app as unknown as App;
}
