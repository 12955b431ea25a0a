import crypto from 'node:crypto';
import pg from 'pg';
import { LRUCache } from 'lru-cache';
import {
  SignJWT,
  jwtVerify,
  generateKeyPair,
  exportJWK,
  importJWK,
  calculateJwkThumbprint,
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  type JWK,
  type JWTPayload,
  type CryptoKey,
} from 'jose';

const ALG = 'EdDSA';

/** Our access tokens: short-lived EdDSA JWTs, keys generated on first start and kept in app_private.signing_keys. */
export class AccessTokens {
  private constructor(
    private readonly kid: string,
    private readonly privateKey: CryptoKey,
    private readonly publicJwks: { keys: JWK[] },
    private readonly issuer: string,
    private readonly audience: string,
    private readonly ttlSeconds: number,
  ) {
    this.localSet = createLocalJWKSet(this.publicJwks);
  }

  /** Loads the active signing key, generating one when the deployment has none (privileged connection). */
  static async load(ownerPool: pg.Pool, opts: { issuer: string; audience: string; ttlSeconds: number }) {
    let { rows } = await ownerPool.query(`select kid, private_jwk, public_jwk from app_private.signing_keys where retired_at is null order by created_at, kid`);
    if (rows.length === 0) {
      const { privateKey, publicKey } = await generateKeyPair(ALG, { crv: 'Ed25519', extractable: true });
      const publicJwk = await exportJWK(publicKey);
      const kid = await calculateJwkThumbprint(publicJwk);
      const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: ALG };
      await ownerPool.query(`insert into app_private.signing_keys (kid, private_jwk, public_jwk) values ($1, $2, $3) on conflict do nothing`, [
        kid,
        privateJwk,
        { ...publicJwk, kid, alg: ALG, use: 'sig' },
      ]);
      // Several instances may start at once: everyone uses the oldest key that won.
      ({ rows } = await ownerPool.query(`select kid, private_jwk, public_jwk from app_private.signing_keys where retired_at is null order by created_at, kid`));
    }
    const active = rows[0];
    const privateKey = (await importJWK(active.private_jwk, ALG)) as CryptoKey;
    return new AccessTokens(active.kid, privateKey, { keys: rows.map((r) => r.public_jwk) }, opts.issuer, opts.audience, opts.ttlSeconds);
  }

  get jwks() {
    return this.publicJwks;
  }

  /** `sessionId`: the refresh-token family the token was issued for (`sid`), so that revoking it can end sockets. */
  async sign(userId: string, sessionId?: string) {
    const expiresAt = new Date(Date.now() + this.ttlSeconds * 1000);
    const jwt = await new SignJWT(sessionId ? { sid: sessionId } : {})
      .setProtectedHeader({ alg: ALG, kid: this.kid, typ: 'at+jwt' })
      .setSubject(userId)
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt()
      .setJti(crypto.randomUUID())
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(this.privateKey);
    return { token: jwt, expiresAt };
  }

  private readonly localSet: ReturnType<typeof createLocalJWKSet>;

  /**
   * Tokens already verified, until their `exp`: a client sends the same token with every request for up to
   * ACCESS_TOKEN_TTL_SECONDS, and an Ed25519 verification was ~11 % of a simple request's CPU (bench/README.md).
   * Keyed by the whole token, signature included, so only byte-identical tokens hit. Bounded (LRU).
   */
  private readonly verified = new LRUCache<string, JWTPayload & { sub: string; exp: number }>({ max: 10_000 });

  /** Verifies signature (EdDSA only: `alg: none` and HMAC confusion are refused), issuer, audience and expiry. */
  async verify(token: string): Promise<JWTPayload> {
    const now = Math.floor(Date.now() / 1000);
    const cached = this.verified.get(token);
    if (cached) {
      if (cached.exp > now) return cached;
      this.verified.delete(token);
    }
    const { payload } = await jwtVerify(token, this.localSet, { issuer: this.issuer, audience: this.audience, algorithms: [ALG] });
    if (!payload.sub) throw new Error('no subject');
    if (typeof payload.exp === 'number') this.verified.set(token, payload as JWTPayload & { sub: string; exp: number });
    return payload;
  }

  issuerOf(token: string): string | undefined {
    try {
      return decodeJwt(token).iss;
    } catch {
      return undefined;
    }
  }
}

/** Tokens from an external OIDC issuer (e.g. Keycloak), verified against its JWKS (cached and refreshed by jose). */
export class OidcVerifier {
  private jwks?: ReturnType<typeof createRemoteJWKSet>;

  constructor(private readonly opts: { issuer: string; audience?: string; jwksUri?: string }) {}

  get issuer() {
    return this.opts.issuer;
  }

  private async keySet() {
    if (!this.jwks) {
      let uri = this.opts.jwksUri;
      if (!uri) {
        const res = await fetch(new URL('.well-known/openid-configuration', this.opts.issuer.replace(/\/?$/, '/')));
        if (!res.ok) throw new Error(`OIDC discovery failed: ${res.status}`);
        uri = ((await res.json()) as { jwks_uri: string }).jwks_uri;
      }
      this.jwks = createRemoteJWKSet(new URL(uri));
    }
    return this.jwks;
  }

  async verify(token: string) {
    const { payload } = await jwtVerify(token, await this.keySet(), {
      issuer: this.opts.issuer,
      audience: this.opts.audience,
      algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'],
    });
    if (!payload.sub) throw new Error('no subject');
    const email = typeof payload.email === 'string' ? payload.email.toLowerCase() : undefined;
    if (!email) throw new Error('the OIDC token carries no email');
    const name = typeof payload.name === 'string' ? payload.name : typeof payload.preferred_username === 'string' ? payload.preferred_username : '';
    const expiresAt = payload.exp ? new Date(payload.exp * 1000) : null;
    return { issuer: payload.iss!, subject: payload.sub, email, emailVerified: payload.email_verified === true, name, expiresAt };
  }
}

/** Opaque refresh tokens: 256 random bits; only their sha256 is stored. */
export function newOpaqueToken() {
  return crypto.randomBytes(32).toString('base64url');
}

export function sha256(value: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(crypto.createHash('sha256').update(value).digest());
}
