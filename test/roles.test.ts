import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';
import { signUp, createTenant, addMember, uniqueEmail, type TestUser } from './support/client.ts';

/** Roles inside one tenant: OWNER > ADMIN > MEMBER > VIEWER, with the rules of the contract. */
let app: TestApp;
let owner: TestUser, admin: TestUser, member: TestUser, viewer: TestUser;
let tenant: { id: string; slug: string };

const INVITE = `mutation($i: InviteMemberInput!) { inviteMember(input: $i) { id role token } }`;
const CHANGE = `mutation($i: ChangeMemberRoleInput!) { changeMemberRole(input: $i) { role user { id } } }`;
const REMOVE = `mutation($i: RemoveMemberInput!) { removeMember(input: $i) }`;
const LEAVE = `mutation($t: ID!) { leaveTenant(tenantId: $t) }`;
const UPDATE = `mutation($i: UpdateTenantInput!) { updateTenant(input: $i) { name } }`;

beforeAll(async () => {
  app = await startTestApp();
  [owner, admin, member, viewer] = await Promise.all(['owner', 'admin', 'member', 'viewer'].map((n) => signUp(app, n)));
  tenant = await createTenant(owner, 'roles');
  await addMember(owner, tenant.id, admin, 'ADMIN');
  await addMember(owner, tenant.id, member, 'MEMBER');
  await addMember(owner, tenant.id, viewer, 'VIEWER');
});
afterAll(async () => {
  await app?.stop();
});

describe('roles', () => {
  it('reports each viewer’s role', async () => {
    for (const [u, role] of [[owner, 'OWNER'], [admin, 'ADMIN'], [member, 'MEMBER'], [viewer, 'VIEWER']] as const) {
      expect((await u.gql.ok(`query($s: String!) { tenant(slug: $s) { viewerRole } }`, { s: tenant.slug })).tenant.viewerRole).toBe(role);
    }
  });

  it('viewers and members read but cannot manage', async () => {
    for (const u of [viewer, member]) {
      expect(await u.gql.code(UPDATE, { i: { tenantId: tenant.id, name: 'x' } })).toBe('FORBIDDEN');
      expect(await u.gql.code(INVITE, { i: { tenantId: tenant.id, email: uniqueEmail(), role: 'VIEWER' } })).toBe('FORBIDDEN');
      expect(await u.gql.code(CHANGE, { i: { tenantId: tenant.id, userId: viewer.id, role: 'MEMBER' } })).toBe('FORBIDDEN');
      const r = await u.gql.ok(`query($s: String!) { tenant(slug: $s) { name members { totalCount } auditLog { edges { node { id } } } } }`, { s: tenant.slug });
      expect(r.tenant.members.totalCount).toBe(4);
      expect(r.tenant.auditLog.edges).toEqual([]); // the audit log is for admins and owners
    }
  });

  it('admins manage members and viewers, not admins or owners', async () => {
    expect((await admin.gql.ok(INVITE, { i: { tenantId: tenant.id, email: uniqueEmail(), role: 'MEMBER' } })).inviteMember.role).toBe('MEMBER');
    expect(await admin.gql.code(INVITE, { i: { tenantId: tenant.id, email: uniqueEmail(), role: 'ADMIN' } })).toBe('FORBIDDEN');
    expect(await admin.gql.code(INVITE, { i: { tenantId: tenant.id, email: uniqueEmail(), role: 'OWNER' } })).toBe('FORBIDDEN');
    expect((await admin.gql.ok(CHANGE, { i: { tenantId: tenant.id, userId: viewer.id, role: 'MEMBER' } })).changeMemberRole.role).toBe('MEMBER');
    expect((await admin.gql.ok(CHANGE, { i: { tenantId: tenant.id, userId: viewer.id, role: 'VIEWER' } })).changeMemberRole.role).toBe('VIEWER');
    expect(await admin.gql.code(CHANGE, { i: { tenantId: tenant.id, userId: viewer.id, role: 'OWNER' } })).toBe('FORBIDDEN');
    expect(await admin.gql.code(CHANGE, { i: { tenantId: tenant.id, userId: owner.id, role: 'MEMBER' } })).toBe('FORBIDDEN');
    expect(await admin.gql.code(REMOVE, { i: { tenantId: tenant.id, userId: owner.id } })).toBe('FORBIDDEN');
    expect((await admin.gql.ok(`query($s: String!) { tenant(slug: $s) { name } }`, { s: tenant.slug })).tenant.name).toBeTruthy();
    expect((await admin.gql.ok(UPDATE, { i: { tenantId: tenant.id, name: 'Renamed by admin' } })).updateTenant.name).toBe('Renamed by admin');
  });

  it('only owners grant OWNER, and a tenant always keeps one owner', async () => {
    // The sole owner can neither leave nor demote themselves.
    const leave = await owner.gql.request(LEAVE, { t: tenant.id });
    expect(leave.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(leave.errors?.[0]?.message).toMatch(/at least one owner/);
    expect(await owner.gql.code(CHANGE, { i: { tenantId: tenant.id, userId: owner.id, role: 'ADMIN' } })).toBe('CONFLICT');
    // Promote the admin to OWNER; now the first owner may step down.
    expect((await owner.gql.ok(CHANGE, { i: { tenantId: tenant.id, userId: admin.id, role: 'OWNER' } })).changeMemberRole.role).toBe('OWNER');
    expect((await owner.gql.ok(CHANGE, { i: { tenantId: tenant.id, userId: owner.id, role: 'ADMIN' } })).changeMemberRole.role).toBe('ADMIN');
    expect((await admin.gql.ok(`query($s: String!) { tenant(slug: $s) { viewerRole } }`, { s: tenant.slug })).tenant.viewerRole).toBe('OWNER');
    // …and the last remaining owner is protected again.
    expect(await admin.gql.code(LEAVE, { t: tenant.id })).toBe('CONFLICT');
  });

  it('members leave on their own; removed members lose access at once', async () => {
    expect((await admin.gql.ok(REMOVE, { i: { tenantId: tenant.id, userId: viewer.id } })).removeMember).toBe(true);
    expect((await viewer.gql.ok(`query($s: String!) { tenant(slug: $s) { id } }`, { s: tenant.slug })).tenant).toBeNull();
    expect(await viewer.gql.code(LEAVE, { t: tenant.id })).toBe('NOT_FOUND');
    const extra = await signUp(app, 'extra');
    await addMember(admin, tenant.id, extra, 'MEMBER');
    expect((await extra.gql.ok(LEAVE, { t: tenant.id })).leaveTenant).toBe(true);
    expect((await extra.gql.ok(`query($s: String!) { tenant(slug: $s) { id } }`, { s: tenant.slug })).tenant).toBeNull();
  });

  it('the audit log records every mutation with actor, target, outcome, ip and user agent', async () => {
    const r = await admin.gql.ok(
      `query($s: String!) { tenant(slug: $s) { auditLog(first: 100) { totalCount edges { node { action outcome targetType targetId ip userAgent actor { email } } } } } }`,
      { s: tenant.slug },
    );
    const entries = r.tenant.auditLog.edges.map((e: any) => e.node);
    const actions = new Set(entries.filter((e: any) => e.outcome === 'SUCCESS').map((e: any) => e.action));
    for (const a of ['createTenant', 'inviteMember', 'acceptInvitation', 'changeMemberRole', 'removeMember', 'leaveTenant', 'updateTenant']) {
      expect(actions, a).toContain(a);
    }
    // Refused attempts by members of the tenant are kept too.
    expect(entries.some((e: any) => e.outcome === 'FAILURE' && e.action === 'leaveTenant')).toBe(true);
    const rename = entries.find((e: any) => e.action === 'updateTenant');
    expect(rename.actor.email).toBe(admin.email);
    expect(rename.ip).toBeTruthy();
    expect(rename.userAgent).toBeTruthy();
  });
});

describe('plan quotas', () => {
  it('inviting past the free plan’s maxMembers answers QUOTA_EXCEEDED', async () => {
    const boss = await signUp(app, 'boss');
    const t = await createTenant(boss, 'quota');
    const plan = await boss.gql.ok(`query($s: String!) { tenant(slug: $s) { plan { name maxMembers } } }`, { s: t.slug });
    expect(plan.tenant.plan.name).toBe('Free');
    const max = plan.tenant.plan.maxMembers as number;
    for (let i = 1; i < max; i++) await boss.gql.ok(INVITE, { i: { tenantId: t.id, email: uniqueEmail('q'), role: 'MEMBER' } });
    const over = await boss.gql.request(INVITE, { i: { tenantId: t.id, email: uniqueEmail('q'), role: 'MEMBER' } });
    expect(over.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
    expect(over.errors?.[0]?.message).toMatch(new RegExp(`${max} members`));
  });
});
