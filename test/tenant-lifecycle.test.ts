import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import pino from 'pino';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, PASSWORD, addMember, createTenant, rowUuid, signUp, type TestUser } from './support/client.ts';
import { uploadDocument, waitForDocument } from './support/uploads.ts';
import { purgeTenant } from '../src/modules/tenants/purge.ts';

/**
 * The tenant lifecycle (issue 9 §4) end to end through GraphQL: staff suspend and reactivate, an owner deletes,
 * the purge leaves nothing of the tenant — checked by looking at every table, the bucket, the schemas and the queue.
 */
let app: TestApp;
let sql: pg.Client;
let siteSql: pg.Client;
const log = pino({ level: 'silent' });
const userUuid = (u: TestUser) => decodeGlobalID(u.id).id;

const SUSPEND = `mutation($t: ID!, $r: String!) { suspendTenant(tenantId: $t, reason: $r) { id status suspendedAt suspensionReason } }`;
const REACTIVATE = `mutation($t: ID!) { reactivateTenant(tenantId: $t) { id status suspendedAt } }`;
const DELETE = `mutation($i: DeleteTenantInput!) { deleteTenant(input: $i) { tenantId slug deletedAt purgeAfter } }`;
const EXPORT = `mutation($t: ID!) { exportTenant(tenantId: $t) { id } }`;
const RENAME = `mutation($i: UpdateTenantInput!) { updateTenant(input: $i) { name } }`;
const CREATE_SITE = `mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } job { id } } }`;
const BACKUP = `mutation($s: ID!) { backupSite(siteId: $s) { backup { id } job { id } } }`;
const NODE = `query($id: ID!) { node(id: $id) { id ... on Site { siteStatus: status schemaName } ... on Backup { backupStatus: status }
  ... on Job { jobStatus: status error } ... on Tenant { slug status } } }`;
const TENANT = `query($s: String!) { tenant(slug: $s) { id status name members { totalCount } } }`;

async function until(user: TestUser, id: string, ok: (status: string) => boolean, ms = 30_000) {
  const start = Date.now();
  for (;;) {
    const n = (await user.gql.ok(NODE, { id })).node;
    const status = n && (n.siteStatus ?? n.backupStatus ?? n.jobStatus ?? n.status);
    if (status && ok(status)) return n;
    if (Date.now() - start > ms) throw new Error(`timed out waiting on ${id}: ${JSON.stringify(n)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, what: string, ms = 30_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - start > ms) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Sends a maintenance job and waits until pg-boss has it completed (or failed: then the test fails). */
async function runMaintenance(queue: 'tenant-purge' | 'backup-expire', data: Record<string, string> = {}) {
  const id = await app.services.jobs.send(queue, data);
  const state = await waitFor(async () => {
    const r = await sql.query(`select state from pgboss.job where id = $1`, [id]);
    const st = r.rows[0]?.state as string | undefined;
    return st === 'completed' || st === 'failed' ? st : null;
  }, `${queue} job ${id}`);
  expect(state).toBe('completed');
}

async function staff(role: 'SUPERADMIN' | 'OPERATOR') {
  const u = await signUp(app, role.toLowerCase());
  await sql.query(`update app_public.users set platform_role = $1 where id = $2`, [role, userUuid(u)]);
  return u;
}

/** Every table of the app's schemas that carries a tenant_id, and how many rows it has for the tenant (tenants too). */
async function rowsOf(tenantUuid: string) {
  const tables = await sql.query<{ s: string; t: string }>(
    `select c.table_schema as s, c.table_name as t from information_schema.columns c
       join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE'
      where c.table_schema in ('app', 'app_public', 'app_private') and c.column_name = 'tenant_id' order by 1, 2`,
  );
  const out: Record<string, number> = {};
  for (const { s, t } of tables.rows) out[`${s}.${t}`] = (await sql.query(`select count(*)::int as n from "${s}"."${t}" where tenant_id = $1`, [tenantUuid])).rows[0].n;
  out['app_public.tenants'] = (await sql.query(`select count(*)::int as n from app_public.tenants where id = $1`, [tenantUuid])).rows[0].n;
  return out;
}

const pendingJobs = async (tenantUuid: string) =>
  (await sql.query(`select count(*)::int as n from pgboss.job where state in ('created', 'retry') and data ->> 'tenantId' = $1`, [tenantUuid])).rows[0].n as number;
const objectsOf = async (tenantUuid: string) => (await app.services.storage.list(`tenants/${tenantUuid}/`)).map((o) => `${o.key}:${o.size}`).sort();
const uuidOfSlug = async (slug: string) => (await sql.query(`select id from app_public.tenants where slug = $1`, [slug])).rows[0]?.id as string;

beforeAll(async () => {
  app = await startTestApp();
  sql = new pg.Client({ connectionString: app.databaseUrl });
  await sql.connect();
  siteSql = new pg.Client({ connectionString: app.sitesDatabaseUrl });
  await siteSql.connect();
});
afterAll(async () => {
  await sql?.end();
  await siteSql?.end();
  await app?.stop();
});

describe('suspension by platform staff', () => {
  let owner: TestUser, admin: TestUser, superadmin: TestUser, operator: TestUser;
  let tenant: { id: string; slug: string };
  let siteId: string, backupId: string;

  beforeAll(async () => {
    [owner, admin, superadmin, operator] = await Promise.all([signUp(app, 'owner'), signUp(app, 'admin'), staff('SUPERADMIN'), staff('OPERATOR')]);
    tenant = await createTenant(owner, 'susp');
    await addMember(owner, tenant.id, admin, 'ADMIN');
    const c = (await owner.gql.ok(CREATE_SITE, { i: { tenantId: tenant.id, name: `susp-${process.pid}`, displayName: 'Suspended site', apps: ['notes'] } })).createSite;
    siteId = c.site.id;
    await until(owner, siteId, (s) => s === 'HEALTHY');
    const b = (await owner.gql.ok(BACKUP, { s: siteId })).backupSite;
    backupId = b.backup.id;
    await until(owner, b.job.id, (s) => s === 'COMPLETED');
  });

  it('records who created the tenant', async () => {
    const r = await owner.gql.ok(`query($s: String!) { tenant(slug: $s) { createdBy { id } } }`, { s: tenant.slug });
    expect(r.tenant.createdBy.id).toBe(owner.id);
  });

  it('members, admins and operators cannot suspend (FORBIDDEN); a missing reason is BAD_USER_INPUT', async () => {
    expect(await owner.gql.code(SUSPEND, { t: tenant.id, r: 'self' })).toBe('FORBIDDEN');
    expect(await admin.gql.code(SUSPEND, { t: tenant.id, r: 'self' })).toBe('FORBIDDEN');
    expect(await operator.gql.code(SUSPEND, { t: tenant.id, r: 'ops' })).toBe('FORBIDDEN');
    expect(await owner.gql.code(REACTIVATE, { t: tenant.id })).toBe('FORBIDDEN');
    const blank = await superadmin.gql.request(SUSPEND, { t: tenant.id, r: '   ' });
    expect(blank.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'reason' });
    expect((await owner.gql.ok(TENANT, { s: tenant.slug })).tenant.status).toBe('ACTIVE');
  });

  it('the SQL function decides too: as the request role without the platform permission it refuses (TPFB0)', async () => {
    await sql.query('begin');
    try {
      await sql.query(`select set_config('role', 'tenantplane_app', true), set_config('app.user_id', $1, true)`, [userUuid(owner)]);
      const e = await sql.query(`select app.suspend_tenant($1, 'x')`, [await uuidOfSlug(tenant.slug)]).then(() => null, (err) => err);
      expect(e?.code).toBe('TPFB0');
    } finally {
      await sql.query('rollback');
    }
  });

  it('staff suspend: the tenant is SUSPENDED with its reason, its sites suspended, the act in the tenant’s log', async () => {
    const r = (await superadmin.gql.ok(SUSPEND, { t: tenant.id, r: 'unpaid invoices' })).suspendTenant;
    expect(r).toMatchObject({ status: 'SUSPENDED', suspensionReason: 'unpaid invoices' });
    expect(r.suspendedAt).toBeTruthy();
    expect((await until(owner, siteId, () => true)).siteStatus).toBe('SUSPENDED');
    const log = await owner.gql.ok(`query($s: String!) { tenant(slug: $s) { auditLog(first: 5) { edges { node { action outcome actor { id } } } } } }`, { s: tenant.slug });
    // The tenant's admins read the entry; the staff member is not a user they may see (actor null), the row names them.
    expect(log.tenant.auditLog.edges[0].node).toMatchObject({ action: 'suspendTenant', outcome: 'SUCCESS' });
    const row = await sql.query(`select actor_id, details from app_public.audit_events where action = 'suspendTenant' and tenant_id = $1`, [await uuidOfSlug(tenant.slug)]);
    expect(row.rows).toEqual([{ actor_id: userUuid(superadmin), details: { reason: 'unpaid invoices', sitesSuspended: 1 } }]);
    // Suspending twice is refused, naming the state.
    const again = await superadmin.gql.request(SUSPEND, { t: tenant.id, r: 'again' });
    expect(again.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(again.errors?.[0]?.message).toMatch(/SUSPENDED/);
  });

  it('while suspended: members sign in and read, writes are refused with a clear FORBIDDEN', async () => {
    const login = await new Gql(app).request(`mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }`, { i: { email: owner.email, password: PASSWORD } });
    expect(login.errors).toBeUndefined();
    const read = await admin.gql.ok(TENANT, { s: tenant.slug });
    expect(read.tenant).toMatchObject({ status: 'SUSPENDED', members: { totalCount: 2 } });

    const rename = await owner.gql.request(RENAME, { i: { tenantId: tenant.id, name: 'renamed' } });
    expect(rename.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(rename.errors?.[0]?.message).toMatch(/suspended/);
    const doc = await owner.gql.request(`mutation($i: CreateUploadInput!) { createUpload(input: $i) { id } }`, {
      i: { tenantId: tenant.id, filename: 'a.txt', sizeBytes: 3, mimeType: 'text/plain', sha256: '0'.repeat(64) },
    });
    expect(doc.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(doc.errors?.[0]?.message).toMatch(/suspended/);
    const chat = await owner.gql.request(`mutation($i: CreateChatSessionInput!) { createChatSession(input: $i) { id } }`, { i: { tenantId: tenant.id, title: 'x' } });
    expect(chat.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const resume = await owner.gql.request(`mutation($s: ID!) { resumeSite(siteId: $s) { status } }`, { s: siteId });
    expect(resume.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const del = await owner.gql.request(DELETE, { i: { tenantId: tenant.id, confirmSlug: tenant.slug, skipExport: true } });
    expect(del.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await owner.gql.ok(TENANT, { s: tenant.slug })).tenant).toMatchObject({ name: expect.not.stringMatching(/renamed/), members: { totalCount: 2 } });
    expect((await until(owner, siteId, () => true)).siteStatus).toBe('SUSPENDED');
  });

  it('while suspended: the export still runs to its end', async () => {
    const job = (await owner.gql.ok(EXPORT, { t: tenant.id })).exportTenant;
    const done = await until(owner, job.id, (s) => s === 'COMPLETED' || s === 'FAILED');
    expect(done).toMatchObject({ jobStatus: 'COMPLETED' });
  });

  it('while suspended: its backups do not expire', async () => {
    await sql.query(`update app_public.backups set expires_at = now() - interval '1 minute' where id = $1`, [rowUuid(backupId)]);
    await runMaintenance('backup-expire');
    expect((await owner.gql.ok(NODE, { id: backupId })).node?.backupStatus).toBe('SUCCESS');
  });

  it('staff reactivate: ACTIVE again, the sites it suspended resumed, writes work', async () => {
    const r = (await superadmin.gql.ok(REACTIVATE, { t: tenant.id })).reactivateTenant;
    expect(r).toMatchObject({ status: 'ACTIVE', suspendedAt: null });
    expect((await until(owner, siteId, () => true)).siteStatus).toBe('HEALTHY');
    expect((await owner.gql.ok(RENAME, { i: { tenantId: tenant.id, name: 'renamed' } })).updateTenant.name).toBe('renamed');
    const actions = (await owner.gql.ok(`query($s: String!) { tenant(slug: $s) { auditLog(first: 10) { edges { node { action } } } } }`, { s: tenant.slug })).tenant.auditLog.edges.map(
      (e: any) => e.node.action,
    );
    expect(actions).toContain('reactivateTenant');
    expect(await superadmin.gql.code(REACTIVATE, { t: tenant.id })).toBe('BAD_USER_INPUT');
    // Active again, its expired backup goes with the next sweep.
    await app.services.jobs.send('backup-expire', {});
    await waitFor(async () => (await owner.gql.ok(NODE, { id: backupId })).node === null, 'the expired backup to go');
  });
});

describe('deletion by an owner, then the purge', () => {
  let owner: TestUser, admin: TestUser, member: TestUser, otherOwner: TestUser;
  let tenant: { id: string; slug: string }, other: { id: string; slug: string };
  let tenantUuid: string, otherUuid: string;
  let siteSchema: string;
  let otherRowsBefore: Record<string, number>, otherObjectsBefore: string[];

  beforeAll(async () => {
    [owner, admin, member, otherOwner] = await Promise.all([signUp(app, 'owner'), signUp(app, 'admin'), signUp(app, 'member'), signUp(app, 'other')]);
    tenant = await createTenant(owner, 'doomed');
    other = await createTenant(otherOwner, 'spared');
    tenantUuid = await uuidOfSlug(tenant.slug);
    otherUuid = await uuidOfSlug(other.slug);
    await addMember(owner, tenant.id, admin, 'ADMIN');
    await addMember(owner, tenant.id, member, 'MEMBER');
    // Something in every kind of table and under every prefix: documents (files, uploads, processing jobs),
    // chats, links, a pending invitation, a site with a schema and files, a backup, an export.
    for (const [user, t] of [[owner, tenant], [otherOwner, other]] as const) {
      const { document } = await uploadDocument(user, t.id, Buffer.from(`hello from ${t.slug}\n`));
      await waitForDocument(user, document.id);
      const s = (await user.gql.ok(`mutation($i: CreateChatSessionInput!) { createChatSession(input: $i) { id } }`, { i: { tenantId: t.id, title: 'chat' } })).createChatSession;
      await user.gql.ok(`mutation($i: PostMessageInput!) { postMessage(input: $i) { id } }`, { i: { sessionId: s.id, role: 'USER', content: 'hi' } });
      await user.gql.ok(`mutation($i: AddSocialLinkInput!) { addSocialLink(input: $i) { id } }`, { i: { tenantId: t.id, platform: 'YOUTUBE', url: 'https://youtube.com/@x' } });
      await user.gql.ok(`mutation($i: InviteMemberInput!) { inviteMember(input: $i) { id } }`, { i: { tenantId: t.id, email: `pending-${t.slug}@example.test`, role: 'VIEWER' } });
    }
    const c = (await owner.gql.ok(CREATE_SITE, { i: { tenantId: tenant.id, name: `doomed-${process.pid}`, displayName: 'Doomed', apps: ['notes'] } })).createSite;
    siteSchema = (await until(owner, c.site.id, (s) => s === 'HEALTHY')).schemaName;
    await app.services.storage.putEmpty(`tenants/${tenantUuid}/sites/${rowUuid(c.site.id)}/files/logo.txt`);
    const b = (await owner.gql.ok(BACKUP, { s: c.site.id })).backupSite;
    expect((await until(owner, b.backup.id, (s) => s === 'SUCCESS' || s === 'FAILED')).backupStatus).toBe('SUCCESS');
    await until(owner, b.job.id, (s) => s === 'COMPLETED');
    otherRowsBefore = await rowsOf(otherUuid);
    otherObjectsBefore = await objectsOf(otherUuid);
  });

  it('an admin who is not an owner: FORBIDDEN; an outsider: NOT_FOUND', async () => {
    const r = await admin.gql.request(DELETE, { i: { tenantId: tenant.id, confirmSlug: tenant.slug, skipExport: true } });
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(r.errors?.[0]?.message).toMatch(/tenants:delete/);
    expect(await otherOwner.gql.code(DELETE, { i: { tenantId: tenant.id, confirmSlug: tenant.slug, skipExport: true } })).toBe('NOT_FOUND');
  });

  it('the wrong slug: BAD_USER_INPUT on confirmSlug; no export yet and no skipExport: BAD_USER_INPUT on skipExport', async () => {
    const wrong = await owner.gql.request(DELETE, { i: { tenantId: tenant.id, confirmSlug: other.slug, skipExport: true } });
    expect(wrong.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'confirmSlug' });
    expect(wrong.errors?.[0]?.message).toContain(tenant.slug);
    const noExport = await owner.gql.request(DELETE, { i: { tenantId: tenant.id, confirmSlug: tenant.slug } });
    expect(noExport.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'skipExport' });
    expect(noExport.errors?.[0]?.message).toMatch(/exportTenant/);
    expect((await owner.gql.ok(TENANT, { s: tenant.slug })).tenant.status).toBe('ACTIVE');
  });

  it('after an export, the owner deletes: members see NOT_FOUND, staff see DELETED, the purge is 30 days out', async () => {
    const job = (await owner.gql.ok(EXPORT, { t: tenant.id })).exportTenant;
    expect((await until(owner, job.id, (s) => s === 'COMPLETED' || s === 'FAILED')).jobStatus).toBe('COMPLETED');
    expect((await objectsOf(tenantUuid)).some((k) => k.includes('/exports/'))).toBe(true);
    const d = (await owner.gql.ok(DELETE, { i: { tenantId: tenant.id, confirmSlug: tenant.slug } })).deleteTenant;
    expect(d).toMatchObject({ tenantId: tenant.id, slug: tenant.slug });
    expect(Math.round((new Date(d.purgeAfter).getTime() - Date.now()) / 86400_000)).toBe(30);
    for (const u of [owner, admin, member]) {
      expect((await u.gql.ok(TENANT, { s: tenant.slug })).tenant).toBeNull();
      expect((await u.gql.ok(NODE, { id: tenant.id })).node).toBeNull();
      expect((await u.gql.ok(`{ tenants { edges { node { slug } } } }`)).tenants.edges).toEqual([]);
      expect(await u.gql.code(RENAME, { i: { tenantId: tenant.id, name: 'x' } })).toBe('NOT_FOUND');
      expect(await u.gql.code(EXPORT, { t: tenant.id })).toBe('NOT_FOUND');
    }
    expect(await owner.gql.code(DELETE, { i: { tenantId: tenant.id, confirmSlug: tenant.slug, skipExport: true } })).toBe('NOT_FOUND');
    const superadmin = await staff('SUPERADMIN');
    expect((await superadmin.gql.ok(TENANT, { s: tenant.slug })).tenant.status).toBe('DELETED');
    expect((await sql.query(`select status from app_public.sites where tenant_id = $1`, [tenantUuid])).rows).toEqual([{ status: 'SUSPENDED' }]);
    // Not yet due: the sweep leaves it alone, rows and objects.
    await runMaintenance('tenant-purge');
    expect((await rowsOf(tenantUuid))['app_public.tenants']).toBe(1);
    expect(await purgeTenant(app.services, tenantUuid, log)).toBe(false);
    expect((await objectsOf(tenantUuid)).length).toBeGreaterThan(0);
  });

  it('once due, the purge job leaves nothing: no row, no object, no site schema or role, no queued job', async () => {
    await sql.query(`update app_public.tenants set purge_after = now() - interval '1 minute' where id = $1`, [tenantUuid]);
    await app.services.jobs.send('tenant-purge', {});
    await waitFor(async () => (await rowsOf(tenantUuid))['app_public.tenants'] === 0, 'the tenant row to go');
    const rows = await rowsOf(tenantUuid);
    expect(Object.keys(rows).length).toBeGreaterThan(10);
    expect(Object.entries(rows).filter(([, n]) => n > 0)).toEqual([]);
    expect(await objectsOf(tenantUuid)).toEqual([]);
    expect((await siteSql.query(`select nspname from pg_namespace where nspname = $1 or nspname like '%' || $2 || '%'`, [siteSchema, siteSchema.slice(5)])).rows).toEqual([]);
    expect((await sql.query(`select 1 from pg_roles where rolname = $1`, [`${siteSchema}_owner`])).rowCount).toBe(0);
    expect(await pendingJobs(tenantUuid)).toBe(0);
    // Users are not the tenant's: they stay, and still sign in elsewhere.
    expect((await sql.query(`select count(*)::int as n from app_public.users where id = any($1)`, [[owner, admin, member].map(userUuid)])).rows[0].n).toBe(3);
  });

  it('another tenant’s rows and objects are untouched', async () => {
    expect(await rowsOf(otherUuid)).toEqual(otherRowsBefore);
    expect(await objectsOf(otherUuid)).toEqual(otherObjectsBefore);
    expect((await otherOwner.gql.ok(TENANT, { s: other.slug })).tenant.status).toBe('ACTIVE');
  });

  it('the purge run again (handler and job) is harmless', async () => {
    expect(await purgeTenant(app.services, tenantUuid, log)).toBe(true);
    await runMaintenance('tenant-purge', { tenantId: tenantUuid });
    await runMaintenance('tenant-purge');
    expect(Object.entries(await rowsOf(tenantUuid)).filter(([, n]) => n > 0)).toEqual([]);
    expect(await objectsOf(tenantUuid)).toEqual([]);
    expect(await rowsOf(otherUuid)).toEqual(otherRowsBefore);
    expect(await objectsOf(otherUuid)).toEqual(otherObjectsBefore);
  });
});

describe('restore by platform staff within retention', () => {
  it('brings a deleted tenant back, sites included; not after retention; not for non-staff', async () => {
    const [owner, member, superadmin] = await Promise.all([signUp(app, 'owner'), signUp(app, 'member'), staff('SUPERADMIN')]);
    const t = await createTenant(owner, 'restored');
    const id = await uuidOfSlug(t.slug);
    await addMember(owner, t.id, member, 'MEMBER');
    const c = (await owner.gql.ok(CREATE_SITE, { i: { tenantId: t.id, name: `restored-${process.pid}`, displayName: 'Restored', apps: ['notes'] } })).createSite;
    await until(owner, c.site.id, (s) => s === 'HEALTHY');
    await owner.gql.ok(DELETE, { i: { tenantId: t.id, confirmSlug: t.slug, skipExport: true } });
    expect((await member.gql.ok(TENANT, { s: t.slug })).tenant).toBeNull();
    const RESTORE = `mutation($t: ID!) { restoreTenant(tenantId: $t) { id status deletedAt purgeAfter } }`;
    expect(await owner.gql.code(RESTORE, { t: t.id })).toBe('FORBIDDEN');
    const r = (await superadmin.gql.ok(RESTORE, { t: t.id })).restoreTenant;
    expect(r).toMatchObject({ status: 'ACTIVE', deletedAt: null, purgeAfter: null });
    expect((await member.gql.ok(TENANT, { s: t.slug })).tenant).toMatchObject({ status: 'ACTIVE', members: { totalCount: 2 } });
    expect((await until(owner, c.site.id, () => true)).siteStatus).toBe('HEALTHY');
    const actions = (await owner.gql.ok(`query($s: String!) { tenant(slug: $s) { auditLog(first: 5) { edges { node { action } } } } }`, { s: t.slug })).tenant.auditLog.edges.map((e: any) => e.node.action);
    expect(actions.slice(0, 2)).toEqual(['restoreTenant', 'deleteTenant']);
    expect(await superadmin.gql.code(RESTORE, { t: t.id })).toBe('BAD_USER_INPUT');
    // Past its retention, the tenant is the purge's.
    await owner.gql.ok(DELETE, { i: { tenantId: t.id, confirmSlug: t.slug, skipExport: true } });
    await sql.query(`update app_public.tenants set purge_after = now() - interval '1 minute' where id = $1`, [id]);
    const late = await superadmin.gql.request(RESTORE, { t: t.id });
    expect(late.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(late.errors?.[0]?.message).toMatch(/retention/);
    await runMaintenance('tenant-purge');
    expect(Object.entries(await rowsOf(id)).filter(([, n]) => n > 0)).toEqual([]);
    expect(await superadmin.gql.code(RESTORE, { t: t.id })).toBe('NOT_FOUND');
  });
});

describe('a purge killed midway', () => {
  it('is finished by the next run, whichever step it died after', async () => {
    for (const step of ['schemas', 'objects'] as const) {
      const owner = await signUp(app, 'crash');
      const t = await createTenant(owner, `crash-${step}`);
      const id = await uuidOfSlug(t.slug);
      const { document } = await uploadDocument(owner, t.id, Buffer.from(`crash ${step}\n`));
      await waitForDocument(owner, document.id);
      const c = (await owner.gql.ok(CREATE_SITE, { i: { tenantId: t.id, name: `crash-${step}-${process.pid}`, displayName: 'Crash', apps: ['notes'] } })).createSite;
      const schema = (await until(owner, c.site.id, (s) => s === 'HEALTHY')).schemaName;
      await owner.gql.ok(DELETE, { i: { tenantId: t.id, confirmSlug: t.slug, skipExport: true } });
      await sql.query(`update app_public.tenants set purge_after = now() - interval '1 minute' where id = $1`, [id]);
      await expect(
        purgeTenant(app.services, id, log, {
          afterStep: (s) => {
            if (s === step) throw new Error(`killed after ${s}`);
          },
        }),
      ).rejects.toThrow(`killed after ${step}`);
      // Died before the rows: the tenant is still there, DELETED and due, for the next sweep (its schema drop rolled
      // back with the purge's transaction; after 'objects' its objects are gone for good).
      expect((await sql.query(`select status from app_public.tenants where id = $1`, [id])).rows).toEqual([{ status: 'DELETED' }]);
      if (step === 'objects') expect(await objectsOf(id)).toEqual([]);
      await app.services.jobs.send('tenant-purge', {});
      await waitFor(async () => (await rowsOf(id))['app_public.tenants'] === 0, `the ${step} rerun`);
      expect(Object.entries(await rowsOf(id)).filter(([, n]) => n > 0)).toEqual([]);
      expect(await objectsOf(id)).toEqual([]);
      expect(await pendingJobs(id)).toBe(0);
      expect((await siteSql.query(`select 1 from pg_namespace where nspname = $1`, [schema])).rowCount).toBe(0);
    }
  });
});

describe('TENANT_RETENTION_DAYS=0', () => {
  it('deleteTenant enqueues the purge for its tenant at once', async () => {
    const config = app.services.config as { tenants: { retentionDays: number } };
    const before = config.tenants.retentionDays;
    config.tenants.retentionDays = 0;
    try {
      const owner = await signUp(app, 'now');
      const t = await createTenant(owner, 'gone-now');
      const id = await uuidOfSlug(t.slug);
      await uploadDocument(owner, t.id, Buffer.from('soon gone\n'));
      const d = (await owner.gql.ok(DELETE, { i: { tenantId: t.id, confirmSlug: t.slug, skipExport: true } })).deleteTenant;
      expect(new Date(d.purgeAfter).getTime()).toBeLessThanOrEqual(Date.now() + 1000);
      await waitFor(async () => (await rowsOf(id))['app_public.tenants'] === 0, 'the immediate purge');
      expect(Object.entries(await rowsOf(id)).filter(([, n]) => n > 0)).toEqual([]);
      expect(await objectsOf(id)).toEqual([]);
      // Its document's processing job may have been running during the purge: it fails, retries, and is refused for
      // good once it finds its jobs row gone — so nothing stays queued for the tenant.
      await waitFor(async () => (await pendingJobs(id)) === 0, 'no job left queued for the purged tenant');
    } finally {
      config.tenants.retentionDays = before;
    }
  });
});
