// What the client commands of the CLI share: --server, --token-file (or --token; or
// EXITNODE_SERVER, EXITNODE_TOKEN_FILE, EXITNODE_TOKEN) and --json. A token given on the command
// line shows in the process list: --token-file is the way to pass one.
import { readFileSync } from 'node:fs';
import { CoreErrors, ExitnodeError, q } from '../core/errors.js';
import { TnodbClient } from '../client/index.js';
import type { Options, Parsed } from './args.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:8440';

export const clientOptions: Options = {
  server: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
};

export const CLIENT_USAGE =
  '[--server URL] [--token-file FILE] [--json]   (or EXITNODE_SERVER, EXITNODE_TOKEN_FILE; --token T and EXITNODE_TOKEN show in the process list or environment)';

const usage = (message: string): ExitnodeError => new ExitnodeError(CoreErrors.USAGE, message);

/** An http(s) URL with a host and nothing after the path, or a USAGE error naming where it came from. */
export function checkServerUrl(text: string, from: string): string {
  let u: URL | undefined;
  try {
    u = new URL(text);
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname || u.search || u.hash || u.username)
    throw usage(`${from} ${q(text)} is not an http(s) URL of a TNoDB server (e.g. ${DEFAULT_SERVER})`);
  return text;
}

/** The token in FILE (its first line), or a USAGE error that says why not. */
export function readTokenFile(file: string, from = '--token-file'): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw usage(`cannot read ${from} ${q(file)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const token = text.split('\n')[0]!.trim();
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(token))
    throw usage(`${from} ${q(file)} does not hold a token (one line of letters, digits, "_" and "-")`);
  return token;
}

/**
 * The client of a command. `needs` names the token's scope (admin, farm, tenant, node) for the
 * message when none is given: exit 2 before any request, not the server's 401.
 */
export function clientFrom(p: Parsed, needs?: string): TnodbClient {
  const fromFlag = typeof p.values.server === 'string' ? p.values.server : undefined;
  const server = checkServerUrl(
    fromFlag ?? process.env.EXITNODE_SERVER ?? DEFAULT_SERVER,
    fromFlag !== undefined ? '--server' : 'EXITNODE_SERVER',
  );
  const flagToken = typeof p.values.token === 'string' ? p.values.token : undefined;
  const file = typeof p.values['token-file'] === 'string' ? p.values['token-file'] : undefined;
  if (flagToken !== undefined && file !== undefined) throw usage('give --token-file FILE or --token T, not both');
  const token =
    file !== undefined
      ? readTokenFile(file)
      : (flagToken ??
        (process.env.EXITNODE_TOKEN_FILE
          ? readTokenFile(process.env.EXITNODE_TOKEN_FILE, 'EXITNODE_TOKEN_FILE')
          : process.env.EXITNODE_TOKEN));
  if (!token && needs)
    throw usage(
      `this command needs ${/^[aeiou]/.test(needs) ? 'an' : 'a'} ${needs} token: give --token-file FILE (or EXITNODE_TOKEN_FILE)`,
    );
  return new TnodbClient({ server, ...(token ? { token } : {}) });
}
