// The TNoDB HTTP API: Fastify with a JSON schema on every route, the API reference at /docs (the
// OpenAPI document at /docs/json), errors as {error: {code, message}} with 4xx for the caller's
// mistakes and never a stack trace.
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { docsRoutes } from './docs.js';
import { versionCheck } from './version.js';
import { VERSION } from '../core/version.js';
import { isExitnodeError, catalog } from '../core/errors.js';
import type { Store } from '../store/index.js';
import { Auth } from './auth.js';
import { ApiErrors } from './errors.js';
import { Metrics } from './metrics.js';
import { ViewWatch } from './watch.js';
import type { ApiContext } from './context.js';
import { farmRoutes } from './routes/farms.js';
import { allocationRoutes } from './routes/allocations.js';
import { nodeRoutes } from './routes/nodes.js';
import { networkRoutes } from './routes/networks.js';
import { forwardRoutes } from './routes/forwards.js';

export interface AppOptions {
  store: Store;
  /** Fastify's logger (pino) options; off by default. */
  logger?: boolean | object;
  bodyLimit?: number;
  /** Upper bound of a view long-poll's wait, in seconds (default 300; the fuzz test lowers it). */
  maxWaitS?: number;
}

export type App = FastifyInstance & { tnodb: ApiContext };

export async function buildApp(o: AppOptions): Promise<App> {
  const app = Fastify({
    logger: o.logger ?? false,
    bodyLimit: o.bodyLimit ?? 64 * 1024,
    // Reject unknown properties instead of silently dropping them (Fastify's default).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
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
    metrics: new Metrics(),
    maxWaitS: o.maxWaitS ?? 300,
  };
  (app as unknown as App).tnodb = ctx;

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const send = (status: number, code: string, message: string) =>
      reply.code(status).type('application/json').send({ error: { code, message } });
    if (isExitnodeError(err)) return send(err.status, err.code, err.message);
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
  app.get(
    '/metrics',
    {
      schema: { tags: ['health'], summary: 'Prometheus metrics', security: [], response: { 200: { type: 'string' } } },
    },
    async (_req, reply) => reply.type('text/plain; version=0.0.4').send(await ctx.metrics.render(ctx.store)),
  );
  app.get('/docs/errors', { schema: { tags: ['health'], summary: 'The error catalog', security: [] } }, async () =>
    Object.fromEntries([...catalog()].map(([code, s]) => [code, { status: s.status, summary: s.summary }])),
  );

  farmRoutes(app, ctx);
  allocationRoutes(app, ctx);
  nodeRoutes(app, ctx);
  networkRoutes(app, ctx);
  forwardRoutes(app, ctx);

  // Long-polls would hold a graceful shutdown for up to their wait: end them first.
  app.addHook('preClose', async () => {
    ctx.watch.close();
  });
  await app.ready();
  return app as unknown as App;
}
