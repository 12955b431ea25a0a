import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, signUp } from './support/client.ts';
import { launchChromium } from './support/browser.ts';

/**
 * Issue 12 §3: a browser session survives a reload through an HttpOnly, Secure, SameSite=Strict refresh cookie
 * limited to /auth, with CSRF protection; the access token stays in the page's memory only.
 */
let app: TestApp;
let browser: Browser;
const origin = () => new URL(app.url).origin;

beforeAll(async () => {
  [app, browser] = await Promise.all([startTestApp(), launchChromium()]);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
});

async function auth(path: string, opts: { cookie?: string; body?: unknown; csrf?: boolean; origin?: string; method?: string } = {}) {
  const res = await fetch(`${origin()}/auth/${path}`, {
    method: opts.method ?? 'POST',
    headers: {
      'content-type': 'application/json',
      ...(opts.csrf === false ? {} : { 'x-tenantplane-csrf': '1' }),
      ...(opts.cookie ? { cookie: `tp_refresh=${opts.cookie}` } : {}),
      ...(opts.origin ? { origin: opts.origin } : {}),
    },
    body: opts.method === 'GET' ? undefined : JSON.stringify(opts.body ?? {}),
  });
  const setCookie = res.headers.getSetCookie().find((c) => c.startsWith('tp_refresh='));
  const cookie = setCookie ? decodeURIComponent(setCookie.split(';')[0]!.slice('tp_refresh='.length)) : undefined;
  return { status: res.status, body: (await res.json()) as Record<string, string>, setCookie, cookie };
}

async function whoAmI(accessToken: string) {
  return (await new Gql(app, accessToken).ok(`{ me { email } }`)).me?.email;
}

describe('the refresh cookie', () => {
  it('is refused without the CSRF header, from a foreign origin, and to anything but POST', async () => {
    const user = await signUp(app, 'cookie-csrf');
    expect((await auth('session', { body: { refreshToken: user.refreshToken }, csrf: false })).status).toBe(403);
    expect((await auth('session', { body: { refreshToken: user.refreshToken }, origin: 'https://evil.example' })).status).toBe(403);
    expect((await auth('refresh', { method: 'GET' })).status).toBe(405);
    expect((await auth('session', { body: {} })).body.code).toBe('BAD_USER_INPUT');
    // None of those spent the token: it still opens a session.
    expect((await auth('session', { body: { refreshToken: user.refreshToken } })).status).toBe(200);
  });

  it('takes the refresh token once, keeps it HttpOnly, Secure, SameSite=Strict on /auth, and rotates it on every refresh', async () => {
    const user = await signUp(app, 'cookie');
    const opened = await auth('session', { body: { refreshToken: user.refreshToken } });
    expect(opened.status).toBe(200);
    expect(opened.setCookie).toMatch(/; Path=\/auth/);
    for (const attr of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Max-Age=']) expect(opened.setCookie).toContain(attr);
    expect(opened.cookie).not.toBe(user.refreshToken);
    expect(await whoAmI(opened.body.accessToken!)).toBe(user.email);

    const refreshed = await auth('refresh', { cookie: opened.cookie });
    expect(refreshed.status).toBe(200);
    expect(refreshed.cookie).toBeTruthy();
    expect(refreshed.cookie).not.toBe(opened.cookie);
    expect(await whoAmI(refreshed.body.accessToken!)).toBe(user.email);

    // A stolen, already spent cookie replayed: refused and cleared, and the whole login is revoked (reuse detection).
    const replay = await auth('refresh', { cookie: opened.cookie });
    expect(replay.status).toBe(401);
    expect(replay.setCookie).toMatch(/tp_refresh=;/);
    expect((await auth('refresh', { cookie: refreshed.cookie })).status).toBe(401);
    expect((await auth('refresh')).body.code).toBe('UNAUTHENTICATED');
  });

  it('logout revokes the login and clears the cookie', async () => {
    const user = await signUp(app, 'cookie-out');
    const opened = await auth('session', { body: { refreshToken: user.refreshToken } });
    const out = await auth('logout', { cookie: opened.cookie });
    expect(out).toMatchObject({ status: 200, body: { ok: true } });
    expect(out.setCookie).toMatch(/tp_refresh=;/);
    expect((await auth('refresh', { cookie: opened.cookie })).status).toBe(401);
  });

  it('in Chromium: survives a reload, and scripts never see it', async () => {
    const user = await signUp(app, 'cookie-browser');
    const page = await browser.newPage();
    await page.goto(`${origin()}/graphql`);
    const post = (path: string, body?: unknown) =>
      page.evaluate(
        async ([p, b]) => {
          const r = await fetch(p as string, { method: 'POST', headers: { 'content-type': 'application/json', 'x-tenantplane-csrf': '1' }, body: JSON.stringify(b ?? {}) });
          return { status: r.status, body: await r.json() };
        },
        [path, body] as const,
      );
    expect((await post('/auth/session', { refreshToken: user.refreshToken })).status).toBe(200);
    expect(await page.evaluate(() => document.cookie)).not.toContain('tp_refresh');
    await page.reload();
    // After the reload nothing is in memory: the cookie alone gets a new access token.
    const again = await post('/auth/refresh');
    expect(again.status).toBe(200);
    expect(await whoAmI(again.body.accessToken)).toBe(user.email);
    // The cookie is not sent with GraphQL requests (Path=/auth).
    const [request] = await Promise.all([
      page.waitForRequest((r) => r.url().endsWith('/graphql') && r.method() === 'POST'),
      page.evaluate(() => fetch('/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' })),
    ]);
    expect((await request.allHeaders()).cookie ?? '').not.toContain('tp_refresh');
    await page.close();
  });
});
