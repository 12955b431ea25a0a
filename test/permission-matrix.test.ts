import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startTestApp, type TestApp } from './support/app.ts';
import { addMember, createTenant, rowUuid, signUp } from './support/client.ts';
import { createUpload, uploadDocument } from './support/uploads.ts';
import { grants } from '../src/modules/access/docs.ts';

/**
 * The policies of every tenant table as a matrix of actors × tables, in SQL as the request role (what an injection
 * would have): the four built-in roles, two members whose custom roles add to VIEWER, and the owner of another
 * tenant aiming at this one's rows. What each actor should see or change is computed from the role sets in the
 * database (app_public.builtin_roles, the custom roles) and the permission each table's policy names — so the
 * matrix checks the policies against the catalogue, not against a copy of themselves.
 */
const APP_ROLE = 'tenantplane_app';
let app: TestApp;
let db: pg.Client;
const uuid = (globalId: string) => decodeGlobalID(globalId).id;

interface Actor {
  name: string;
  userId: string;
  /** The patterns this actor holds in tenant A ([] for the foreign owner). */
  patterns: string[];
}
let tenantId: string;
let ownerId: string;
const actors: Actor[] = [];

/** The permission that lets a member read a table's rows; 'own' = only the row's own user; 'members' = every member. */
const READ: Record<string, string> = {
  memberships: 'members',
  invitations: 'invitations:read',
  audit_events: 'audit:read',
  files: 'documents:read',
  uploads: 'own',
  documents: 'documents:read',
  chat_sessions: 'own',
  chat_messages: 'own',
  social_links: 'social_links:read',
  jobs: 'jobs:read',
  sites: 'sites:read',
  tenant_schemas: 'sites:read',
  backups: 'backups:read',
  roles: 'roles:read',
  member_roles: 'roles:read',
  api_keys: 'api_keys:read',
  app_sources: 'sites:read',
  release_groups: 'sites:read',
  release_group_apps: 'sites:read',
  release_group_clusters: 'sites:read',
  deploy_candidates: 'sites:read',
  benches: 'sites:read',
  bench_servers: 'sites:read',
  site_apps: 'sites:read',
};

/** A write per table that the seed makes possible, and the permissions of which any one allows it (rolled back). */
const WRITES: Array<{ name: string; sql: string; anyOf: string[] }> = [
  { name: 'rename the tenant', sql: `update app_public.tenants set name = name where id = $1`, anyOf: ['tenants:write'] },
  { name: 'change a viewer membership', sql: `update app_public.memberships set updated_at = now() where tenant_id = $1 and role = 'VIEWER'`, anyOf: ['members:write'] },
  { name: 'withdraw an invitation', sql: `delete from app_public.invitations where tenant_id = $1`, anyOf: ['invitations:write'] },
  { name: "rename the owner's document", sql: `update app_public.documents set filename = filename where tenant_id = $1`, anyOf: ['documents:manage'] },
  { name: "delete the owner's document", sql: `delete from app_public.documents where tenant_id = $1`, anyOf: ['documents:manage'] },
  { name: 'remove a social link', sql: `delete from app_public.social_links where tenant_id = $1`, anyOf: ['social_links:write'] },
  { name: "update the owner's job", sql: `update app_public.jobs set updated_at = now() where tenant_id = $1`, anyOf: ['jobs:manage'] },
  { name: 'update a site', sql: `update app_public.sites set display_name = display_name where tenant_id = $1`, anyOf: ['sites:write', 'sites:operate'] },
  { name: 'update a backup', sql: `update app_public.backups set error = error where tenant_id = $1`, anyOf: ['backups:write', 'sites:operate'] },
  { name: 'change a custom role', sql: `update app_public.roles set description = description where tenant_id = $1 and name = 'ops'`, anyOf: ['roles:write'] },
  { name: 'revoke an API key', sql: `update app_public.api_keys set revoked_at = now() where tenant_id = $1 and revoked_at is null`, anyOf: ['api_keys:write'] },
  { name: 'retitle a release group', sql: `update app_public.release_groups set title = title where tenant_id = $1`, anyOf: ['sites:write'] },
  { name: 'take an app out of a release group', sql: `delete from app_public.release_group_apps where tenant_id = $1`, anyOf: ['sites:write'] },
  { name: 'update a deploy candidate', sql: `update app_public.deploy_candidates set error = error where tenant_id = $1`, anyOf: ['sites:write'] },
  { name: 'update a bench', sql: `update app_public.benches set updated_at = now() where tenant_id = $1`, anyOf: ['sites:write'] },
  { name: "change a site app's state", sql: `update app_public.site_apps set error = error where tenant_id = $1`, anyOf: ['sites:write', 'sites:operate'] },
  { name: 'take a custom role away', sql: `delete from app_public.member_roles m using app_public.roles r where m.tenant_id = $1 and r.tenant_id = m.tenant_id and r.id = m.role_id and r.name = 'ops'`, anyOf: ['members:write'] },
];

async function asActor<T>(userId: string, fn: () => Promise<T>): Promise<T> {
  await db.query('begin');
  try {
    await db.query(`select set_config('role', $1, true), set_config('app.user_id', $2, true), set_config('app.tenant_id', '', true)`, [APP_ROLE, userId]);
    return await fn();
  } finally {
    await db.query('rollback');
  }
}

beforeAll(async () => {
  app = await startTestApp();
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  const [owner, admin, member, viewer, auditor, editor, foreign] = await Promise.all(
    ['mx-owner', 'mx-admin', 'mx-member', 'mx-viewer', 'mx-auditor', 'mx-editor', 'mx-foreign'].map((n) => signUp(app, n)),
  );
  const t = await createTenant(owner!, 'mx');
  await createTenant(foreign!, 'mx-foreign');
  tenantId = uuid(t.id);
  ownerId = uuid(owner!.id);
  // Seven members and a pending invitation: more than the free plan's five.
  await db.query(`update app_public.tenants set plan_id = 'pro' where id = $1`, [tenantId]);
  for (const [u, role] of [[admin, 'ADMIN'], [member, 'MEMBER'], [viewer, 'VIEWER'], [auditor, 'VIEWER'], [editor, 'VIEWER']] as const) {
    await addMember(owner!, t.id, u!, role);
  }
  // One row in every tenant table, all of them the owner's.
  await owner!.gql.ok(`mutation($i: InviteMemberInput!) { inviteMember(input: $i) { id } }`, { i: { tenantId: t.id, email: `pending-${process.pid}@example.test`, role: 'VIEWER' } });
  await uploadDocument(owner!, t.id, Buffer.from(`matrix ${crypto.randomUUID()}`));
  await createUpload(owner!, t.id, Buffer.from(`in flight ${crypto.randomUUID()}`));
  const chat = await owner!.gql.ok(`mutation { createChatSession(input: { tenantId: "${t.id}", title: "mx" }) { id } }`);
  await owner!.gql.ok(`mutation($i: PostMessageInput!) { postMessage(input: $i) { id } }`, { i: { sessionId: chat.createChatSession.id, role: 'USER', content: 'hello' } });
  await owner!.gql.ok(`mutation($i: AddSocialLinkInput!) { addSocialLink(input: $i) { id } }`, { i: { tenantId: t.id, platform: 'TWITTER', url: `https://x.com/mx${process.pid}` } });
  const site = await owner!.gql.ok(`mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } } }`, { i: { tenantId: t.id, name: `mx-${process.pid}`, displayName: 'Matrix' } });
  const siteId = rowUuid(site.createSite.site.id);
  const schema = `site_${siteId.replace(/-/g, '')}`;
  await db.query(`insert into app_public.tenant_schemas (tenant_id, schema_name, site_id, owner_role) values ($1, $2, $3, $2)`, [tenantId, schema, siteId]);
  await db.query(`insert into app_public.backups (tenant_id, site_id, object_key, expires_at, requested_by) values ($1, $2, $3, now() + interval '30 days', $4)`, [
    tenantId, siteId, `tenants/${tenantId}/backups/${crypto.randomUUID()}.tar`, ownerId,
  ]);
  // A release group of one app on the default cluster, built and deployed (as the workers would record it).
  const [{ id: sourceId }] = (await db.query(`insert into app_public.app_sources (tenant_id, repository_url, branch, version, created_by) values ($1, 'builtin:notes', 'main', 'v1.0.0', $2) returning id`, [tenantId, ownerId])).rows;
  const [{ id: groupId }] = (await db.query(`insert into app_public.release_groups (tenant_id, name, title, created_by) values ($1, 'mx-group', 'Matrix', $2) returning id`, [tenantId, ownerId])).rows;
  const [{ id: clusterId }] = (await db.query(`select id from app_public.clusters where is_default`)).rows;
  await db.query(`insert into app_public.release_group_apps (tenant_id, group_id, app_source_id, position) values ($1, $2, $3, 0)`, [tenantId, groupId, sourceId]);
  await db.query(`insert into app_public.release_group_clusters (tenant_id, group_id, cluster_id) values ($1, $2, $3)`, [tenantId, groupId, clusterId]);
  const [{ id: candidateId }] = (await db.query(`insert into app_public.deploy_candidates (tenant_id, group_id, cluster_id, created_by) values ($1, $2, $3, $4) returning id`, [tenantId, groupId, clusterId, ownerId])).rows;
  const digest = `sha256:${'ab'.repeat(32)}`;
  await db.query(`update app_public.deploy_candidates set status = 'RUNNING' where id = $1`, [candidateId]);
  await db.query(`update app_public.deploy_candidates set status = 'SUCCESS', image_name = 'r/mx', image_tag = 't', manifest_digest = $2, layer_digest = $2 where id = $1`, [candidateId, digest]);
  const [{ id: benchId }] = (await db.query(`insert into app_public.benches (tenant_id, group_id, candidate_id, cluster_id, created_by) values ($1, $2, $3, $4, $5) returning id`, [tenantId, groupId, candidateId, clusterId, ownerId])).rows;
  const [{ id: serverId }] = (await db.query(`select id from app_public.servers where cluster_id = $1 and type = 'APP' limit 1`, [clusterId])).rows;
  await db.query(`insert into app_public.site_apps (tenant_id, site_id, name) values ($1, $2, 'notes')`, [tenantId, siteId]);
  await db.query(`insert into app_public.bench_servers (tenant_id, bench_id, server_id, server_name) values ($1, $2, $3, 'app')`, [tenantId, benchId, serverId]);
  await owner!.gql.ok(`mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }`, { i: { tenantId: t.id, name: 'mx', permissions: ['documents:read'] } });
  // Two custom roles over VIEWER: one adds operations, one adds editing.
  const CREATE = `mutation($i: CreateRoleInput!) { createRole(input: $i) { id } }`;
  const ops = (await owner!.gql.ok(CREATE, { i: { tenantId: t.id, name: 'ops', permissions: ['audit:read', 'invitations:read', 'sites:operate', 'jobs:manage', 'backups:*'] } })).createRole;
  const edit = (await owner!.gql.ok(CREATE, { i: { tenantId: t.id, name: 'editor', permissions: ['documents:*', 'social_links:write', 'chats:write'] } })).createRole;
  const ASSIGN = `mutation($i: RoleAssignmentInput!) { assignRole(input: $i) { assignedAt } }`;
  await owner!.gql.ok(ASSIGN, { i: { tenantId: t.id, userId: auditor!.id, roleId: ops.id } });
  await owner!.gql.ok(ASSIGN, { i: { tenantId: t.id, userId: editor!.id, roleId: edit.id } });

  const builtin = Object.fromEntries((await db.query(`select role::text, permissions from app_public.builtin_roles`)).rows.map((r) => [r.role, r.permissions as string[]]));
  const opsPerms = ['audit:read', 'invitations:read', 'sites:operate', 'jobs:manage', 'backups:*'];
  const editPerms = ['documents:*', 'social_links:write', 'chats:write'];
  actors.push(
    { name: 'OWNER', userId: ownerId, patterns: builtin.OWNER },
    { name: 'ADMIN', userId: uuid(admin!.id), patterns: builtin.ADMIN },
    { name: 'MEMBER', userId: uuid(member!.id), patterns: builtin.MEMBER },
    { name: 'VIEWER', userId: uuid(viewer!.id), patterns: builtin.VIEWER },
    { name: 'VIEWER + ops', userId: uuid(auditor!.id), patterns: [...builtin.VIEWER, ...opsPerms] },
    { name: 'VIEWER + editor', userId: uuid(editor!.id), patterns: [...builtin.VIEWER, ...editPerms] },
    { name: "another tenant's owner", userId: uuid(foreign!.id), patterns: [] },
  );
}, 120_000);
afterAll(async () => {
  await db?.end();
  await app?.stop();
});

describe('every tenant table × built-in and custom roles, as the request role', () => {
  it('covers every tenant table, each seeded with rows of the tenant', async () => {
    const { rows } = await db.query(
      `select c.relname as table from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'app_public' and c.relkind = 'r'
          and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
        order by 1`,
    );
    expect(rows.map((r) => r.table).filter((t) => !READ[t]), 'add the new tenant table to READ (and WRITES) here').toEqual([]);
    for (const table of Object.keys(READ)) {
      const { rows: n } = await db.query(`select count(*)::int as n from app_public.${table} where tenant_id = $1`, [tenantId]);
      expect(n[0].n, `${table} has no row to test`).toBeGreaterThan(0);
    }
  });

  for (const table of Object.keys(READ)) {
    it(`reads ${table}`, async () => {
      for (const actor of actors) {
        const seen = await asActor(actor.userId, async () => (await db.query(`select count(*)::int as n from app_public.${table} where tenant_id = $1`, [tenantId])).rows[0].n);
        const rule = READ[table]!;
        const member = actor.patterns.length > 0;
        const expected = rule === 'members' ? member : rule === 'own' ? actor.userId === ownerId : grants(actor.patterns, rule);
        expect(seen > 0, `${actor.name} reading ${table} (${rule}): saw ${seen}`).toBe(expected);
      }
    });
  }

  for (const w of WRITES) {
    it(`may ${w.name} only with ${w.anyOf.join(' or ')}`, async () => {
      for (const actor of actors) {
        const changed = await asActor(actor.userId, async () => (await db.query(w.sql, [tenantId])).rowCount ?? 0);
        const expected = w.anyOf.some((p) => grants(actor.patterns, p));
        expect(changed > 0, `${actor.name}: ${w.name} changed ${changed} rows`).toBe(expected);
      }
    });
  }
});
