// Which versions the server talks to: every answer carries the server's version
// (x-exitnode-version); a request that carries a client's version of another major is refused
// (VERSION_MISMATCH) before authentication. Requests without the header (curl, a browser, a
// monitoring probe) are served: the check is for exitnode's own clients and agents. The first
// request of each client version is logged ("client.version"), so the server's log says which
// versions talk to it.
import type { FastifyInstance } from 'fastify';
import { ExitnodeError, q } from '../core/errors.js';
import { VERSION, VERSION_HEADER, compatible } from '../core/version.js';
import { ApiErrors } from './errors.js';

/** Distinct client versions logged; more are still checked, not logged. */
const MAX_LOGGED = 32;

export function versionCheck(app: FastifyInstance): void {
  const seen = new Set<string>();
  app.addHook('onRequest', async (req, reply) => {
    reply.header(VERSION_HEADER, VERSION);
    const v = req.headers[VERSION_HEADER];
    if (v === undefined) return;
    const client = Array.isArray(v) ? v.join(',') : v;
    if (!compatible(client, VERSION))
      throw new ExitnodeError(
        ApiErrors.VERSION_MISMATCH,
        `this server runs exitnode ${VERSION} and talks to clients and agents of major version ${VERSION.split('.')[0]} only, not to exitnode ${q(client.slice(0, 80))}: install the same major version on both sides`,
        { server: VERSION, client: client.slice(0, 80) },
      );
    if (!seen.has(client) && seen.size < MAX_LOGGED) {
      seen.add(client);
      req.log.info({ event: 'client.version', client, server: VERSION }, `exitnode ${client} talks to this server`);
    }
  });
}
