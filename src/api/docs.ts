// The API reference in a browser: Swagger UI at /docs, the OpenAPI document at /docs/json (and
// /docs/yaml). The viewer's files (swagger-ui-dist, shipped inside @fastify/swagger-ui) are served
// from the installed package under /docs/static/: the page needs no network beyond this server,
// and its "Authorize" button takes a bearer token for "Try it out".
import type { FastifyInstance } from 'fastify';
import swaggerUi from '@fastify/swagger-ui';

export async function docsRoutes(app: FastifyInstance): Promise<void> {
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true, defaultModelsExpandDepth: 0, tryItOutEnabled: false },
    theme: { title: 'exitnode TNoDB API' },
  });
}
