import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { signUp, createTenant, type TestUser, rowUuid } from './support/client.ts';
import { uploadDocument } from './support/uploads.ts';

/** Backups and restores through GraphQL: round trip row by row, files included; corruption refused; retention. */
let app: TestApp;
let owner: TestUser, outsider: TestUser;
let tenant: { id: string; slug: string }, other: { id: string; slug: string };
let sql: pg.Client;
let siteSql: pg.Client;

const CREATE = `mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } job { id } } }`;
const BACKUP = `mutation($s: ID!) { backupSite(siteId: $s) { backup { id status } job { id } } }`;
const RESTORE = `mutation($s: ID!, $b: ID!) { restoreSite(siteId: $s, backupId: $b) { site { status } job { id } } }`;
const NODE = `query($id: ID!) { node(id: $id) { ... on Site { siteStatus: status schemaName lastBackupAt }
  ... on Backup { backupStatus: status sizeBytes checksum objectKey error expiresAt } ... on Job { jobStatus: status progress error logs } } }`;


async function until(user: TestUser, id: string, ok: (n: any) => boolean, ms = 30000) {
  const start = Date.now();
  for (;;) {
    const raw = (await user.gql.ok(NODE, { id })).node;
    const n = raw && { ...raw, status: raw.siteStatus ?? raw.backupStatus ?? raw.jobStatus };
    if (n && ok(n)) return n;
    if (Date.now() - start > ms) throw new Error(`timed out: ${JSON.stringify(n)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function dump(schema: string) {
  const out: Record<string, unknown[]> = {};
  for (const t of ['notes', 'contacts', 'deals']) out[t] = (await siteSql.query(`select * from "${schema}"."${t}" order by id`)).rows;
  return JSON.parse(JSON.stringify(out));
}

let siteId: string;
let schema: string;
let siteUuid: string;
let tenantUuid: string;

beforeAll(async () => {
  app = await startTestApp();
  owner = await signUp(app, 'owner');
  outsider = await signUp(app, 'outsider');
  tenant = await createTenant(owner, 'bk');
  other = await createTenant(outsider, 'bk-other');
  sql = new pg.Client({ connectionString: app.databaseUrl });
  await sql.connect();
  siteSql = new pg.Client({ connectionString: app.sitesDatabaseUrl });
  await siteSql.connect();
  await sql.query(`update app_public.tenants set plan_id = 'pro' where slug = $1`, [tenant.slug]);
  const c = (await owner.gql.ok(CREATE, { i: { tenantId: tenant.id, name: `bk-${process.pid}`, displayName: 'Backed up', apps: ['notes', 'crm'] } })).createSite;
  siteId = c.site.id;
  const site = await until(owner, siteId, (n) => n.status === 'HEALTHY');
  schema = site.schemaName;
  siteUuid = rowUuid(siteId);
  tenantUuid = (await sql.query(`select tenant_id from app_public.sites where id = $1`, [siteUuid])).rows[0].tenant_id;
  // Real data: unicode, NULLs, numerics, arrays, a few thousand rows.
  await siteSql.query(`insert into "${schema}".notes (title, body, tags) select 'note ' || g, repeat('é✓ ', g % 50), array['t' || (g % 7)] from generate_series(1, 3000) g`);
  await siteSql.query(`insert into "${schema}".contacts (name, email, company) values ('Ada', 'ada@example.com', null), ('Grace', null, 'Navy')`);
  await siteSql.query(`insert into "${schema}".deals (contact_id, amount, stage) select c.id, 1234.56, 'won' from "${schema}".contacts c`);
  await app.services.storage.client.send(new PutObjectCommand({ Bucket: app.services.config.storage.bucket, Key: `tenants/${tenantUuid}/sites/${siteUuid}/files/logo.txt`, Body: 'original logo' }));
});
afterAll(async () => {
  await sql?.end();
  await siteSql?.end();
  await app?.stop();
});

describe('backup and restore', () => {
  let backupId: string;
  let snapshot: Record<string, unknown[]>;

  it('backs up to SUCCESS with size, checksum, 30-day expiry and the site’s lastBackupAt', async () => {
    snapshot = await dump(schema);
    const r = (await owner.gql.ok(BACKUP, { s: siteId })).backupSite;
    expect(r.backup.status).toBe('PENDING');
    backupId = r.backup.id;
    const b = await until(owner, backupId, (n) => n.status === 'SUCCESS' || n.status === 'FAILED');
    expect(b.status).toBe('SUCCESS');
    expect(b.sizeBytes).toBeGreaterThan(0);
    expect(b.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(Math.round((new Date(b.expiresAt).getTime() - Date.now()) / 86400_000)).toBe(30);
    const job = await until(owner, r.job.id, (n) => n.status === 'COMPLETED');
    expect(job.progress).toBe(100);
    expect((await owner.gql.ok(NODE, { id: siteId })).node.lastBackupAt).toBeTruthy();
  });

  it('write more data, restore → the data equals the backup’s row by row, files included', async () => {
    await siteSql.query(`insert into "${schema}".notes (title) values ('after the backup')`);
    await siteSql.query(`delete from "${schema}".contacts where name = 'Grace'`);
    await app.services.storage.client.send(new PutObjectCommand({ Bucket: app.services.config.storage.bucket, Key: `tenants/${tenantUuid}/sites/${siteUuid}/files/logo.txt`, Body: 'changed logo' }));
    await app.services.storage.client.send(new PutObjectCommand({ Bucket: app.services.config.storage.bucket, Key: `tenants/${tenantUuid}/sites/${siteUuid}/files/new.txt`, Body: 'added later' }));
    expect(await dump(schema)).not.toEqual(snapshot);
    const r = (await owner.gql.ok(RESTORE, { s: siteId, b: backupId })).restoreSite;
    expect(r.site.status).toBe('RESTORING');
    await until(owner, r.job.id, (n) => n.status === 'COMPLETED' || n.status === 'FAILED');
    const site = await until(owner, siteId, (n) => n.status === 'HEALTHY');
    expect(site.schemaName).toBe(schema);
    expect(await dump(schema)).toEqual(snapshot);
    const logo = await app.services.storage.client.send(new GetObjectCommand({ Bucket: app.services.config.storage.bucket, Key: `tenants/${tenantUuid}/sites/${siteUuid}/files/logo.txt` }));
    expect(await logo.Body!.transformToString()).toBe('original logo');
    const files = (await app.services.storage.list(`tenants/${tenantUuid}/sites/${siteUuid}/files/`)).map((o) => o.key.split('/files/')[1]).sort();
    expect(files).toEqual(['.keep', 'logo.txt']);
    // Still owned by the site's role, and no leftover schema.
    expect((await siteSql.query(`select nspowner::regrole::text as o from pg_namespace where nspname = $1`, [schema])).rows[0].o).toBe(`${schema}_owner`);
    expect((await siteSql.query(`select count(*)::int as n from pg_namespace where nspname like '%' || $1 || '%'`, [siteUuid.replace(/-/g, '')])).rows[0].n).toBe(1);
  });

  it('one flipped byte in a part: the restore refuses with a checksum error and the site keeps its data', async () => {
    const b = await until(owner, backupId, () => true);
    const bucket = app.services.config.storage.bucket;
    const parts = await app.services.storage.list(b.objectKey);
    const part = parts.find((p) => p.key.includes('tables/') && p.size > 10)!;
    const body = Buffer.from(await (await app.services.storage.client.send(new GetObjectCommand({ Bucket: bucket, Key: part.key }))).Body!.transformToByteArray());
    body[Math.floor(body.length / 2)] ^= 0x01;
    await app.services.storage.client.send(new PutObjectCommand({ Bucket: bucket, Key: part.key, Body: body }));
    await siteSql.query(`insert into "${schema}".notes (title) values ('kept through the failed restore')`);
    const before = await dump(schema);
    const r = (await owner.gql.ok(RESTORE, { s: siteId, b: backupId })).restoreSite;
    const job = await until(owner, r.job.id, (n) => n.status === 'FAILED' || n.status === 'COMPLETED');
    expect(job.status).toBe('FAILED');
    expect(job.error).toMatch(/checksum|sha256|corrupt/i);
    expect(job.error).toContain(part.key.slice(b.objectKey.length));
    const site = await until(owner, siteId, (n) => n.status === 'HEALTHY');
    expect(site.status).toBe('HEALTHY');
    expect(await dump(schema)).toEqual(before);
  });

  it('refuses to delete a backup inside retention, to restore another site’s backup, and outsiders see nothing', async () => {
    const del = await owner.gql.request(`mutation($b: ID!) { deleteBackup(backupId: $b) }`, { b: backupId });
    expect(del.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const second = (await owner.gql.ok(CREATE, { i: { tenantId: tenant.id, name: `bk2-${process.pid}`, displayName: 'Second' } })).createSite;
    await until(owner, second.site.id, (n) => n.status === 'HEALTHY');
    const wrong = await owner.gql.request(RESTORE, { s: second.site.id, b: backupId });
    expect(wrong.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'backupId' });
    expect((await outsider.gql.ok(NODE, { id: backupId })).node).toBeNull();
    expect(await outsider.gql.code(BACKUP, { s: siteId })).toBe('NOT_FOUND');
    expect(await outsider.gql.code(RESTORE, { s: siteId, b: backupId })).toBe('NOT_FOUND');
    expect(await outsider.gql.code(`mutation($b: ID!) { deleteBackup(backupId: $b) }`, { b: backupId })).toBe('NOT_FOUND');
    void other;
    // After expiry the backup can go (the policy agrees).
    await sql.query(`update app_public.backups set expires_at = now() - interval '1 second' where id = $1`, [rowUuid(backupId)]);
    expect((await owner.gql.ok(`mutation($b: ID!) { deleteBackup(backupId: $b) }`, { b: backupId })).deleteBackup).toBe(true);
  });
});

describe('daily schedule', () => {
  it('the scheduled fan-out backs up every healthy site once, on behalf of an admin', async () => {
    await app.services.jobs.send('site-backup-schedule', {});
    const row = await (async () => {
      const start = Date.now();
      for (;;) {
        const r = (await sql.query(`select status, requested_by from app_public.backups where site_id = $1 and scheduled`, [siteUuid])).rows;
        if (r.some((b) => b.status === 'SUCCESS' || b.status === 'FAILED')) return r;
        if (Date.now() - start > 30000) throw new Error('no scheduled backup');
        await new Promise((res) => setTimeout(res, 200));
      }
    })();
    expect(row.map((b) => b.status)).toEqual(['SUCCESS']);
    expect(row[0].requested_by).toBeTruthy();
    // Run again: the site already has today's scheduled backup, nothing new.
    await app.services.jobs.send('site-backup-schedule', {});
    await new Promise((res) => setTimeout(res, 1500));
    expect((await sql.query(`select count(*)::int as n from app_public.backups where site_id = $1 and scheduled`, [siteUuid])).rows[0].n).toBe(1);
  });
});

describe('exportTenant', () => {
  it('archives the tenant’s pooled rows and objects, and nothing of another tenant', async () => {
    await uploadDocument(owner, tenant.id, Buffer.from('exported document'), { filename: 'export.txt' });
    await owner.gql.ok(`mutation($i: CreateChatSessionInput!) { createChatSession(input: $i) { id } }`, { i: { tenantId: tenant.id, title: 'Exported chat' } });
    await uploadDocument(outsider, other.id, Buffer.from('not exported'), { filename: 'theirs.txt' });
    expect(await outsider.gql.code(`mutation($t: ID!) { exportTenant(tenantId: $t) { id } }`, { t: tenant.id })).toBe('NOT_FOUND');
    const job = (await owner.gql.ok(`mutation($t: ID!) { exportTenant(tenantId: $t) { id status type } }`, { t: tenant.id })).exportTenant;
    expect(job).toMatchObject({ status: 'PENDING', type: 'tenant-export' });
    const done = await until(owner, job.id, (n) => n.status === 'COMPLETED' || n.status === 'FAILED');
    expect(done.status).toBe('COMPLETED');
    const result = (await owner.gql.ok(`query($id: ID!) { node(id: $id) { ... on Job { result } } }`, { id: job.id })).node.result;
    expect(result.tables).toMatchObject({ memberships: 1, documents: 1, files: 1, chat_sessions: 1, social_links: 0 });
    expect(result.files).toBe(1);
    expect(result.prefix).toBe(`tenants/${tenantUuid}/exports/${rowUuid(job.id)}/`);
    const keys = (await app.services.storage.list(result.prefix)).map((o) => o.key);
    expect(keys).toContain(`${result.prefix}manifest.json`);
    expect((await siteSql.query(`select count(*)::int as n from pg_namespace where nspname like 'export_%'`)).rows[0].n).toBe(0);
  });
});
