// What the CLI's client commands share: --server/--token (or EXITNODE_SERVER/EXITNODE_TOKEN)
// and --json.
import { TnodbClient } from '../client/index.js';
import type { Options, Parsed } from './args.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:8440';

export const clientOptions: Options = {
  server: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
};

export const CLIENT_USAGE = '[--server URL] [--token T] [--json]   (or EXITNODE_SERVER, EXITNODE_TOKEN)';

export function clientFrom(p: Parsed): TnodbClient {
  const server =
    (typeof p.values.server === 'string' ? p.values.server : undefined) ??
    process.env.EXITNODE_SERVER ??
    DEFAULT_SERVER;
  const token = (typeof p.values.token === 'string' ? p.values.token : undefined) ?? process.env.EXITNODE_TOKEN;
  return new TnodbClient({ server, ...(token ? { token } : {}) });
}
