import type { Database } from '../db/database.ts';
import { unauthenticated, translateDatabaseError } from '../graphql/errors.ts';
import type { AccessTokens, OidcVerifier } from './tokens.ts';
import { looksLikeApiKey, type ApiKeyVerifier, type VerifiedApiKey } from './api-keys.ts';
import type { SessionRevocations } from './revocations.ts';

/** Who is asking, as established from the request's credentials. */
export interface Principal {
  userId: string | null;
  /** Raw X-Tenant value (slug or tenant uuid) narrowing this request, if any. */
  tenant: string | null;
}

export class Authenticator {
  /** (issuer, sub) → user id: a user is created on the first request of an OIDC identity, then cached here. */
  private readonly oidcUsers = new Map<string, string>();

  constructor(
    private readonly tokens: AccessTokens,
    private readonly db: Database,
    private readonly oidc?: OidcVerifier,
    readonly apiKeys?: ApiKeyVerifier,
    /** Revoked sessions and deactivated users, refused at once (in memory: no SQL per request). */
    readonly revocations?: SessionRevocations,
  ) {}

  /** Resolves an Authorization header value to a user id (null when absent). Any failure → UNAUTHENTICATED. */
  async userFromAuthorization(header: string | undefined | null): Promise<string | null> {
    return (await this.authenticate(header)).userId;
  }

  /**
   * The user and when their token stops being valid (`exp`; null without a token or without `exp`). An API key
   * (`tpk_…`) authenticates as its creator, bound to its tenant (`apiKey`); `ip` is recorded as the key's last use.
   */
  async authenticate(
    header: string | undefined | null,
    ip: string | null = null,
  ): Promise<{ userId: string | null; expiresAt: Date | null; sessionId?: string; apiKey?: VerifiedApiKey }> {
    if (!header) return { userId: null, expiresAt: null };
    const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!match) throw unauthenticated();
    const token = match[1]!;
    if (looksLikeApiKey(token)) {
      const key = this.apiKeys ? await this.apiKeys.verify(token, ip) : null;
      if (!key) throw unauthenticated();
      // A deactivated creator's keys are refused at once, like their tokens.
      if (this.revocations?.refuses(key.createdBy)) throw unauthenticated();
      return { userId: key.createdBy, expiresAt: key.expiresAt, apiKey: key };
    }
    try {
      if (this.oidc && this.tokens.issuerOf(token) === this.oidc.issuer) {
        const claims = await this.oidc.verify(token);
        const userId = await this.oidcUser(claims);
        if (this.revocations?.refuses(userId)) throw new Error('deactivated user');
        return { userId, expiresAt: claims.expiresAt };
      }
      const payload = await this.tokens.verify(token);
      const sessionId = typeof payload.sid === 'string' ? payload.sid : undefined;
      // A revoked session (logOut, revokeSession, a password change, a spent refresh token reused) or a deactivated
      // user: refused from the moment this process knows, whatever the token's expiry.
      if (this.revocations?.refuses(payload.sub!, sessionId)) throw new Error('revoked session');
      return { userId: payload.sub!, expiresAt: payload.exp ? new Date(payload.exp * 1000) : null, sessionId };
    } catch (e) {
      const code = (e as { extensions?: { code?: string } }).extensions?.code;
      // An unreachable database (mapping an OIDC subject) is no verdict on the token: retryable, not UNAUTHENTICATED.
      if (code === 'CONFLICT' || code === 'SERVICE_UNAVAILABLE') throw e;
      throw unauthenticated();
    }
  }

  private async oidcUser(claims: Awaited<ReturnType<OidcVerifier['verify']>>) {
    const key = `${claims.issuer}\u0000${claims.subject}`;
    const cached = this.oidcUsers.get(key);
    if (cached) return cached;
    const userId = await this.db.withContext({}, (tx) => upsertOidcUser(tx, claims)).catch((e) => translateDatabaseError(e));
    // Bounded: the oldest mappings are forgotten first (they are re-read from the database when needed).
    if (this.oidcUsers.size >= 10_000) this.oidcUsers.delete(this.oidcUsers.keys().next().value!);
    this.oidcUsers.set(key, userId);
    return userId;
  }
}

/**
 * The user an OIDC identity names (app.upsert_oidc_user): created on first use, or linked by a verified email. For
 * bearer tokens of the issuer (Authenticator) and for the console's sign-in (logInWithOidc) alike; callers translate
 * its database errors.
 */
export async function upsertOidcUser(tx: Pick<Parameters<Parameters<Database['withContext']>[1]>[0], '$queryRaw'>, claims: Awaited<ReturnType<OidcVerifier['verify']>>) {
  const rows = await tx.$queryRaw<{ id: string }[]>`select app.upsert_oidc_user(${claims.issuer}, ${claims.subject}, ${claims.email}, ${claims.emailVerified}, ${claims.name}) as id`;
  return rows[0]!.id;
}
