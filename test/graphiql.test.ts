import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startTestApp, type TestApp } from './support/app.ts';
import { createTenant, signUp, type TestUser } from './support/client.ts';
import { launchChromium } from './support/browser.ts';
import { GRAPHIQL_CSP, loadExamples } from '../src/graphql/graphiql.ts';

/**
 * Issue 12 §1: GraphiQL from our own assets, in Debian's Chromium. The page makes no request beyond our origin, runs
 * queries with the header editor's bearer token and X-Tenant, runs subscriptions over graphql-ws with the same
 * headers, and offers every operation of schema/operations/ as an example. Screenshots go to test-artifacts/.
 */
let app: TestApp;
let browser: Browser;
let user: TestUser;
let tenant: { id: string; slug: string };
const artifacts = path.resolve('test-artifacts');

beforeAll(async () => {
  [app, browser] = await Promise.all([startTestApp(), launchChromium()]);
  user = await signUp(app, 'graphiql');
  tenant = await createTenant(user, 'graphiql');
  fs.mkdirSync(artifacts, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
});

const origin = () => new URL(app.url).origin;

/** CodeMirror 5 keeps its instance on its wrapper element. */
const editorValue = (page: Page, selector: string) => page.$eval(selector, (el) => (el as unknown as { CodeMirror: { getValue(): string } }).CodeMirror.getValue());
const setEditor = (page: Page, selector: string, value: string) =>
  page.$eval(selector, (el, v) => (el as unknown as { CodeMirror: { setValue(s: string): void } }).CodeMirror.setValue(v), value);

const QUERY = '.graphiql-query-editor .CodeMirror';
const HEADERS = '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror';
const RESPONSE = '.graphiql-response .CodeMirror';

async function openGraphiql() {
  const page = await browser.newPage();
  const requests: string[] = [];
  const violations: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('websocket', (ws) => requests.push(ws.url()));
  page.on('console', (m) => {
    if (/Content[- ]Security[- ]Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
  await page.goto(`${origin()}/graphql`);
  await page.waitForSelector(QUERY, { timeout: 20_000 });
  // The schema is loaded (introspection over our fetcher): the docs button becomes usable.
  await page.waitForSelector('.graphiql-container', { timeout: 20_000 });
  return { page, requests, violations };
}

async function useHeaders(page: Page, headers: Record<string, string>) {
  await page.getByRole('button', { name: 'Headers' }).click();
  await page.waitForSelector(HEADERS);
  await setEditor(page, HEADERS, JSON.stringify(headers));
}

async function run(page: Page, query: string) {
  await setEditor(page, QUERY, query);
  await page.click('.graphiql-execute-button');
}

describe('GraphiQL at /graphql', () => {
  it('answers browsers with our page under a strict CSP, and everything else with the API', async () => {
    const html = await fetch(`${origin()}/graphql`, { headers: { accept: 'text/html' } });
    expect(html.status).toBe(200);
    expect(html.headers.get('content-security-policy')).toBe(GRAPHIQL_CSP);
    const body = await html.text();
    expect(body).toContain('/graphiql/assets/graphiql.js');
    expect(body).not.toMatch(/https?:\/\/(?!localhost)/);
    // A client asking for JSON still reaches Apollo (a GET without a query is its 400, not our page).
    const api = await fetch(`${origin()}/graphql`, { headers: { accept: 'application/json' } });
    expect(api.headers.get('content-type')).not.toMatch(/text\/html/);
    // The bundle itself is ours and cacheable.
    const js = await fetch(`${origin()}/graphiql/assets/graphiql.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toMatch(/immutable/);
  });

  it('loads with no request beyond our origin, and runs a query with the bearer token and X-Tenant of the header editor', async () => {
    const { page, requests, violations } = await openGraphiql();
    expect(await editorValue(page, QUERY)).toBeTruthy();
    await useHeaders(page, { Authorization: `Bearer ${user.gql.token}`, 'X-Tenant': tenant.slug });
    // X-Tenant narrows the request to that tenant: of the user's two, only it is listed.
    await createTenant(user, 'graphiql-other');
    await run(page, `{ me { email } tenants(first: 10) { edges { node { slug viewerRole } } } }`);
    await page.waitForFunction((sel) => (document.querySelector(sel) as unknown as { CodeMirror: { getValue(): string } })?.CodeMirror.getValue().includes('"data"'), RESPONSE, { timeout: 15_000 });
    const response = JSON.parse(await editorValue(page, RESPONSE));
    expect(response, JSON.stringify(response)).toMatchObject({ data: { me: { email: user.email }, tenants: { edges: [{ node: { slug: tenant.slug, viewerRole: 'OWNER' } }] } } });
    await page.screenshot({ path: path.join(artifacts, 'graphiql-query.png') });
    expect(requests.filter((u) => !u.startsWith(origin()) && !u.startsWith('data:'))).toEqual([]);
    expect(violations).toEqual([]);
    await page.close();
  });

  it('runs a subscription over graphql-ws with the same headers: an audit entry arrives live', async () => {
    const { page, requests } = await openGraphiql();
    await useHeaders(page, { Authorization: `Bearer ${user.gql.token}` });
    await run(page, `subscription($t: ID!) { auditEvents(tenantId: $t) { action } }`.replace('$t: ID!', '$t: ID! = "' + tenant.id + '"'));
    // Once subscribed, an action in the tenant is audited and shows up in the response pane.
    await new Promise((r) => setTimeout(r, 1000));
    await user.gql.ok(`mutation($i: InviteMemberInput!) { inviteMember(input: $i) { token } }`, { i: { tenantId: tenant.id, email: `live-${process.pid}@example.com`, role: 'MEMBER' } });
    await page.waitForFunction((sel) => (document.querySelector(sel) as unknown as { CodeMirror: { getValue(): string } })?.CodeMirror.getValue().includes('inviteMember'), RESPONSE, { timeout: 15_000 });
    expect(requests.some((u) => u.startsWith(origin().replace(/^http/, 'ws')))).toBe(true);
    await page.screenshot({ path: path.join(artifacts, 'graphiql-subscription.png') });
    await page.close();
  });

  it('offers every operation of schema/operations/ as an example that opens in a new tab', async () => {
    const examples = loadExamples();
    expect(examples.length).toBeGreaterThan(20);
    const { page } = await openGraphiql();
    await page.getByRole('button', { name: 'Show Examples' }).click();
    const items = page.locator('.tp-examples li button');
    expect(await items.count()).toBe(examples.length);
    const createSite = examples.find((e) => e.name === 'CreateSite')!;
    await page.locator('.tp-examples li button', { hasText: 'CreateSite' }).first().click();
    await page.waitForFunction(
      (sel) => (document.querySelector(sel) as unknown as { CodeMirror: { getValue(): string } })?.CodeMirror.getValue().startsWith('mutation CreateSite'),
      QUERY,
      { timeout: 10_000 },
    );
    // The operation with the fragments it uses, and no other: the API refuses unused fragments.
    expect(await editorValue(page, QUERY)).toBe(createSite.query);
    expect(createSite.query).toMatch(/fragment SiteFields/);
    expect(createSite.query).not.toMatch(/fragment BackupFields/);
    await page.screenshot({ path: path.join(artifacts, 'graphiql-examples.png') });
    await page.close();
  });
});
