import express from 'express';
import { parse as parseCookies } from 'cookie';
import type { RequestServices } from '../services.ts';

/**
 * How a browser session survives a reload (issue 12 §3) without the refresh token ever living in JavaScript beyond
 * one hand-over: the console keeps its access token in memory only, and its refresh token in an HttpOnly, Secure,
 * SameSite=Strict cookie whose Path is /auth — never sent with /graphql, nor readable by scripts.
 *
 *   POST /auth/session  { refreshToken }  the token logIn/signUp returned: rotated, the new one set as the cookie
 *   POST /auth/refresh                    the cookie's token rotated: a new access token, a new cookie
 *   POST /auth/logout                     the cookie's login revoked (logOut), the cookie cleared
 *
 * Each answers `{ accessToken, expiresAt }` (logout: `{ ok }`) and runs the API's own mutations (refreshSession,
 * logOut) through Apollo, so throttling, reuse detection, audit and masked errors are the same as over GraphQL.
 * CSRF: every call needs the header `X-Tenantplane-CSRF: 1` (a page of another origin cannot send it without a CORS
 * preflight, which this server never grants) and, when the browser sends an Origin, an allowed one; SameSite=Strict
 * keeps the cookie off cross-site requests besides.
 */
export const REFRESH_COOKIE = 'tp_refresh';
export const CSRF_HEADER = 'x-tenantplane-csrf';
const COOKIE_PATH = '/auth';

export type Execute = (req: express.Request, res: express.Response, query: string, variables: Record<string, unknown>) => Promise<{ data?: Record<string, unknown> | null; errors?: ReadonlyArray<{ message: string; extensions?: Record<string, unknown> }> }>;

const REFRESH = `mutation TenantplaneCookieRefresh($refreshToken: String!) { refreshSession(refreshToken: $refreshToken) { accessToken refreshToken expiresAt } }`;
const LOGOUT = `mutation TenantplaneCookieLogOut($refreshToken: String!) { logOut(refreshToken: $refreshToken) }`;

const cookieOptions: express.CookieOptions = { httpOnly: true, secure: true, sameSite: 'strict', path: COOKIE_PATH };

/** The console's session from now on: `refreshToken` in the cookie (also the end of the OIDC sign-in, oidc-login.ts). */
export function setRefreshCookie(res: express.Response, services: RequestServices, refreshToken: string) {
  res.cookie(REFRESH_COOKIE, refreshToken, { ...cookieOptions, maxAge: services.config.auth.refreshTokenTtl * 1000 });
}

export function sessionCookieRouter(services: RequestServices, execute: Execute, originAllowed: (origin: string | undefined, host: string | undefined) => boolean) {
  const router = express.Router();

  router.use(COOKIE_PATH, (req, res, next) => {
    res.set('cache-control', 'no-store');
    if (req.method !== 'POST') return res.status(405).set('allow', 'POST').json({ error: 'method not allowed' });
    if (req.get(CSRF_HEADER) !== '1') return res.status(403).json({ error: `the ${CSRF_HEADER} header is required` });
    if (!originAllowed(req.get('origin'), req.get('host'))) return res.status(403).json({ error: 'forbidden origin' });
    next();
  });
  router.use(COOKIE_PATH, express.json({ limit: '4kb' }));

  const cookieToken = (req: express.Request) => parseCookies(req.get('cookie') ?? '')[REFRESH_COOKIE] || undefined;

  /** Trades a refresh token for a new pair: the access token to the caller, the refresh token into the cookie. */
  async function rotate(req: express.Request, res: express.Response, refreshToken: string | undefined) {
    if (!refreshToken) return res.status(401).json({ error: 'no session: log in again', code: 'UNAUTHENTICATED' });
    const r = await execute(req, res, REFRESH, { refreshToken });
    const pair = r.data?.refreshSession as { accessToken: string; refreshToken: string; expiresAt: string } | undefined;
    if (!pair) {
      const error = r.errors?.[0];
      const code = String(error?.extensions?.code ?? 'INTERNAL_SERVER_ERROR');
      if (code === 'UNAUTHENTICATED') res.clearCookie(REFRESH_COOKIE, cookieOptions);
      return res.status(code === 'UNAUTHENTICATED' ? 401 : code === 'SERVICE_UNAVAILABLE' ? 503 : 500).json({ error: error?.message ?? 'refresh failed', code });
    }
    setRefreshCookie(res, services, pair.refreshToken);
    return res.json({ accessToken: pair.accessToken, expiresAt: pair.expiresAt });
  }

  router.post(`${COOKIE_PATH}/session`, (req, res, next) => {
    const token = (req.body as { refreshToken?: unknown } | undefined)?.refreshToken;
    if (typeof token !== 'string' || !token) return res.status(400).json({ error: 'refreshToken (the one logIn or signUp returned) is required', code: 'BAD_USER_INPUT' });
    rotate(req, res, token).catch(next);
  });
  router.post(`${COOKIE_PATH}/refresh`, (req, res, next) => {
    rotate(req, res, cookieToken(req)).catch(next);
  });
  router.post(`${COOKIE_PATH}/logout`, async (req, res, next) => {
    try {
      const token = cookieToken(req);
      if (token) await execute(req, res, LOGOUT, { refreshToken: token });
      res.clearCookie(REFRESH_COOKIE, cookieOptions);
      res.json({ ok: true });
    } catch (e) {
      next(e);
    }
  });
  return router;
}
