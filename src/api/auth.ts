// Bearer tokens: 32 random bytes shown once, kept as SHA-256. Scopes: admin (everything), farm
// (its allocations, nodes and slots), tenant (its networks), node (its view, heartbeat and keys).
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ExitnodeError } from '../core/errors.js';
import type { Principal, Scope, Store } from '../store/index.js';
import { ApiErrors } from './errors.js';

export function newToken(): string {
  return `xn_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Issues a token for a scope and subject; returns the token (the only time it exists in clear). */
export async function issueToken(store: Store, scope: Scope, subject: string | null): Promise<string> {
  const t = newToken();
  await store.createToken(hashToken(t), scope, subject);
  return t;
}

export class Auth {
  // Tokens are never revoked or changed yet, so a short cache saves a query per request.
  private cache = new Map<string, { p: Principal; at: number }>();
  constructor(private store: Store) {}

  async principal(req: FastifyRequest): Promise<Principal> {
    const h = req.headers.authorization;
    if (typeof h !== 'string' || !h)
      throw new ExitnodeError(
        ApiErrors.UNAUTHORIZED,
        'this request needs a token: send "Authorization: Bearer <token>"',
      );
    const m = /^Bearer ([A-Za-z0-9_-]{1,200})$/.exec(h.trim());
    if (!m) throw new ExitnodeError(ApiErrors.UNAUTHORIZED, 'the Authorization header must be "Bearer <token>"');
    const hash = hashToken(m[1]!);
    const c = this.cache.get(hash);
    const now = Date.now();
    if (c && now - c.at < 30_000) return c.p;
    const p = await this.store.findToken(hash);
    if (!p) throw new ExitnodeError(ApiErrors.UNAUTHORIZED, 'the token is not known to this TNoDB');
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { p, at: now });
    return p;
  }

  /** The caller's principal if its scope is one of `scopes` (admin is always allowed unless `noAdmin`). */
  async need(req: FastifyRequest, scopes: Scope[], opts: { noAdmin?: boolean } = {}): Promise<Principal> {
    const p = await this.principal(req);
    if (p.scope === 'admin' && !opts.noAdmin) return p;
    if (!scopes.includes(p.scope)) {
      throw new ExitnodeError(
        ApiErrors.FORBIDDEN,
        `a ${p.scope} token cannot do this; it needs a ${scopes.join(' or ')} token`,
      );
    }
    return p;
  }
}

/** Refuses a farm token acting on another farm. */
export function sameFarm(p: Principal, farm: string): void {
  if (p.scope === 'farm' && p.subject !== farm)
    throw new ExitnodeError(
      ApiErrors.FORBIDDEN,
      `your token is for farm ${JSON.stringify(p.subject)}, not ${JSON.stringify(farm)}`,
    );
}
