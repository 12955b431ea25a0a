import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { addMember, createTenant, signUp, type TestUser } from './support/client.ts';
import { schema } from '../src/graphql/schema.ts';
import { declaredPermission } from '../src/graphql/permissions.ts';
import { PLATFORM_PERMISSIONS, TENANT_PERMISSIONS } from '../src/modules/access/catalogue.ts';
import { PERMISSION_FACTS_SQL, renderPermissionsDoc, type PermissionFacts } from '../src/modules/access/docs.ts';
import { decodeGlobalID } from '@pothos/plugin-relay';

/**
 * Issue 9 §1–2: one catalogue, roles as permission sets, one function deciding for the API and the policies.
 * Proof that nothing is forgotten (catalogue, declarations, policies, docs), then custom roles and support access
 * through the public API, then the policies as the request role.
 */
let app: TestApp;
let db: pg.Client;

beforeAll(async () => {
  app = await startTestApp();
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
});
afterAll(async () => {
  await db?.end();
  await app?.stop();
});

const uuid = (globalId: string) => decodeGlobalID(globalId).id;

async function facts(): Promise<PermissionFacts> {
  const read = async (sql: string) => (await db.query(sql)).rows;
  return {
    permissions: await read(PERMISSION_FACTS_SQL.permissions),
    builtinRoles: await read(PERMISSION_FACTS_SQL.builtinRoles),
    templates: await read(PERMISSION_FACTS_SQL.templates),
    platformRoles: await read(PERMISSION_FACTS_SQL.platformRoles),
    policies: await read(PERMISSION_FACTS_SQL.policies),
  };
}

/** Policies that decide by something other than a permission, and why (README, "Permissions"). */
const NOT_ABOUT_PERMISSIONS: Record<string, string> = {
  'memberships:SELECT': 'members of a tenant see who belongs to it (uploader names, member lists): visibility, not a permission',
  'audit_events:INSERT': 'whoever acts in a tenant records their own act (actor = the current user)',
};

describe('the catalogue, the declarations and the policies agree', () => {
  it('SQL and TypeScript name the same permissions', async () => {
    const { rows } = await db.query(`select id, scope from app_public.permissions order by id`);
    expect(rows.filter((r) => r.scope === 'tenant').map((r) => r.id)).toEqual([...TENANT_PERMISSIONS].sort());
    expect(rows.filter((r) => r.scope === 'platform').map((r) => r.id)).toEqual([...PLATFORM_PERMISSIONS].sort());
  });

  it('every mutation declares a catalogue permission, self or public', async () => {
    const { rows } = await db.query(`select id from app_public.permissions`);
    const known = new Set([...rows.map((r) => r.id), 'self', 'public']);
    const fields = Object.values(schema.getMutationType()!.getFields());
    expect(fields.length).toBeGreaterThan(30);
    for (const f of fields) expect(known.has(String(declaredPermission(f))), `${f.name} declares ${declaredPermission(f)}`).toBe(true);
  });

  it('every tenant table has a policy asking the permission function for each command the request role may run', async () => {
    const { rows: tables } = await db.query(
      `select c.relname as table from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'app_public' and c.relkind = 'r'
          and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
        order by 1`,
    );
    expect(tables.length).toBeGreaterThanOrEqual(14);
    const missing: string[] = [];
    for (const { table } of tables) {
      for (const command of ['SELECT', 'INSERT', 'UPDATE', 'DELETE']) {
        const { rows } = await db.query(
          `select has_table_privilege('tenantplane_app', 'app_public.' || $1, $2) or exists (
                    select 1 from information_schema.column_privileges
                     where grantee = 'tenantplane_app' and table_schema = 'app_public' and table_name = $1 and privilege_type = $2) as granted,
                  coalesce(bool_or(coalesce(p.qual, '') || coalesce(p.with_check, '') ~ '(permitted_tenant_ids|has_permission|can_manage_role)\\('), false) as asks
             from pg_policies p where p.schemaname = 'app_public' and p.tablename = $1 and p.cmd in ($2, 'ALL')`,
          [table, command],
        );
        if (rows[0].granted && !rows[0].asks && !NOT_ABOUT_PERMISSIONS[`${table}:${command}`]) missing.push(`${table}:${command}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('docs/permissions.md is current', async () => {
    const file = path.join(import.meta.dirname, '..', 'docs', 'permissions.md');
    const rendered = renderPermissionsDoc(await facts(), schema);
    if (process.env.UPDATE_DOCS === '1') fs.writeFileSync(file, rendered);
    expect(fs.existsSync(file), 'run UPDATE_DOCS=1 npx vitest run test/permissions.test.ts').toBe(true);
    expect(fs.readFileSync(file, 'utf8'), 'docs/permissions.md is stale: UPDATE_DOCS=1 npx vitest run test/permissions.test.ts').toBe(rendered);
  });

  it('every permission a policy names is in the catalogue (policies are not checked at run time, for speed)', async () => {
    const known = new Set((await db.query(`select id from app_public.permissions`)).rows.map((r) => r.id));
    const named = (await facts()).policies.flatMap((p) => p.permissions.map((x) => `${p.table}: ${x}`));
    expect(named.length).toBeGreaterThan(30);
    expect(named.filter((n) => !known.has(n.split(': ')[1]!))).toEqual([]);
  });

  it('unknown permission strings are refused, named', async () => {
    await expect(db.query(`select app.has_permission(gen_random_uuid(), 'sites:fly')`)).rejects.toThrow(/unknown permission: sites:fly/);
    await expect(db.query(`select app.check_permission_patterns('{sites:write,bogus:read,nope}', 'tenant')`)).rejects.toThrow(
      /unknown permissions: bogus:read, nope/,
    );
    // Wildcards are patterns over the scope's catalogue; a platform string is no tenant permission.
    const { rows } = await db.query(`select app.check_permission_patterns('{sites:*,*:read,*:*,sites:write}', 'tenant') as p`);
    expect(rows[0].p).toEqual(['*:*', '*:read', 'sites:*', 'sites:write']);
    await expect(db.query(`select app.check_permission_patterns('{platform.users:write}', 'tenant')`)).rejects.toThrow(/platform.users:write/);
  });
});

const ROLE = `id name permissions holders { member { user { email } } assignedBy { email } assignedAt }`;
const CREATE_ROLE = `mutation($i: CreateRoleInput!) { createRole(input: $i) { ${ROLE} } }`;
const ASSIGN = `mutation($i: RoleAssignmentInput!) { assignRole(input: $i) { assignedAt role { name } } }`;
const UNASSIGN = `mutation($i: RoleAssignmentInput!) { unassignRole(input: $i) }`;
const CREATE_SITE = `mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id status } } }`;
const ADD_LINK = `mutation($i: AddSocialLinkInput!) { addSocialLink(input: $i) { id } }`;
let siteCounter = 0;
const siteInput = (tenantId: string) => ({ tenantId, name: `perm-${process.pid}-${siteCounter++}`, displayName: 'Perm site' });

describe('custom roles through GraphQL', () => {
  let owner: TestUser;
  let admin: TestUser;
  let viewer: TestUser;
  let outsider: TestUser;
  let tenant: { id: string; slug: string };
  let other: { id: string; slug: string };

  beforeAll(async () => {
    [owner, admin, viewer, outsider] = await Promise.all([signUp(app, 'cr-owner'), signUp(app, 'cr-admin'), signUp(app, 'cr-viewer'), signUp(app, 'cr-outsider')]);
    tenant = await createTenant(owner, 'cr');
    other = await createTenant(outsider, 'cr-other');
    await addMember(owner, tenant.id, admin, 'ADMIN');
    await addMember(owner, tenant.id, viewer, 'VIEWER');
  });

  const permissionsOf = async (u: TestUser, slug = tenant.slug) =>
    (await u.gql.ok(`query($s: String!) { tenant(slug: $s) { viewerPermissions } }`, { s: slug })).tenant.viewerPermissions as string[];

  it('lists the catalogue, the built-in roles and the templates', async () => {
    const data = await viewer.gql.ok(`{ permissionCatalogue { id scope } builtInRoles { role permissions } roleTemplates { name permissions } }`);
    expect(data.permissionCatalogue.map((p: any) => p.id)).toContain('sites:write');
    expect(data.builtInRoles.map((r: any) => r.role)).toEqual(['OWNER', 'ADMIN', 'MEMBER', 'VIEWER']);
    expect(data.builtInRoles[0].permissions).toEqual(['*:*']);
    expect(data.roleTemplates.map((t: any) => t.name)).toEqual(['admin', 'operator', 'viewer']);
    // A viewer's effective permissions are exactly the VIEWER set, expanded.
    expect(await permissionsOf(viewer)).toEqual(['backups:read', 'chats:read', 'documents:read', 'jobs:read', 'roles:read', 'sites:read', 'social_links:read']);
  });

  it('refuses unknown permissions and bad names, naming them', async () => {
    const bad = await owner.gql.request(CREATE_ROLE, { i: { tenantId: tenant.id, name: 'ops', permissions: ['sites:write', 'bogus:read', 'nope'] } });
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(bad.errors?.[0]?.extensions?.field).toBe('permissions');
    expect(bad.errors?.[0]?.message).toMatch(/bogus:read, nope/);
    const name = await owner.gql.request(CREATE_ROLE, { i: { tenantId: tenant.id, name: 'Ops!', permissions: ['sites:read'] } });
    expect(name.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'name' });
    const template = await owner.gql.request(CREATE_ROLE, { i: { tenantId: tenant.id, name: 'ops', template: 'wizard' } });
    expect(template.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'template' });
    const { rows } = await db.query(`select count(*)::int as n from app_public.roles where tenant_id = $1`, [uuid(tenant.id)]);
    expect(rows[0].n).toBe(0);
  });

  it('a custom role adds to a built-in one, several roles add up, and taking one away takes its permissions at once', async () => {
    expect(await viewer.gql.code(CREATE_SITE, { i: siteInput(tenant.id) })).toBe('FORBIDDEN');
    const runner = (await owner.gql.ok(CREATE_ROLE, { i: { tenantId: tenant.id, name: 'site-runner', permissions: ['sites:*', 'backups:read'] } })).createRole;
    expect(runner.permissions).toEqual(['backups:read', 'sites:*']);
    const linker = (await admin.gql.ok(CREATE_ROLE, { i: { tenantId: tenant.id, name: 'linker', permissions: ['social_links:write'] } })).createRole;
    await admin.gql.ok(ASSIGN, { i: { tenantId: tenant.id, userId: viewer.id, roleId: runner.id } });
    await admin.gql.ok(ASSIGN, { i: { tenantId: tenant.id, userId: viewer.id, roleId: linker.id } });
    expect(await admin.gql.code(ASSIGN, { i: { tenantId: tenant.id, userId: viewer.id, roleId: linker.id } })).toBe('CONFLICT');

    const site = (await viewer.gql.ok(CREATE_SITE, { i: siteInput(tenant.id) })).createSite.site;
    expect(site.status).toBe('PENDING');
    await viewer.gql.ok(ADD_LINK, { i: { tenantId: tenant.id, platform: 'LINKEDIN', url: `https://linkedin.com/company/cr-${process.pid}` } });
    expect(await permissionsOf(viewer)).toEqual(expect.arrayContaining(['sites:write', 'sites:operate', 'social_links:write', 'documents:read']));
    expect(await permissionsOf(viewer)).not.toContain('documents:write');

    const listed = await viewer.gql.ok(`query($s: String!) { tenant(slug: $s) { roles { name holders { member { user { email } } assignedBy { email } } } members { edges { node { user { email } customRoles { role { name } } } } } } }`, { s: tenant.slug });
    expect(listed.tenant.roles.map((r: any) => r.name)).toEqual(['linker', 'site-runner']);
    expect(listed.tenant.roles[1].holders).toEqual([{ member: { user: { email: viewer.email } }, assignedBy: { email: admin.email } }]);
    const me = listed.tenant.members.edges.find((e: any) => e.node.user.email === viewer.email).node;
    expect(me.customRoles.map((c: any) => c.role.name).sort()).toEqual(['linker', 'site-runner']);

    await admin.gql.ok(UNASSIGN, { i: { tenantId: tenant.id, userId: viewer.id, roleId: runner.id } });
    expect(await viewer.gql.code(CREATE_SITE, { i: siteInput(tenant.id) })).toBe('FORBIDDEN');
    // Changing a role changes it for its holders at once; deleting it takes it away.
    await owner.gql.ok(`mutation($i: UpdateRoleInput!) { updateRole(input: $i) { permissions } }`, { i: { roleId: linker.id, permissions: ['social_links:read'] } });
    expect(await viewer.gql.code(ADD_LINK, { i: { tenantId: tenant.id, platform: 'YOUTUBE', url: `https://youtube.com/@cr${process.pid}` } })).toBe('FORBIDDEN');
    await owner.gql.ok(`mutation($r: ID!) { deleteRole(roleId: $r) }`, { r: linker.id });
    expect((await owner.gql.ok(`query($s: String!) { tenant(slug: $s) { roles { name } } }`, { s: tenant.slug })).tenant.roles).toEqual([{ name: 'site-runner' }]);
  });

  it('nobody grants more than they hold', async () => {
    // Seed 004's admin template is *:* — only an owner holds all of it.
    const tooMuch = await admin.gql.request(CREATE_ROLE, { i: { tenantId: tenant.id, name: 'superpowers', template: 'admin' } });
    expect(tooMuch.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(tooMuch.errors?.[0]?.message).toMatch(/members:admin.*tenants:delete/);
    const fromTemplate = (await owner.gql.ok(CREATE_ROLE, { i: { tenantId: tenant.id, name: 'full', template: 'admin' } })).createRole;
    expect(fromTemplate.permissions).toEqual(['*:*']);
    expect(await admin.gql.code(ASSIGN, { i: { tenantId: tenant.id, userId: viewer.id, roleId: fromTemplate.id } })).toBe('FORBIDDEN');
    expect(await admin.gql.code(`mutation($r: ID!) { deleteRole(roleId: $r) }`, { r: fromTemplate.id })).toBe('FORBIDDEN');

    // A role manager with a narrow set cannot widen a role beyond it, nor assign one that is wider.
    const manager = (await owner.gql.ok(CREATE_ROLE, { i: { tenantId: tenant.id, name: 'role-manager', permissions: ['roles:*', 'members:write', 'documents:*'] } })).createRole;
    await owner.gql.ok(ASSIGN, { i: { tenantId: tenant.id, userId: viewer.id, roleId: manager.id } });
    const widen = await viewer.gql.request(CREATE_ROLE, { i: { tenantId: tenant.id, name: 'sneaky', permissions: ['documents:*', 'sites:write'] } });
    expect(widen.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(widen.errors?.[0]?.message).toMatch(/sites:write/);
    const runner = (await owner.gql.ok(`query($s: String!) { tenant(slug: $s) { roles { id name } } }`, { s: tenant.slug })).tenant.roles.find((r: any) => r.name === 'site-runner');
    expect(await viewer.gql.code(ASSIGN, { i: { tenantId: tenant.id, userId: viewer.id, roleId: runner.id } })).toBe('FORBIDDEN');
    // Nor promote anyone past MEMBER (members:admin), nor make a VIEWER a MEMBER (MEMBER holds chats:write, jobs:write…).
    expect(await viewer.gql.code(`mutation($i: ChangeMemberRoleInput!) { changeMemberRole(input: $i) { role } }`, { i: { tenantId: tenant.id, userId: admin.id, role: 'VIEWER' } })).toBe('FORBIDDEN');
    const promote = await viewer.gql.request(`mutation($i: ChangeMemberRoleInput!) { changeMemberRole(input: $i) { role } }`, { i: { tenantId: tenant.id, userId: viewer.id, role: 'MEMBER' } });
    expect(promote.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // What a narrow manager holds, it may grant.
    const docs = (await viewer.gql.ok(CREATE_ROLE, { i: { tenantId: tenant.id, name: 'doc-editor', permissions: ['documents:write'] } })).createRole;
    expect(docs.permissions).toEqual(['documents:write']);
    await owner.gql.ok(UNASSIGN, { i: { tenantId: tenant.id, userId: viewer.id, roleId: manager.id } });
  });

  it('another tenant cannot see, create, assign or change this tenant’s roles', async () => {
    const roles = (await owner.gql.ok(`query($s: String!) { tenant(slug: $s) { roles { id } } }`, { s: tenant.slug })).tenant.roles;
    expect(roles.length).toBeGreaterThan(0);
    expect(await outsider.gql.code(CREATE_ROLE, { i: { tenantId: tenant.id, name: 'intruder', permissions: ['documents:read'] } })).toBe('NOT_FOUND');
    expect(await outsider.gql.code(`mutation($r: ID!) { deleteRole(roleId: $r) }`, { r: roles[0].id })).toBe('NOT_FOUND');
    expect(await outsider.gql.code(`mutation($i: UpdateRoleInput!) { updateRole(input: $i) { id } }`, { i: { roleId: roles[0].id, permissions: ['*:*'] } })).toBe('NOT_FOUND');
    // Their own tenant, our role id: no such role there.
    expect(await outsider.gql.code(ASSIGN, { i: { tenantId: other.id, userId: outsider.id, roleId: roles[0].id } })).toBe('NOT_FOUND');
    const node = await outsider.gql.ok(`query($id: ID!) { node(id: $id) { id } }`, { id: roles[0].id });
    expect(node.node).toBeNull();
    expect(await permissionsOf(outsider, tenant.slug).catch(() => 'none')).toBe('none');
  });
});

describe('platform roles: support access is a permission, audited in the tenant', () => {
  it('a superadmin reads a tenant’s data only by naming it, cannot change it, and each such request is in its audit log', async () => {
    const owner = await signUp(app, 'sup-owner');
    const staff = await signUp(app, 'sup-staff');
    const t = await createTenant(owner, 'sup');
    await owner.gql.ok(ADD_LINK, { i: { tenantId: t.id, platform: 'TWITTER', url: `https://x.com/sup${process.pid}` } });
    await db.query(`update app_public.users set platform_role = 'SUPERADMIN' where id = $1`, [uuid(staff.id)]);
    const LINKS = `query($s: String!) { tenant(slug: $s) { socialLinks { totalCount } viewerPermissions } }`;

    // Without X-Tenant: the directory entry, none of its data.
    const plain = await staff.gql.ok(LINKS, { s: t.slug });
    expect(plain.tenant.socialLinks.totalCount).toBe(0);
    expect(plain.tenant.viewerPermissions).toEqual([]);

    const named = await staff.gql.request(LINKS, { s: t.slug }, { 'x-tenant': t.slug });
    expect(named.errors).toBeUndefined();
    expect(named.data.tenant.socialLinks.totalCount).toBe(1);
    expect(named.data.tenant.viewerPermissions).toContain('documents:read');
    expect(named.data.tenant.viewerPermissions).not.toContain('tenants:write');
    const write = await staff.gql.request(`mutation($i: UpdateTenantInput!) { updateTenant(input: $i) { name } }`, { i: { tenantId: t.id, name: 'Taken over' } }, { 'x-tenant': t.slug });
    expect(write.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    const { rows } = await db.query(
      `select action, details->>'platformRole' as role from app_public.audit_events where tenant_id = $1 and actor_id = $2 order by id`,
      [uuid(t.id), uuid(staff.id)],
    );
    expect(rows.filter((r) => r.action === 'supportAccess')).toHaveLength(2);
    expect(rows[0].role).toBe('SUPERADMIN');
    // The owner sees who looked.
    const log = await owner.gql.ok(`query($s: String!) { tenant(slug: $s) { auditLog(first: 50) { edges { node { action details } } } } }`, { s: t.slug });
    expect(log.tenant.auditLog.edges.filter((e: any) => e.node.action === 'supportAccess' && e.node.details.staff === staff.email).length).toBe(2);
    const { rows: name } = await db.query(`select name from app_public.tenants where id = $1`, [uuid(t.id)]);
    expect(name[0].name).not.toBe('Taken over');
  });

  it('an operator may operate sites of a tenant it names, and nothing else; a normal user naming a tenant gets nothing', async () => {
    const owner = await signUp(app, 'op-owner');
    const operator = await signUp(app, 'op-staff');
    const nobody = await signUp(app, 'op-nobody');
    const t = await createTenant(owner, 'op');
    await db.query(`update app_public.users set platform_role = 'OPERATOR' where id = $1`, [uuid(operator.id)]);
    const ask = async (userId: string, filter: string, permission: string) => {
      await db.query('begin');
      try {
        await db.query(`select set_config('role', 'tenantplane_app', true), set_config('app.user_id', $1, true), set_config('app.tenant_id', $2, true)`, [userId, filter]);
        return (await db.query(`select app.has_permission($1, $2) as ok`, [uuid(t.id), permission])).rows[0].ok;
      } finally {
        await db.query('rollback');
      }
    };
    expect(await ask(uuid(operator.id), t.slug, 'sites:operate')).toBe(true);
    expect(await ask(uuid(operator.id), t.slug, 'sites:read')).toBe(true);
    expect(await ask(uuid(operator.id), t.slug, 'sites:write')).toBe(false);
    expect(await ask(uuid(operator.id), t.slug, 'documents:read')).toBe(false);
    expect(await ask(uuid(operator.id), '', 'sites:operate')).toBe(false);
    expect(await ask(uuid(nobody.id), t.slug, 'sites:read')).toBe(false);
    expect(await ask(uuid(nobody.id), uuid(t.id), 'documents:read')).toBe(false);
  });
});

describe('a suspended tenant reads and exports, and changes nothing', () => {
  it('refuses every write permission while suspended, and gives them back on reactivation', async () => {
    const owner = await signUp(app, 'susp-owner');
    const invitee = await signUp(app, 'susp-invitee');
    const t = await createTenant(owner, 'susp');
    const inv = await owner.gql.ok(`mutation($i: InviteMemberInput!) { inviteMember(input: $i) { token } }`, { i: { tenantId: t.id, email: invitee.email, role: 'MEMBER' } });
    await db.query(`update app_public.tenants set status = 'SUSPENDED' where id = $1`, [uuid(t.id)]);
    // An invitation sent before cannot be used to join while suspended (accept_invitation runs as its definer).
    const join = await invitee.gql.request(`mutation($t: String!) { acceptInvitation(token: $t) { id } }`, { t: inv.inviteMember.token });
    expect(join.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await db.query(`select count(*)::int as n from app_public.memberships where tenant_id = $1`, [uuid(t.id)])).rows[0].n).toBe(1);
    const perms = (await owner.gql.ok(`query($s: String!) { tenant(slug: $s) { viewerPermissions } }`, { s: t.slug })).tenant.viewerPermissions;
    expect(perms.filter((p: string) => !p.endsWith(':read')).sort()).toEqual(['tenants:export']);
    const refused = await owner.gql.request(ADD_LINK, { i: { tenantId: t.id, platform: 'TWITTER', url: `https://x.com/susp${process.pid}` } });
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(refused.errors?.[0]?.message).toMatch(/suspended/);
    // The copy of the state on the memberships (sql/0024) follows the tenant, and the request role cannot write it.
    expect((await db.query(`select distinct tenant_state::text as s from app_public.memberships where tenant_id = $1`, [uuid(t.id)])).rows).toEqual([{ s: 'SUSPENDED' }]);
    await db.query('begin');
    try {
      await db.query(`select set_config('role', 'tenantplane_app', true), set_config('app.user_id', $1, true)`, [uuid(owner.id)]);
      await expect(db.query(`update app_public.memberships set tenant_state = 'ACTIVE' where tenant_id = $1`, [uuid(t.id)])).rejects.toThrow(/permission denied/);
    } finally {
      await db.query('rollback');
    }
    await db.query(`update app_public.tenants set status = 'ACTIVE' where id = $1`, [uuid(t.id)]);
    await invitee.gql.ok(`mutation($t: String!) { acceptInvitation(token: $t) { id } }`, { t: inv.inviteMember.token });
    await owner.gql.ok(ADD_LINK, { i: { tenantId: t.id, platform: 'TWITTER', url: `https://x.com/susp${process.pid}` } });
  });
});

