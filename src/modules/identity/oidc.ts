import type { Context } from '../../graphql/context.ts';
import { AppError, badInput, sqlState, translateDatabaseError, unauthenticated } from '../../graphql/errors.ts';
import { upsertOidcUser } from '../../auth/context.ts';
import { OidcVerifier } from '../../auth/tokens.ts';
import type { Config } from '../../config.ts';
import { actAs, issueSession, type AuthPayloadShape } from './service.ts';

/** One verifier per configuration (its JWKS is fetched once and cached by jose). */
const verifiers = new WeakMap<object, OidcVerifier>();
function idTokenVerifier(login: NonNullable<Config['auth']['oidcLogin']>) {
  let v = verifiers.get(login);
  if (!v) verifiers.set(login, (v = new OidcVerifier({ issuer: login.issuer, audience: login.clientId, jwksUri: login.jwksUri })));
  return v;
}

/**
 * Trades an ID token of the configured issuer, issued to our client (aud = OIDC_CLIENT_ID), for a Tenantplane session
 * of the user it names — created on first use, or linked by a verified email (app.upsert_oidc_user), exactly as a
 * bearer token of that issuer maps. The console's OIDC sign-in ends here (src/graphql/oidc-login.ts); a mobile app
 * that ran the code flow itself calls it with its ID token. A session like logIn's: listed, revocable, refreshable.
 */
export async function logInWithOidc(ctx: Context, idToken: string): Promise<AuthPayloadShape> {
  const login = ctx.services.config.auth.oidcLogin;
  if (!login) throw badInput('idToken', 'sign-in with an OIDC provider is not configured on this server (OIDC_ISSUER, OIDC_CLIENT_ID)');
  let claims: Awaited<ReturnType<OidcVerifier['verify']>>;
  try {
    claims = await idTokenVerifier(login).verify(idToken);
  } catch {
    throw unauthenticated();
  }
  const userId = await upsertOidcUser(ctx.db, claims).catch((e) => translateDatabaseError(e));
  await actAs(ctx, userId);
  let session: AuthPayloadShape;
  try {
    session = await issueSession(ctx, userId);
  } catch (e) {
    // A deactivated account (app.create_session refuses it).
    if (sqlState(e) === 'TPUA0') throw new AppError('UNAUTHENTICATED', 'this account is deactivated');
    throw e;
  }
  await ctx.db.$executeRaw`select app.record_auth_event(${userId}::uuid, ${claims.email}, 'logInWithOidc', 'SUCCESS', ${ctx.ip}, ${ctx.userAgent})`;
  return session;
}
