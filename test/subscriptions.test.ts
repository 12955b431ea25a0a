import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from './support/app.ts';
import { signUp, createTenant, addMember, type TestUser } from './support/client.ts';

/** auditEvents over graphql-ws: delivered to admins and owners, re-checked per event under the subscriber's context. */
let app: TestApp;
let owner: TestUser;
let admin: TestUser;
let tenant: { id: string; slug: string };
const clients: Client[] = [];

function connect(token?: string) {
  const client = createClient({
    url: app.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
  clients.push(client);
  return client;
}

/** Subscribes and collects events; resolves `ready` once the server has confirmed the subscription by a probe. */
function watch(client: Client, tenantId: string) {
  const events: any[] = [];
  const errors: any[] = [];
  let done = false;
  const stop = client.subscribe(
    { query: `subscription($t: ID!) { auditEvents(tenantId: $t) { action targetId outcome actor { email } } }`, variables: { t: tenantId } },
    {
      next: (v) => (v.errors ? errors.push(...v.errors) : events.push(v.data!.auditEvents)),
      error: (e) => errors.push(e),
      complete: () => (done = true),
    },
  );
  return { events, errors, stop, isDone: () => done };
}

async function until(predicate: () => boolean, ms = 5000) {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const rename = (u: TestUser, name: string) =>
  u.gql.ok(`mutation($i: UpdateTenantInput!) { updateTenant(input: $i) { name } }`, { i: { tenantId: tenant.id, name } });

beforeAll(async () => {
  app = await startTestApp();
  owner = await signUp(app, 'owner');
  admin = await signUp(app, 'admin');
  tenant = await createTenant(owner, 'subs');
  await addMember(owner, tenant.id, admin, 'ADMIN');
});
afterAll(async () => {
  for (const c of clients) await c.dispose();
  await app?.stop();
});

describe('auditEvents subscription', () => {
  it('streams each new entry to admins, and stops the moment the subscriber is no longer an admin', async () => {
    const w = watch(connect(admin.gql.token), tenant.id);
    // The subscription is live once the first event arrives: keep renaming until it does.
    for (let i = 0; i < 50 && w.events.length === 0; i++) {
      await rename(owner, `Renamed ${i}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(w.events[0]).toMatchObject({ action: 'updateTenant', outcome: 'SUCCESS', actor: { email: owner.email } });
    // Demoted to MEMBER: the next entries are re-read under the admin's own context and not delivered.
    await owner.gql.ok(`mutation($i: ChangeMemberRoleInput!) { changeMemberRole(input: $i) { role } }`, {
      i: { tenantId: tenant.id, userId: admin.id, role: 'MEMBER' },
    });
    await new Promise((r) => setTimeout(r, 300)); // let the demotion's own entry arrive (or not) first
    const seen = w.events.length;
    const ownerWatch = watch(connect(owner.gql.token), tenant.id);
    for (let i = 0; i < 50 && ownerWatch.events.length === 0; i++) {
      await rename(owner, `After demotion ${i}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(ownerWatch.events.length).toBeGreaterThan(0);
    expect(w.events.slice(seen).filter((e) => e.action === 'updateTenant')).toEqual([]);
    w.stop();
    ownerWatch.stop();
  });

  it('members (not admins) are refused with FORBIDDEN', async () => {
    const member = await signUp(app, 'member');
    await addMember(owner, tenant.id, member, 'MEMBER');
    const w = watch(connect(member.gql.token), tenant.id);
    await until(() => w.errors.length > 0 || w.isDone());
    expect(w.errors[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('a bad token closes the connection (4403), no token cannot subscribe', async () => {
    const bad = connect('not-a-token');
    const closed = await new Promise<number>((resolve) => {
      bad.on('closed', (e: any) => resolve(e.code));
      bad.subscribe({ query: `subscription($t: ID!) { auditEvents(tenantId: $t) { action } }`, variables: { t: tenant.id } }, { next() {}, error() {}, complete() {} });
    });
    expect(closed).toBe(4403);
    const anon = watch(connect(), tenant.id);
    await until(() => anon.errors.length > 0 || anon.isDone());
    expect(anon.errors[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
