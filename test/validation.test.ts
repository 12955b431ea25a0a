import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, signUp, createTenant, uniqueEmail, PASSWORD, type TestUser } from './support/client.ts';

/** Bad input answers a typed error naming the field, and writes nothing. */
let app: TestApp;
let owner: TestUser;
let tenant: { id: string; slug: string };

const SIGN_UP = `mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }`;
const CREATE = `mutation($i: CreateTenantInput!) { createTenant(input: $i) { id } }`;
const INVITE = `mutation($i: InviteMemberInput!) { inviteMember(input: $i) { id token } }`;
const ACCEPT = `mutation($t: String!) { acceptInvitation(token: $t) { id } }`;

beforeAll(async () => {
  app = await startTestApp();
  owner = await signUp(app, 'owner');
  tenant = await createTenant(owner, 'valid');
});
afterAll(async () => {
  await app?.stop();
});

async function expectError(gql: Gql, query: string, variables: Record<string, unknown>, code: string, field?: string) {
  const r = await gql.request(query, variables);
  expect(r.errors?.[0]?.extensions?.code, JSON.stringify(variables)).toBe(code);
  if (field) expect(r.errors?.[0]?.extensions?.field, JSON.stringify(variables)).toBe(field);
  expect(r.errors?.[0]?.message.length).toBeGreaterThan(5);
  return r.errors![0]!;
}

async function tenantCount() {
  const c = new pg.Client({ connectionString: app.databaseUrl });
  await c.connect();
  const { rows } = await c.query(`select count(*)::int as n from app_public.tenants`);
  await c.end();
  return rows[0].n as number;
}

describe('sign-up input', () => {
  it('refuses invalid emails and weak passwords, and duplicate accounts', async () => {
    const anon = new Gql(app);
    for (const email of ['nope', 'a@b', '@example.com', 'x y@example.com', `${'a'.repeat(250)}@example.com`]) {
      await expectError(anon, SIGN_UP, { i: { email, password: PASSWORD, name: 'X' } }, 'BAD_USER_INPUT', 'email');
    }
    for (const password of ['short', 'password123', 'aaaaaaaaaaaaaa', '']) {
      await expectError(anon, SIGN_UP, { i: { email: uniqueEmail(), password, name: 'X' } }, 'BAD_USER_INPUT', 'password');
    }
    await expectError(anon, SIGN_UP, { i: { email: uniqueEmail(), password: PASSWORD, name: '  ' } }, 'BAD_USER_INPUT', 'name');
    await expectError(anon, SIGN_UP, { i: { email: owner.email.toUpperCase(), password: PASSWORD, name: 'X' } }, 'CONFLICT', 'email');
  });
});

describe('tenant input', () => {
  it('refuses non-DNS-safe and reserved slugs, and duplicates', async () => {
    const before = await tenantCount();
    for (const slug of ['ab', 'Upper', 'under_score', '-lead', 'trail-', 'dou--ble', 'a'.repeat(64), 'spa ce', 'ünï']) {
      await expectError(owner.gql, CREATE, { i: { name: 'X', slug } }, 'BAD_USER_INPUT', 'slug');
    }
    for (const slug of ['admin', 'api', 'www', 'graphql']) {
      const e = await expectError(owner.gql, CREATE, { i: { name: 'X', slug } }, 'BAD_USER_INPUT', 'slug');
      expect(e.message).toMatch(/reserved/);
    }
    await expectError(owner.gql, CREATE, { i: { name: 'X', slug: tenant.slug } }, 'CONFLICT', 'slug');
    await expectError(owner.gql, CREATE, { i: { name: '', slug: 'fine-slug-1' } }, 'BAD_USER_INPUT', 'name');
    expect(await tenantCount()).toBe(before);
  });

  it('needs a signed-in user', async () => {
    await expectError(new Gql(app), CREATE, { i: { name: 'X', slug: 'anon-slug' } }, 'UNAUTHENTICATED');
  });

  it('refuses malformed ids with BAD_USER_INPUT', async () => {
    await expectError(owner.gql, `mutation($i: UpdateTenantInput!) { updateTenant(input: $i) { id } }`, { i: { tenantId: 'garbage', name: 'x' } }, 'BAD_USER_INPUT', 'tenantId');
  });
});

describe('invitations', () => {
  it('refuses unknown roles, bad emails and existing members', async () => {
    const e = await expectError(owner.gql, INVITE, { i: { tenantId: tenant.id, email: uniqueEmail(), role: 'GOD' } }, 'BAD_USER_INPUT');
    expect(e.extensions?.field).toMatch(/role/);
    await expectError(owner.gql, INVITE, { i: { tenantId: tenant.id, email: 'not-an-email', role: 'MEMBER' } }, 'BAD_USER_INPUT', 'email');
    await expectError(owner.gql, INVITE, { i: { tenantId: tenant.id, email: owner.email, role: 'MEMBER' } }, 'CONFLICT', 'email');
    const invitee = uniqueEmail('twice');
    await owner.gql.ok(INVITE, { i: { tenantId: tenant.id, email: invitee, role: 'MEMBER' } });
    await expectError(owner.gql, INVITE, { i: { tenantId: tenant.id, email: invitee, role: 'MEMBER' } }, 'CONFLICT', 'email');
  });

  it('an invitation works once, never after expiry, and only for its addressee', async () => {
    const invitee = await signUp(app, 'invitee');
    const other = await signUp(app, 'other');
    const inv = (await owner.gql.ok(INVITE, { i: { tenantId: tenant.id, email: invitee.email, role: 'VIEWER' } })).inviteMember;
    await expectError(other.gql, ACCEPT, { t: inv.token }, 'NOT_FOUND');
    await expectError(invitee.gql, ACCEPT, { t: 'made-up-token' }, 'NOT_FOUND');
    await invitee.gql.ok(ACCEPT, { t: inv.token });
    await expectError(invitee.gql, ACCEPT, { t: inv.token }, 'BAD_USER_INPUT', 'token');

    const late = await signUp(app, 'late');
    const inv2 = (await owner.gql.ok(INVITE, { i: { tenantId: tenant.id, email: late.email, role: 'VIEWER' } })).inviteMember;
    const c = new pg.Client({ connectionString: app.databaseUrl });
    await c.connect();
    await c.query(`update app_public.invitations set expires_at = now() - interval '1 minute' where email = $1`, [late.email]);
    await c.end();
    const e = await expectError(late.gql, ACCEPT, { t: inv2.token }, 'BAD_USER_INPUT', 'token');
    expect(e.message).toMatch(/expired/);
    // An expired invitation can be replaced by a new one.
    const inv3 = (await owner.gql.ok(INVITE, { i: { tenantId: tenant.id, email: late.email, role: 'VIEWER' } })).inviteMember;
    await late.gql.ok(ACCEPT, { t: inv3.token });
  });

  it('the token is shown once: never readable from the invitations list', async () => {
    const r = await owner.gql.ok(`query($s: String!) { tenant(slug: $s) { invitations { edges { node { email token } } } } }`, { s: tenant.slug });
    expect(r.tenant.invitations.edges.length).toBeGreaterThan(0);
    for (const e of r.tenant.invitations.edges) expect(e.node.token).toBeNull();
  });

  it('accepting needs a signed-in user', async () => {
    await expectError(new Gql(app), ACCEPT, { t: 'x' }, 'UNAUTHENTICATED');
  });
});

describe('headers', () => {
  it('a malformed X-Tenant header is refused as bad input', async () => {
    const r = await owner.gql.request(`{ me { id } }`, {}, { 'x-tenant': '%%%' });
    expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});
