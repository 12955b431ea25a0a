import http from 'node:http';
import path from 'node:path';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Provider from 'oidc-provider';
import type { Browser } from 'playwright-core';
import { freeLocalPort } from '../src/db/embedded.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import { launchChromium } from './support/browser.ts';
import { Gql } from './support/client.ts';

/**
 * "Log in with …" in the console (issue 12 §2) against a real OpenID Provider (panva's oidc-provider, certified, with
 * its development login and consent pages) on a local port: the authorization code flow with PKCE run by our server,
 * the user created on first sign-in, a session that survives a reload and shows in "Your sessions"; a callback this
 * browser did not start is refused in words; logInWithOidc refuses a token that is not the IdP's.
 */
const CLIENT_ID = 'tenantplane-console';
const CLIENT_SECRET = 'test-idp-client-secret-0123456789abcdef';
let idp: http.Server;
let issuer: string;
let app: TestApp;
let browser: Browser;
const artifacts = path.resolve('test-artifacts');

beforeAll(async () => {
  const port = await freeLocalPort();
  issuer = `http://127.0.0.1:${port}`;
  [app, browser] = await Promise.all([
    startTestApp({ OIDC_ISSUER: issuer, OIDC_CLIENT_ID: CLIENT_ID, OIDC_CLIENT_SECRET: CLIENT_SECRET, OIDC_PROVIDER_NAME: 'Test IdP' }),
    launchChromium(),
  ]);
  const provider = new Provider(issuer, {
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${new URL(app.url).origin}/auth/oidc/callback`], grant_types: ['authorization_code'], response_types: ['code'] }],
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id, email: `${id}@idp.example.test`, email_verified: true, name: `IdP user ${id}` }) }),
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    // The claims in the ID token itself (the API reads the email from it).
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    cookies: { keys: ['test-idp-cookie-key-0123456789'] },
  });
  idp = http.createServer(provider.callback());
  await new Promise<void>((resolve) => idp.listen(port, '127.0.0.1', resolve));
  fs.mkdirSync(artifacts, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
  await new Promise((resolve) => idp?.close(resolve));
});

describe('console sign-in with an OIDC provider', () => {
  it('Log in with Test IdP: code flow with PKCE, the user created, the session kept across a reload', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const origin = new URL(app.url).origin;
    await page.goto(`${origin}/console`);
    await page.getByRole('link', { name: 'Log in with Test IdP' }).click();
    // The IdP's own pages: any login, then consent.
    await page.waitForURL((u) => u.origin === issuer);
    await page.locator('input[name="login"]').fill('alice');
    await page.locator('input[name="password"]').fill('anything');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${origin}/console`);
    await page.locator('header .me', { hasText: 'alice@idp.example.test' }).waitFor({ timeout: 15_000 });
    await page.screenshot({ path: path.join(artifacts, 'console-oidc.png') });
    // The refresh cookie, as after a password log-in: the session survives a reload and is one of the user's sessions.
    await page.reload();
    await page.locator('header .me', { hasText: 'alice@idp.example.test' }).waitFor({ timeout: 15_000 });
    await page.getByText('Create a tenant to start.').waitFor();
    const cookies = await context.cookies([`${origin}/auth/refresh`, `${origin}/auth/oidc/callback`]);
    expect(cookies.find((c) => c.name === 'tp_refresh')).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/auth' });
    expect(cookies.find((c) => c.name === 'tp_oidc')).toBeUndefined();
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('link', { name: 'Log in with Test IdP' }).waitFor();

    // Again: the IdP remembers alice (its session), and the same user comes back (iss, sub), not a second one.
    await page.getByRole('link', { name: 'Log in with Test IdP' }).click();
    await page.locator('header .me', { hasText: 'alice@idp.example.test' }).waitFor({ timeout: 15_000 });
    const users = await app.services.ownerPool.query(`select count(*)::int as n from app_public.users where email = 'alice@idp.example.test'`);
    expect(users.rows[0].n).toBe(1);
    await context.close();
  }, 60_000);

  it('refuses a callback this browser did not start, in words', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${new URL(app.url).origin}/auth/oidc/callback?code=stolen&state=forged`);
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toBe('this sign-in was not started in this browser, or took too long: try again');
    expect(page.url()).toMatch(/\/console$/);
    await context.close();
  });

  it('logInWithOidc: a token that is not the IdP’s is refused; a server without OIDC sign-in says so', async () => {
    const bogus = await new Gql(app).request(`mutation($t: String!) { logInWithOidc(idToken: $t) { refreshToken } }`, { t: 'eyJhbGciOiJub25lIn0.e30.' });
    expect(bogus.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const plain = await startTestApp();
    try {
      const r = await new Gql(plain).request(`mutation($t: String!) { logInWithOidc(idToken: $t) { refreshToken } }`, { t: 'x' });
      expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(r.errors?.[0]?.message).toMatch(/not configured/);
      // And its console shows no OIDC button.
      expect(await (await fetch(`${new URL(plain.url).origin}/console`)).text()).not.toContain('tenantplane-oidc');
    } finally {
      await plain.stop();
    }
  });
});
