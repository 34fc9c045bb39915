// Bearer tokens: 32 random bytes shown once, kept as SHA-256. Scopes: admin (everything), farm
// (its allocations, nodes and slots), tenant (its networks), node (its view, heartbeat and keys).
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ExitnodeError } from '../core/errors.js';
import { StoreErrors, type Principal, type Scope, type Store } from '../store/index.js';
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
  // Unknown tokens too, briefly: a flood of made-up tokens costs no query each. (A token exists
  // before anyone holds it: it is shown only once stored.)
  private unknown = new Map<string, number>();
  /** The SHA-256 of each authenticated request's token: the key of its rate limit and poll limit. */
  private tokens = new WeakMap<FastifyRequest, string>();
  constructor(private store: Store) {}

  /** The hash of the token `req` was authenticated with (after principal()), else undefined. */
  tokenOf(req: FastifyRequest): string | undefined {
    return this.tokens.get(req);
  }

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
    if (c && now - c.at < 30_000) {
      this.tokens.set(req, hash);
      return c.p;
    }
    const refused = new ExitnodeError(ApiErrors.UNAUTHORIZED, 'the token is not known to this TNoDB');
    const u = this.unknown.get(hash);
    if (u !== undefined && now - u < 5_000) throw refused;
    const p = await this.store.findToken(hash);
    if (!p) {
      if (this.unknown.size > 10_000) this.unknown.clear();
      this.unknown.set(hash, now);
      throw refused;
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { p, at: now });
    this.tokens.set(req, hash);
    return p;
  }

  /** The caller's principal if its scope is one of `scopes` (admin is always allowed unless `noAdmin`). */
  async need(req: FastifyRequest, scopes: Scope[], opts: { noAdmin?: boolean } = {}): Promise<Principal> {
    const p = await this.principal(req);
    if (p.scope === 'admin' && !opts.noAdmin) return p;
    if (!scopes.includes(p.scope)) {
      const allowed = opts.noAdmin ? scopes : [...scopes, 'admin'];
      throw new ExitnodeError(
        ApiErrors.FORBIDDEN,
        `${article(p.scope)} ${p.scope} token cannot do this; it needs ${allowed.map((s, i) => (i ? s : `${article(s)} ${s}`)).join(' or ')} token`,
      );
    }
    return p;
  }
}

const article = (word: string): string => (/^[aeiou]/.test(word) ? 'an' : 'a');

/**
 * Refuses a farm token acting on another farm with the answer a farm that does not exist gets:
 * a farm learns nothing about the others, not even whether a name is taken.
 */
export function sameFarm(p: Principal, farm: string): void {
  if (p.scope === 'farm' && p.subject !== farm) throw notYourFarm(p, farm);
}

export function notYourFarm(p: Principal, farm: string): ExitnodeError {
  return new ExitnodeError(
    StoreErrors.FARM_UNKNOWN,
    p.scope === 'farm'
      ? `farm ${JSON.stringify(farm)} does not exist or is not yours (your token is for farm ${JSON.stringify(p.subject)})`
      : `farm ${JSON.stringify(farm)} does not exist`,
  );
}
