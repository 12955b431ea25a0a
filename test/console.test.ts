import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestApp, type TestApp } from './support/app.ts';
import { axeViolations, launchChromium, signedInPage as signedInPageOf } from './support/browser.ts';
import { Gql, createTenant, signUp, type TestUser } from './support/client.ts';
import { platformStaff } from './support/fleet.ts';
import { consoleCsp } from '../src/graphql/console.ts';

/**
 * The console (issue 12 §2–§5, the parts that exist) in Debian's Chromium: sign up (a bad password shows the API's
 * message), a tenant, a site whose provisioning is watched live to HEALTHY, a reload that keeps the session, a second
 * user who sees none of it, log out. Every page passes axe-core with no serious or critical violation and is usable
 * with the keyboard. Screenshots and the load figures go to test-artifacts/.
 */
let app: TestApp;
let browser: Browser;
const artifacts = path.resolve('test-artifacts');
const PASSWORD = 'correct horse battery staple 42';

beforeAll(async () => {
  [app, browser] = await Promise.all([startTestApp(), launchChromium()]);
  fs.mkdirSync(artifacts, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
});

const consoleUrl = () => `${new URL(app.url).origin}/console`;

async function accessibility(page: Page, name: string) {
  return axeViolations(page, name);
}

async function newContext(): Promise<BrowserContext> {
  // bypassCSP only so that the test can inject axe-core; the page's own CSP is asserted below.
  return browser.newContext({ bypassCSP: true });
}

async function signUpThroughConsole(page: Page, email: string) {
  await page.goto(consoleUrl());
  await page.getByRole('button', { name: 'No account yet: sign up' }).click();
  await page.getByLabel('Name').fill('Console User');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign up', exact: true }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 15_000 });
}

/**
 * The API requests (/graphql, /auth/*) a page makes from now until stop(), with the browser's own timings, and the
 * longest chain among them: a request counts as waiting on every one that had finished before it started.
 */
function trackRequests(page: Page) {
  const seen: Array<import('playwright-core').Request> = [];
  const onRequest = (r: import('playwright-core').Request) => {
    const u = new URL(r.url());
    if (u.pathname === '/graphql' || u.pathname.startsWith('/auth/')) seen.push(r);
  };
  page.on('request', onRequest);
  return {
    stop(artifact: string) {
      page.off('request', onRequest);
      const requests = seen.map((r) => {
        const t = r.timing();
        const body = r.postData() ?? '';
        const what = r.url().includes('/auth/') ? new URL(r.url()).pathname : (/"(?:query|operationName)":"\s*(?:query|mutation)?\s*(\w+)/.exec(body)?.[1] ?? 'graphql');
        return { what, started: t.startTime, ended: t.responseEnd >= 0 ? t.startTime + t.responseEnd : Infinity };
      });
      requests.sort((a, b) => a.started - b.started);
      const level: number[] = [];
      requests.forEach((r, i) => {
        level[i] = 1 + Math.max(0, ...requests.slice(0, i).map((q, j) => (q.ended <= r.started ? level[j]! : 0)));
      });
      const depth = Math.max(0, ...level);
      fs.writeFileSync(path.join(artifacts, artifact), JSON.stringify({ depth, requests }, null, 2));
      return { depth, requests };
    },
  };
}

/** A page signed in as `user` (a session made over the API). */
async function signedInPage(origin: string, user: TestUser) {
  return signedInPageOf(browser, origin, user.refreshToken);
}

describe('the console at /console', () => {
  it('is served by the API under a strict CSP, its JavaScript well under 300 KB gzipped', async () => {
    const res = await fetch(consoleUrl());
    expect(res.status).toBe(200);
    // This origin, and the object storage's for uploads; nothing inline, nothing else.
    const csp = res.headers.get('content-security-policy');
    expect(csp).toBe(consoleCsp(app.services.storage.origin));
    expect(csp).toContain(`connect-src 'self' ${app.services.storage.origin};`);
    expect(csp).not.toContain('unsafe');
    const html = await res.text();
    const scripts = [...html.matchAll(/src="([^"]+)"/g)].map((m) => m[1]!);
    let gzipped = 0;
    for (const src of scripts) {
      const body = Buffer.from(await (await fetch(new URL(src, consoleUrl()))).arrayBuffer());
      gzipped += zlib.gzipSync(body, { level: 9 }).length;
    }
    expect(scripts.length).toBe(1);
    expect(gzipped).toBeLessThan(300 * 1024);
    fs.writeFileSync(path.join(artifacts, 'console-size.json'), JSON.stringify({ scripts, gzippedBytes: gzipped }, null, 2));
  });

  it('sign up (the API’s message for a bad password) → tenant → a site provisioned live → reload keeps the session → log out', async () => {
    const context = await newContext();
    const page = await context.newPage();
    const started = Date.now();
    await page.goto(consoleUrl());
    await page.getByRole('button', { name: 'Log in', exact: true }).waitFor();
    const interactiveMs = Date.now() - started;
    const navigation = await page.evaluate(() => JSON.stringify(performance.getEntriesByType('navigation')[0]));
    fs.writeFileSync(path.join(artifacts, 'console-load.json'), JSON.stringify({ interactiveMs, navigation: JSON.parse(navigation) }, null, 2));
    expect(await accessibility(page, 'log-in')).toEqual([]);

    // Keyboard: Tab reaches the form's first field.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('name'))).toBe('email');

    await page.getByRole('button', { name: 'No account yet: sign up' }).click();
    const email = `console-${process.pid}-${Date.now()}@example.test`;
    await page.getByLabel('Name').fill('Console User');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('short');
    await page.getByRole('button', { name: 'Sign up', exact: true }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/password/i);
    expect(await accessibility(page, 'sign-up-error')).toEqual([]);
    await page.getByLabel('Password').fill(PASSWORD);
    const signingUp = trackRequests(page);
    await page.getByRole('button', { name: 'Sign up', exact: true }).click();
    await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 15_000 });
    await page.locator('header .me', { hasText: email }).waitFor();
    await page.getByText('Create a tenant to start.').waitFor();
    // signUp, then the cookie hand-over beside the first page's data: two requests in a row, not three.
    const signedUp = signingUp.stop('console-sign-up-requests.json');
    expect(signedUp.requests.map((r) => r.what)).toEqual(expect.arrayContaining(['SignUp', '/auth/session', 'Me', 'Tenants', 'FirstTenantSites']));
    expect(signedUp.depth).toBe(2);

    const slug = `console-${process.pid}`;
    await page.getByLabel('Name', { exact: true }).fill('Console Org');
    await page.getByLabel('Slug').fill(slug);
    await page.getByRole('button', { name: 'Create tenant' }).click();
    await page.getByRole('heading', { name: 'Sites' }).waitFor();
    expect(await page.locator('header select').inputValue()).toBe(slug);

    // Documents: uploaded straight to object storage (sha256 in a Worker), processed live; the same bytes again are
    // "already stored"; a name taken shows the API's message; above 16 MiB the upload is multipart.
    await page.getByRole('button', { name: 'Documents' }).click();
    const text = Buffer.from('Tenantplane console upload: the quick brown fox jumps over the lazy dog.\n');
    const files = page.getByLabel('Upload files');
    const transfer = (name: string) => page.locator(`li[data-upload="${name}"]`).first();
    await files.setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: text });
    await page.waitForFunction(() => document.querySelector('li[data-upload="notes.txt"]')?.getAttribute('data-phase') === 'done', undefined, { timeout: 20_000 });
    expect(await transfer('notes.txt').locator('.upload-note').textContent()).toBe('uploaded');
    const docRow = (name: string) => page.locator(`tr[data-document="${name}"]`);
    await page.waitForFunction(() => document.querySelector('tr[data-document="notes.txt"] td.status')?.textContent?.startsWith('PROCESSED'), undefined, { timeout: 20_000 });
    expect(await docRow('notes.txt').locator('td.status').textContent()).toContain('12 words');
    // The download link is a presigned GET of the very bytes.
    const href = (await docRow('notes.txt').getByRole('link', { name: 'notes.txt' }).getAttribute('href'))!;
    expect(Buffer.from(await (await fetch(href)).arrayBuffer()).equals(text)).toBe(true);

    await files.setInputFiles({ name: 'copy.txt', mimeType: 'text/plain', buffer: text });
    await page.waitForFunction(() => document.querySelector('li[data-upload="copy.txt"]')?.getAttribute('data-phase') === 'done', undefined, { timeout: 20_000 });
    expect(await transfer('copy.txt').locator('.upload-note').textContent()).toBe('already stored: nothing was sent');
    await files.setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('other bytes') });
    await transfer('notes.txt').getByRole('alert').waitFor();
    expect(await transfer('notes.txt').getByRole('alert').textContent()).toBe('you already have a document named "notes.txt"');

    // The connection of one part drops on its first try: the part is sent again, the upload completes.
    let dropped = 0;
    const storageOrigin = app.services.storage.origin;
    const dropPartTwoOnce = (url: URL) => url.origin === storageOrigin && url.searchParams.get('partNumber') === '2';
    await page.route(dropPartTwoOnce, (route) => (route.request().method() === 'PUT' && dropped++ === 0 ? route.abort('connectionreset') : route.continue()));
    const big = Buffer.alloc(17 * 1024 * 1024, 'multipart upload line\n');
    await files.setInputFiles({ name: 'big.txt', mimeType: 'text/plain', buffer: big });
    await page.waitForFunction(() => document.querySelector('li[data-upload="big.txt"]')?.getAttribute('data-phase') === 'done', undefined, { timeout: 60_000 });
    await page.unroute(dropPartTwoOnce);
    expect(dropped).toBe(2);
    await docRow('big.txt').waitFor();
    expect(await docRow('big.txt').locator('td').nth(1).textContent()).toBe('17.0 MB');
    expect(await accessibility(page, 'documents')).toEqual([]);

    // Rename, then delete (after a confirmation).
    await docRow('copy.txt').locator('summary', { hasText: 'Rename' }).click();
    await docRow('copy.txt').getByLabel('New name').fill('renamed.txt');
    await docRow('copy.txt').getByRole('button', { name: 'Save' }).click();
    await docRow('renamed.txt').waitFor();
    page.once('dialog', (d) => void d.accept());
    await docRow('renamed.txt').getByRole('button', { name: 'Delete' }).click();
    await page.waitForFunction(() => !document.querySelector('tr[data-document="renamed.txt"]'));
    expect(await docRow('notes.txt').count()).toBe(1);
    await page.getByRole('button', { name: 'Sites' }).click();

    await page.getByLabel('Name (DNS-safe)').fill(`console-site-${process.pid}`);
    await page.getByLabel('Display name').fill('Console site');
    await page.getByRole('button', { name: 'Create site' }).click();
    const row = page.locator(`tr[data-site="console-site-${process.pid}"]`);
    await row.waitFor();
    // The live progress bar (jobUpdated over graphql-ws), then the site HEALTHY in the list.
    await row.getByRole('progressbar').waitFor();
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'HEALTHY', `tr[data-site="console-site-${process.pid}"] td.status`, { timeout: 60_000 });
    expect(await row.locator('.job-step').first().textContent()).toBe('done');
    expect(await row.getByRole('progressbar').first().getAttribute('value')).toBe('100');
    expect(await row.locator('code').textContent()).toMatch(/^site_[0-9a-f]{32}@/);
    expect(await accessibility(page, 'sites')).toEqual([]);

    // Back up now, watched live; then restore it, after a confirmation.
    page.on('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: 'Back up now' }).click();
    await page.waitForFunction((sel) => [...document.querySelectorAll(sel)].some((e) => e.textContent === 'done'), `tr[data-site="console-site-${process.pid}"] .actions .job-step`, { timeout: 60_000 });
    await row.locator('summary', { hasText: 'Backups' }).click();
    await row.locator('li[data-backup-status="SUCCESS"]').first().waitFor({ timeout: 15_000 });
    await row.locator('li[data-backup-status="SUCCESS"]').getByRole('button', { name: 'Restore' }).first().click();
    await page.waitForFunction(
      (sel) => [...document.querySelectorAll(sel)].some((e) => /site-restore progress/.test(e.getAttribute('aria-label') ?? '') && e.getAttribute('value') === '100'),
      `tr[data-site="console-site-${process.pid}"] .actions progress`,
      { timeout: 60_000 },
    );
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'HEALTHY', `tr[data-site="console-site-${process.pid}"] td.status`, { timeout: 30_000 });
    expect(await accessibility(page, 'backups')).toEqual([]);
    // Usage against the plan, measured now: a bar and the bytes.
    await row.getByRole('button', { name: 'Measure usage' }).click();
    await row.getByRole('meter').waitFor({ timeout: 30_000 });
    expect(await row.locator('.usage small').textContent()).toMatch(/ of 100\.0 MB|of \d/);

    // Members: an invitation link, accepted by someone else in their own browser.
    await page.getByRole('button', { name: 'Members' }).click();
    await page.getByLabel('Email').fill(`invitee-${process.pid}@example.test`);
    await page.getByRole('button', { name: 'Invite' }).click();
    const link = (await page.locator('.invite-link code').textContent())!;
    expect(link).toMatch(/\/console#invite=/);
    expect(await accessibility(page, 'members')).toEqual([]);
    const invitee = await (await newContext()).newPage();
    await signUpThroughConsole(invitee, `invitee-${process.pid}@example.test`);
    await invitee.goto(link);
    await invitee.getByRole('button', { name: 'Accept invitation' }).click();
    await invitee.locator('header select').waitFor({ timeout: 15_000 });
    expect(await invitee.locator('header select').textContent()).toContain('Console Org (member)');
    await invitee.context().close();
    await page.getByRole('button', { name: 'Members' }).click();

    // Custom roles: a bad name shows the API's message; a role from two permissions, given to the invitee, narrowed,
    // taken back, deleted.
    await page.getByRole('button', { name: 'Roles' }).click();
    await page.getByText('No custom role yet.').waitFor();
    await page.locator('summary', { hasText: 'New role' }).click();
    const newRole = page.getByRole('form', { name: 'Create a role' });
    await newRole.getByLabel('Role name').fill('Bad Name!');
    await newRole.getByRole('checkbox', { name: 'documents:read' }).check();
    await newRole.getByRole('button', { name: 'Create role' }).click();
    await newRole.getByRole('alert').waitFor();
    expect(await newRole.getByRole('alert').textContent()).toMatch(/lowercase letters, digits and dashes/);
    await newRole.getByLabel('Role name').fill('doc-editor');
    await newRole.getByLabel('Description').fill('Edits documents');
    await newRole.getByRole('checkbox', { name: 'documents:read' }).check();
    await newRole.getByRole('checkbox', { name: 'documents:write' }).check();
    await newRole.getByRole('button', { name: 'Create role' }).click();
    const card = page.locator('article[data-role="doc-editor"]');
    await card.waitFor();
    expect(await card.locator('.chips').textContent()).toBe('documents:readdocuments:write');
    await card.locator('select[name="userId"]').selectOption({ label: `invitee-${process.pid}@example.test` });
    await card.getByRole('button', { name: 'Give role' }).click();
    await card.locator(`li[data-holder="invitee-${process.pid}@example.test"]`).waitFor();
    await card.locator('summary', { hasText: 'Change permissions' }).click();
    await card.getByRole('checkbox', { name: 'documents:write' }).uncheck();
    await card.getByRole('button', { name: 'Save permissions' }).click();
    await page.waitForFunction(() => document.querySelector('article[data-role="doc-editor"] .chips')?.textContent === 'documents:read');
    expect(await accessibility(page, 'roles')).toEqual([]);
    await card.getByRole('button', { name: 'Take back' }).click();
    await card.getByText('nobody yet').waitFor();
    await card.getByRole('button', { name: 'Delete role' }).click(); // confirmed by the dialog handler above
    await page.getByText('No custom role yet.').waitFor();
    // From a template with patterns: saved again unchanged, the patterns stay patterns.
    await newRole.getByLabel('Role name').fill('runner');
    await newRole.getByLabel('Start from a template').selectOption('operator');
    await newRole.getByRole('button', { name: 'Create role' }).click();
    const runner = page.locator('article[data-role="runner"]');
    await runner.waitFor();
    const chips = async () => (await runner.locator('.chips code').allTextContents()).sort();
    const before = await chips();
    expect(before).toEqual(['backups:*', 'documents:read', 'jobs:*', 'sites:*']);
    await runner.locator('summary', { hasText: 'Change permissions' }).click();
    expect(await runner.getByRole('checkbox', { name: 'sites:*', exact: true }).isChecked()).toBe(true);
    expect(await runner.locator('label', { hasText: 'sites:read' }).textContent()).toContain('(also by sites:*)');
    // The save, then the page's fetch of the roles again, both answered.
    const graphqlAnswer = (operation: string) => page.waitForResponse((r) => r.url().endsWith('/graphql') && (r.request().postData() ?? '').includes(operation));
    const saved = graphqlAnswer('UpdateRole');
    const reread = saved.then(() => graphqlAnswer('TenantRoles'));
    await runner.getByRole('button', { name: 'Save permissions' }).click();
    expect((await (await saved).json()).errors).toBeUndefined();
    await reread;
    expect(await chips()).toEqual(before);
    await runner.getByRole('button', { name: 'Delete role' }).click();
    await page.getByText('No custom role yet.').waitFor();

    // Jobs: every one of the tenant's, finished ones included; usage against the plan as bars.
    await page.getByRole('button', { name: 'Jobs' }).click();
    await page.locator('tr[data-job="site-restore"]').first().waitFor();
    for (const type of ['site-provision', 'site-backup', 'site-measure']) expect(await page.locator(`tr[data-job="${type}"]`).count()).toBeGreaterThan(0);
    expect(await accessibility(page, 'jobs')).toEqual([]);
    await page.getByRole('button', { name: 'Usage' }).click();
    await page.getByRole('meter', { name: 'Members used' }).waitFor();
    expect(await page.getByRole('meter', { name: 'Sites used' }).getAttribute('value')).toBe('1');
    expect(await accessibility(page, 'usage')).toEqual([]);

    // The audit log has all of it.
    await page.getByRole('button', { name: 'Audit log' }).click();
    await page.getByRole('cell', { name: 'createSite' }).first().waitFor();
    for (const action of ['backupSite', 'restoreSite', 'inviteMember']) expect(await page.getByRole('cell', { name: action, exact: true }).count()).toBeGreaterThan(0);
    expect(await accessibility(page, 'audit-log')).toEqual([]);

    // Your sessions: a sign-in elsewhere (over the API) is listed, and ended from here.
    const elsewhere = await new Gql(app).ok(`mutation($i: LogInInput!) { logIn(input: $i) { refreshToken } }`, { i: { email, password: PASSWORD } });
    await page.getByRole('button', { name: 'Your sessions' }).click();
    await page.locator('tr[data-session="other"]').first().waitFor();
    expect(await page.locator('tr[data-session="current"]').count()).toBe(1);
    expect(await accessibility(page, 'sessions')).toEqual([]);
    await page.getByRole('button', { name: 'Log out all other sessions' }).click();
    await page.waitForFunction(() => document.querySelectorAll('tr[data-session="other"]').length === 0);
    const ended = await new Gql(app).request(`mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }`, { t: elsewhere.logIn.refreshToken });
    expect(ended.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    await page.getByRole('button', { name: 'Sites' }).click();

    // A reload: the access token (memory) is gone, the cookie brings the session back. No request waits on more than
    // one other: the sites of the remembered tenant are asked for with the account and its tenants.
    const reload = trackRequests(page);
    await page.reload();
    await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 15_000 });
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'HEALTHY', `tr[data-site="console-site-${process.pid}"] td.status`);
    const reloaded = reload.stop('console-reload-requests.json');
    expect(reloaded.requests.map((r) => r.what)).toEqual(expect.arrayContaining(['/auth/refresh', 'Me', 'Tenants', 'TenantSites']));
    expect(reloaded.depth).toBe(2);

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Log in', exact: true }).waitFor();
    await page.reload();
    await page.getByRole('button', { name: 'Log in', exact: true }).waitFor();
    await context.close();
  }, 120_000);

  it('a user of another tenant sees none of it', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await signUpThroughConsole(page, `console-other-${process.pid}-${Date.now()}@example.test`);
    await page.getByText('Create a tenant to start.').waitFor();
    expect(await page.locator('body').textContent()).not.toContain('Console Org');
    expect(await page.locator('header select').count()).toBe(0);
    // With a tenant of its own: no site, no document but its own.
    await page.getByLabel('Name', { exact: true }).fill('Other Org');
    await page.getByLabel('Slug').fill(`console-other-${process.pid}`);
    await page.getByRole('button', { name: 'Create tenant' }).click();
    await page.getByText('No site yet.').waitFor();
    await page.getByRole('button', { name: 'Documents' }).click();
    await page.getByText('No document yet.').waitFor();
    expect(await page.locator('body').textContent()).not.toMatch(/Console Org|notes\.txt|console-site/);
    // Keyboard only: every page of the tenant is reached with Tab and opened with Enter, its heading then shown.
    // From the Documents button (clicked) back past Releases to Sites: keyboard focus from here on.
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    for (const [button, heading] of [
      ['Sites', 'Sites'],
      ['Releases', 'Releases'],
      ['Documents', 'Documents'],
      ['Members', 'Members'],
      ['Roles', 'Custom roles'],
      ['Jobs', 'Jobs'],
      ['Usage', /^Usage of the/],
      ['Audit log', 'Audit log'],
      ['Your sessions', 'Your sessions'],
    ] as const) {
      let presses = 0;
      while ((await page.evaluate(() => document.activeElement?.textContent)) !== button && presses++ < 5) await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.matches(':focus-visible'))).toBe(true);
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { level: 2, name: heading }).waitFor();
    }

    // A quota in words: the Free plan's fifth member (the owner and four invitations) is the last one.
    await page.getByRole('button', { name: 'Members' }).click();
    const invite = page.getByRole('form', { name: 'Invite a member' });
    for (let i = 1; i <= 5; i++) {
      await invite.getByLabel('Email').fill(`quota-${i}-${process.pid}@example.test`);
      await invite.getByRole('button', { name: 'Invite' }).click();
      // The button is disabled while the request runs (set on submit, before this click returns).
      await page.waitForFunction(() => !document.querySelector('form[aria-label="Invite a member"] button')?.hasAttribute('disabled'));
      if (i < 5) expect(await invite.getByRole('alert').count()).toBe(0);
    }
    await invite.getByRole('alert').waitFor();
    expect(await invite.getByRole('alert').textContent()).toBe('Limit reached: the Free plan allows 5 members (counting pending invitations)');
    // Not platform staff: no platform page.
    expect(await page.getByRole('button', { name: /^Platform:/ }).count()).toBe(0);
    await context.close();
  });

  it('cancels a running job from the jobs page: the job ends CANCELLED, its site FAILED', async () => {
    // A deployment whose jobs pause after every step, so that there is time to cancel one.
    const slow = await startTestApp({ JOB_STEP_DELAY_MS: '1500' });
    try {
      const user = await signUp(slow, 'console-cancel');
      const tenant = await createTenant(user, 'cancel');
      await user.gql.ok(`mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } } }`, { i: { tenantId: tenant.id, name: `slow-${process.pid}`, displayName: 'slow', apps: ['notes'] } });
      const { context, page } = await signedInPage(new URL(slow.url).origin, user);
      await page.getByRole('button', { name: 'Jobs' }).click();
      const row = page.locator('tr[data-job="site-provision"]');
      await row.getByRole('button', { name: 'Cancel' }).click();
      await page.waitForFunction(() => document.querySelector('tr[data-job="site-provision"] td:nth-child(2)')?.textContent === 'CANCELLED', undefined, { timeout: 30_000 });
      await page.getByRole('button', { name: 'Sites' }).click();
      await page.waitForFunction((name) => document.querySelector(`tr[data-site="${name}"] td.status`)?.textContent === 'FAILED', `slow-${process.pid}`, { timeout: 15_000 });
      await page.screenshot({ path: path.join(artifacts, 'console-cancelled.png') });
      await context.close();
    } finally {
      await slow.stop();
    }
  }, 60_000);

  it('platform staff: every tenant (suspend with a reason, reactivate) and the fleet with its checks', async () => {
    const owner = await signUp(app, 'console-tenant-owner');
    const tenant = await createTenant(owner, 'staffed');
    const staff = await platformStaff(app, 'SUPERADMIN', 'console-staff');
    const { context, page } = await signedInPage(new URL(app.url).origin, staff);
    // Staff with no tenant of their own: the platform pages only.
    await page.getByRole('button', { name: 'Platform: tenants' }).click();
    const row = page.locator(`tr[data-tenant="${tenant.slug}"]`);
    await row.waitFor();
    expect(await row.locator('td.status').textContent()).toBe('ACTIVE');
    expect(await accessibility(page, 'platform-tenants')).toEqual([]);
    await row.getByLabel('Reason').fill('unpaid invoice');
    await row.getByRole('button', { name: 'Suspend' }).click();
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'SUSPENDED — unpaid invoice', `tr[data-tenant="${tenant.slug}"] td.status`);
    // The owner's writes are refused while suspended (the API's decision, seen over plain GraphQL).
    const refused = await owner.gql.request(`mutation($i: UpdateTenantInput!) { updateTenant(input: $i) { id } }`, { i: { tenantId: tenant.id, name: 'x' } });
    expect(refused.errors?.[0]?.extensions?.code).toBeTruthy();
    await row.getByRole('button', { name: 'Reactivate' }).click();
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'ACTIVE', `tr[data-tenant="${tenant.slug}"] td.status`);

    // The fleet: the default cluster, its managed database server, checked from here (a job; Refresh shows it).
    await page.getByRole('button', { name: 'Platform: fleet' }).click();
    const cluster = page.locator('article[data-cluster]').first();
    await cluster.waitFor();
    const database = cluster.locator('[data-database-check]').first();
    const before = await database.getAttribute('data-checked-at');
    await database.getByRole('button', { name: 'Check' }).click();
    const deadline = Date.now() + 30_000;
    const checked = async () => (await database.getAttribute('data-database-check')) === 'PASSED' && (await database.getAttribute('data-checked-at')) !== before;
    while (!(await checked()) && Date.now() < deadline) {
      await page.waitForTimeout(300);
      await page.getByRole('button', { name: 'Refresh' }).click();
    }
    expect(await checked()).toBe(true);
    expect(await accessibility(page, 'platform-fleet')).toEqual([]);
    await context.close();
  }, 60_000);
});
