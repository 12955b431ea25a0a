import crypto from 'node:crypto';
import express from 'express';
import { parse as parseCookies } from 'cookie';
import * as oidc from 'openid-client';
import type { RequestServices } from '../services.ts';
import { describeFailure } from '../faults.ts';
import { setRefreshCookie, type Execute } from './session-cookie.ts';

/**
 * "Log in with <provider>" in the console (issue 12 §2): the OpenID Connect authorization code flow with PKCE, run by
 * this server (openid-client), so no token of the IdP ever reaches the page and the IdP needs no CORS:
 *
 *   GET /auth/oidc/start     a state, a nonce and a PKCE verifier in a short-lived HttpOnly cookie (SameSite=Lax: the
 *                            IdP's redirect back is a cross-site navigation); 302 to the IdP's authorization endpoint
 *   GET /auth/oidc/callback  the code exchanged (state, nonce, PKCE and the ID token checked by openid-client), the
 *                            ID token traded for our own session by the API's logInWithOidc mutation, the refresh
 *                            token set as the console's cookie; 303 to /console (errors: /console#oidc-error=…)
 *
 * The state cookie is what stops a login CSRF: a callback whose state is not the one this browser was given is refused.
 */
const STATE_COOKIE = 'tp_oidc';
const STATE_PATH = '/auth/oidc';
const STATE_TTL_SECONDS = 600;
const LOG_IN = `mutation TenantplaneOidcLogIn($idToken: String!) { logInWithOidc(idToken: $idToken) { refreshToken } }`;

type Login = NonNullable<RequestServices['config']['auth']['oidcLogin']>;

export function oidcLoginRouter(services: RequestServices, execute: Execute) {
  const router = express.Router();
  const login = services.config.auth.oidcLogin;
  if (!login) return router;
  const stateCookie: express.CookieOptions = { httpOnly: true, secure: true, sameSite: 'lax', path: STATE_PATH };

  // Discovered once (and again after a failure: an IdP that was down at the first sign-in is found later).
  let discovered: Promise<oidc.Configuration> | undefined;
  const configuration = () =>
    (discovered ??= discover(login).catch((e) => {
      discovered = undefined;
      throw e;
    }));

  const redirectUri = (req: express.Request) => login.redirectUri ?? `${req.protocol}://${req.get('host')}${STATE_PATH}/callback`;
  const fail = (res: express.Response, message: string) => {
    res.clearCookie(STATE_COOKIE, stateCookie);
    res.redirect(303, `/console#oidc-error=${encodeURIComponent(message)}`);
  };

  router.get(`${STATE_PATH}/start`, async (req, res) => {
    res.set('cache-control', 'no-store');
    try {
      const config = await configuration();
      const flow = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier: oidc.randomPKCECodeVerifier() };
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri(req),
        scope: login.scopes,
        state: flow.state,
        nonce: flow.nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(flow.verifier),
        code_challenge_method: 'S256',
      });
      res.cookie(STATE_COOKIE, Buffer.from(JSON.stringify(flow)).toString('base64url'), { ...stateCookie, maxAge: STATE_TTL_SECONDS * 1000 });
      res.redirect(302, url.href);
    } catch (e) {
      services.log.warn({ reason: describeFailure(e) }, 'OIDC sign-in could not start');
      fail(res, `${login.providerName} cannot be reached: try again later`);
    }
  });

  router.get(`${STATE_PATH}/callback`, async (req, res) => {
    res.set('cache-control', 'no-store');
    const flow = readFlow(parseCookies(req.get('cookie') ?? '')[STATE_COOKIE]);
    const params = new URL(req.originalUrl, 'http://callback').searchParams;
    if (params.get('error')) return fail(res, `${login.providerName} refused the sign-in: ${params.get('error_description') ?? params.get('error')}`);
    if (!flow || !safeEqual(flow.state, params.get('state') ?? '')) return fail(res, 'this sign-in was not started in this browser, or took too long: try again');
    let idToken: string | undefined;
    try {
      const config = await configuration();
      // The URL the IdP redirected to, as it named it: its query carries the code, the state and (RFC 9207) the issuer.
      const current = new URL(redirectUri(req));
      current.search = params.toString();
      const tokens = await oidc.authorizationCodeGrant(config, current, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true });
      idToken = tokens.id_token;
    } catch (e) {
      services.log.warn({ reason: describeFailure(e) }, 'OIDC code exchange failed');
      return fail(res, `${login.providerName} did not confirm the sign-in: try again`);
    }
    const r = await execute(req, res, LOG_IN, { idToken });
    const refreshToken = (r.data?.logInWithOidc as { refreshToken?: string } | undefined)?.refreshToken;
    if (!refreshToken) return fail(res, r.errors?.[0]?.message ?? 'the sign-in failed: try again');
    res.clearCookie(STATE_COOKIE, stateCookie);
    setRefreshCookie(res, services, refreshToken);
    res.redirect(303, '/console');
  });
  return router;
}

async function discover(login: Login) {
  const issuer = new URL(login.issuer);
  return oidc.discovery(issuer, login.clientId, login.clientSecret, login.clientSecret ? undefined : oidc.None(), {
    // An IdP on plain http (a lab, the tests): allowed because the operator configured that URL.
    execute: issuer.protocol === 'http:' ? [oidc.allowInsecureRequests] : [],
  });
}

function readFlow(cookie: string | undefined): { state: string; nonce: string; verifier: string } | null {
  if (!cookie) return null;
  try {
    const v = JSON.parse(Buffer.from(cookie, 'base64url').toString()) as Record<string, unknown>;
    return typeof v.state === 'string' && typeof v.nonce === 'string' && typeof v.verifier === 'string' ? { state: v.state, nonce: v.nonce, verifier: v.verifier } : null;
  } catch {
    return null;
  }
}

function safeEqual(a: string, b: string) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}
