import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { poll } from './support/workers.ts';
import { signUp, createTenant, addMember, rowUuid, type TestUser } from './support/client.ts';
import { createUpload, putBytes, uploadDocument, waitForDocument } from './support/uploads.ts';
import { pgBossSchemaSql } from '../src/jobs/pgboss-schema.ts';
import { TENANT_QUEUES } from '../src/jobs/queues.ts';
import { QUEUES } from '../src/jobs/registry.ts';

/**
 * The job queue attacked the way issue 14 found it open: as the request role in SQL (what an injection or a
 * resolver bug would have), with tenant A's context and with none, and with forged pg-boss payloads that the
 * workers must refuse. Tenant B has a site, a SUCCESS backup and a stored file that must survive all of it.
 */
const APP_ROLE = 'tenantplane_app';
const CREATE_SITE = `mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } job { id } } }`;
const BACKUP = `mutation($s: ID!) { backupSite(siteId: $s) { backup { id } job { id } } }`;

let app: TestApp;
let sql: pg.Client;
let ownerA: TestUser, memberA: TestUser, ownerB: TestUser;
let tenantA: string, tenantB: string;
let userA: string, memberUserA: string;
let siteB: string, backupB: string, backupKeyB: string, jobB: string, fileKeyB: string;

async function asRequestRole<T>(ctx: { userId?: string; tenant?: string }, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  await sql.query('begin');
  try {
    await sql.query(`select set_config('role', $1, true), set_config('app.user_id', $2, true), set_config('app.tenant_id', $3, true)`, [
      APP_ROLE,
      ctx.userId ?? '',
      ctx.tenant ?? '',
    ]);
    return await fn(sql);
  } finally {
    await sql.query('rollback');
  }
}

async function sqlError(c: pg.Client, text: string, params: unknown[] = []) {
  try {
    await c.query(text, params);
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
  throw new Error(`expected an error from: ${text}`);
}

async function waitFor<T>(q: string, params: unknown[], ok: (r: any) => boolean, what: string): Promise<T> {
  return poll(async () => {
    const r = (await sql.query(q, params)).rows[0];
    return r && ok(r) ? r : null;
  }, 30_000, what);
}

/** Inserts a pg-boss job as the database's owner would (the request role cannot): the forged-payload attacks. */
async function forgeJob(queue: string, data: unknown) {
  const { rows } = await sql.query(`select app_private.insert_boss_job($1, $2::jsonb) as id`, [queue, JSON.stringify(data)]);
  const id = rows[0].id as string;
  return waitFor<{ state: string; output: any }>(`select state, output from pgboss.job where id = $1`, [id], (r) => r.state === 'completed' || r.state === 'failed', `${queue} job ${id} to finish`);
}

beforeAll(async () => {
  app = await startTestApp();
  sql = new pg.Client({ connectionString: app.databaseUrl });
  await sql.connect();
  [ownerA, memberA, ownerB] = await Promise.all([signUp(app, 'qa'), signUp(app, 'qa-member'), signUp(app, 'qb')]);
  const a = await createTenant(ownerA, 'qa');
  const b = await createTenant(ownerB, 'qb');
  await addMember(ownerA, a.id, memberA, 'MEMBER');
  const ids = await sql.query(`select id, email from app_public.users where email = any($1)`, [[ownerA.email, memberA.email]]);
  userA = ids.rows.find((r) => r.email === ownerA.email).id;
  memberUserA = ids.rows.find((r) => r.email === memberA.email).id;
  tenantA = (await sql.query(`select id from app_public.tenants where slug = $1`, [a.slug])).rows[0].id;
  tenantB = (await sql.query(`select id from app_public.tenants where slug = $1`, [b.slug])).rows[0].id;
  // B: a healthy site, a SUCCESS backup, a stored document.
  const site = (await ownerB.gql.ok(CREATE_SITE, { i: { tenantId: b.id, name: `qb-${process.pid}`, displayName: 'B', apps: ['notes'] } })).createSite;
  siteB = rowUuid(site.site.id);
  jobB = rowUuid(site.job.id);
  await waitFor(`select status from app_public.sites where id = $1`, [siteB], (r) => r.status === 'HEALTHY', 'B’s site');
  const backup = (await ownerB.gql.ok(BACKUP, { s: site.site.id })).backupSite;
  backupB = rowUuid(backup.backup.id);
  backupKeyB = (await waitFor<{ object_key: string }>(`select status, object_key from app_public.backups where id = $1`, [backupB], (r) => r.status === 'SUCCESS', 'B’s backup')).object_key;
  const doc = await uploadDocument(ownerB, b.id, Buffer.from('tenant B keeps this\n'), { filename: 'b.txt', mimeType: 'text/plain' });
  await waitForDocument(ownerB, doc.document.id);
  fileKeyB = (await sql.query(`select object_key from app_public.files where tenant_id = $1`, [tenantB])).rows[0].object_key;
});
afterAll(async () => {
  await sql?.end();
  await app?.stop();
});

/** B's archive and file are intact: every part of the backup and the file's bytes are still in S3. */
async function expectTenantBIntact() {
  const parts = await app.services.storage.list(backupKeyB);
  expect(parts.some((p) => p.key.endsWith('manifest.json'))).toBe(true);
  expect(await app.services.storage.size(fileKeyB)).toBeGreaterThan(0);
  expect((await sql.query(`select status from app_public.backups where id = $1`, [backupB])).rows[0].status).toBe('SUCCESS');
}

describe('the request role and pg-boss', () => {
  it('cannot read, insert, update or delete any pgboss row, nor call its functions — with a context or without', async () => {
    for (const ctx of [{ userId: userA, tenant: tenantA }, {}]) {
      await asRequestRole(ctx, async (c) => {
        for (const statement of [
          `select name, data from pgboss.job`,
          `insert into pgboss.job (name, data) values ('backup-delete-objects', '{"tenantId":"${tenantB}","prefix":"tenants/${tenantB}/backups/"}')`,
          `insert into pgboss.schedule (name, cron) values ('backup-delete-objects', '* * * * *')`,
          `update pgboss.job set data = '{}'`,
          `delete from pgboss.job`,
          `select pgboss.job_now()`,
          `select * from pgboss.queue`,
        ]) {
          await c.query('savepoint s');
          const e = await sqlError(c, statement);
          expect(e.code, statement).toBe('42501');
          await c.query('rollback to savepoint s');
        }
      });
    }
  });

  it('holds no privilege at all on schema pgboss, its tables, sequences or functions (catalogue)', async () => {
    const granted = await sql.query(
      `select 'schema' as what from pg_namespace where nspname = 'pgboss' and (has_schema_privilege($1, oid, 'USAGE') or has_schema_privilege($1, oid, 'CREATE'))
       union all
       select p.privilege || ' on ' || c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace,
              unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p(privilege)
        where n.nspname = 'pgboss' and c.relkind in ('r', 'p', 'S', 'v') and has_table_privilege($1, c.oid, p.privilege)
       union all
       select 'column ' || p.privilege || ' on ' || c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace,
              unnest(array['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p(privilege)
        where n.nspname = 'pgboss' and c.relkind in ('r', 'p') and has_any_column_privilege($1, c.oid, p.privilege)
       union all
       select 'execute ' || f.oid::regprocedure from pg_proc f join pg_namespace n on n.oid = f.pronamespace
        where n.nspname = 'pgboss'
          and exists (select 1 from aclexplode(coalesce(f.proacl, acldefault('f', f.proowner))) a
                       where a.grantee in (0, (select oid from pg_roles where rolname = $1)) and a.privilege_type = 'EXECUTE')`,
      [APP_ROLE],
    );
    expect(granted.rows).toEqual([]);
  });

  it('cannot insert a jobs row by hand either: only app.enqueue_job writes them', async () => {
    await asRequestRole({ userId: userA, tenant: tenantA }, async (c) => {
      const e = await sqlError(c, `insert into app_public.jobs (tenant_id, type, requested_by, max_attempts) values ($1, 'site-provision', $2, 1)`, [tenantA, userA]);
      expect(e.code).toBe('42501');
    });
  });

  it('pg-boss’s schema is the one sql/0014 creates, from pg-boss’s own construction SQL', () => {
    const migration = fs.readFileSync(new URL('../sql/0014_job_queue.sql', import.meta.url), 'utf8');
    expect(migration).toContain(pgBossSchemaSql());
  });
});

describe('app.enqueue_job, the one narrow path', () => {
  const enqueue = (c: pg.Client, queue: string, tenant: string, args: object = {}, site: string | null = null) =>
    c.query(`select app.enqueue_job($1, $2::uuid, $3::uuid, $4::jsonb) as id`, [queue, tenant, site, JSON.stringify(args)]);

  it('refuses another tenant’s id, a maintenance queue, an unknown queue, too small a role, and no user', async () => {
    await asRequestRole({ userId: userA }, async (c) => {
      await c.query('savepoint s');
      expect((await sqlError(c, `select app.enqueue_job('site-backup', $1, $2, $3)`, [tenantB, siteB, JSON.stringify({ siteId: siteB, backupId: backupB })])).code).toBe('TPNF0');
      await c.query('rollback to savepoint s');
      for (const queue of ['backup-delete-objects', 'storage-delete-object', 'site-purge', 'backup-expire', 'site-backup-schedule', 'no-such-queue']) {
        const e = await sqlError(c, `select app.enqueue_job($1, $2, null, '{}')`, [queue, tenantA]);
        expect(e.code, queue).toBe('TPIN0');
        await c.query('rollback to savepoint s');
      }
    });
    // A member may ask for document processing, not for an admin's jobs.
    await asRequestRole({ userId: memberUserA }, async (c) => {
      expect((await sqlError(c, `select app.enqueue_job('tenant-export', $1, null, '{}')`, [tenantA])).code).toBe('TPNF0');
    });
    await asRequestRole({}, async (c) => {
      expect((await sqlError(c, `select app.enqueue_job('tenant-export', $1, null, '{}')`, [tenantA])).code).toBe('TPUA0');
    });
  });

  it('writes the jobs row and the pg-boss job together, as the caller from the context, and a rollback leaves neither', async () => {
    const id = await asRequestRole({ userId: userA, tenant: tenantA }, async (c) => {
      const { rows } = await enqueue(c, 'tenant-export', tenantA);
      const jobId = rows[0].id;
      // Inside the transaction, as the owner would see it: one row each, the payload built from the context.
      const mine = await c.query(`select requested_by, type from app_public.jobs where id = $1`, [jobId]);
      expect(mine.rows).toEqual([{ requested_by: userA, type: 'tenant-export' }]);
      return jobId as string;
    });
    expect((await sql.query(`select count(*)::int as n from app_public.jobs where id = $1`, [id])).rows[0].n).toBe(0);
    expect((await sql.query(`select count(*)::int as n from pgboss.job where data->>'jobId' = $1`, [id])).rows[0].n).toBe(0);
  });

  it('is what the API uses: exportTenant over GraphQL yields one jobs row and one pg-boss job naming the caller', async () => {
    const res = await ownerA.gql.ok(`mutation($t: ID!) { exportTenant(tenantId: $t) { id } }`, { t: (await ownerA.gql.ok(`{ tenants { edges { node { id slug } } } }`)).tenants.edges[0].node.id });
    const jobId = rowUuid(res.exportTenant.id);
    const boss = await sql.query(`select data from pgboss.job where name = 'tenant-export' and data->>'jobId' = $1`, [jobId]);
    expect(boss.rows).toHaveLength(1);
    expect(boss.rows[0].data).toMatchObject({ tenantId: tenantA, userId: userA, jobId });
    await waitFor(`select status from app_public.jobs where id = $1`, [jobId], (r) => r.status === 'COMPLETED', 'the export');
  });
});

describe('handlers trust ids only', () => {
  it('the issue’s attack — a backup-delete-objects job naming B’s whole backups prefix — is refused; B’s archive stays', async () => {
    const done = await forgeJob('backup-delete-objects', { tenantId: tenantB, userId: userA, requestId: 'x', prefix: `tenants/${tenantB}/backups/` });
    expect(done.output).toMatchObject({ refused: expect.any(String) });
    await expectTenantBIntact();
  });

  it('a backup-delete-objects job for a backup that still exists deletes nothing, and is audited in that tenant’s log', async () => {
    const done = await forgeJob('backup-delete-objects', { tenantId: tenantB, backupId: backupB });
    expect(done.output.refused).toMatch(/still exists/);
    await expectTenantBIntact();
    const audit = await sql.query(`select outcome, details from app_public.audit_events where tenant_id = $1 and action = 'jobRefused' order by id desc limit 1`, [tenantB]);
    expect(audit.rows[0]).toMatchObject({ outcome: 'FAILURE', details: { queue: 'backup-delete-objects' } });
  });

  it('storage-delete-object keeps bytes a file still references, and refuses a key outside the named tenant', async () => {
    const kept = await forgeJob('storage-delete-object', { tenantId: tenantB, objectKey: fileKeyB });
    expect(kept.output).toEqual({ kept: true });
    const outside = await forgeJob('storage-delete-object', { tenantId: tenantA, objectKey: fileKeyB });
    expect(outside.output.refused).toMatch(/not an object of the tenant/);
    await expectTenantBIntact();
  });

  it('a tracked job naming another tenant’s jobs row, another user, or other arguments is refused and changes nothing', async () => {
    const before = (await sql.query(`select status, attempts, updated_at from app_public.jobs where id = $1`, [jobB])).rows[0];
    const forged = [
      // A's user acting on B's tenant and B's job row.
      { tenantId: tenantB, userId: userA, jobId: jobB, requestId: 'x', siteId: siteB },
      // A's tenant with B's job id: not a row A can see.
      { tenantId: tenantA, userId: userA, jobId: jobB, requestId: 'x', siteId: siteB },
    ];
    for (const data of forged) {
      const done = await forgeJob('site-provision', data);
      expect(done.output, JSON.stringify(data)).toMatchObject({ refused: expect.any(String) });
    }
    expect((await sql.query(`select status, attempts, updated_at from app_public.jobs where id = $1`, [jobB])).rows[0]).toEqual(before);
    // A's own real job row, but a payload that swaps in B's site and backup: the arguments must match the row.
    const real = await ownerA.gql.ok(`mutation($t: ID!) { exportTenant(tenantId: $t) { id } }`, { t: (await ownerA.gql.ok(`{ tenants { edges { node { id } } } }`)).tenants.edges[0].node.id });
    const realId = rowUuid(real.exportTenant.id);
    await waitFor(`select status from app_public.jobs where id = $1`, [realId], (r) => r.status === 'COMPLETED', 'the export');
    const swapped = await forgeJob('site-backup', { tenantId: tenantA, userId: userA, jobId: realId, requestId: 'x', siteId: siteB, backupId: backupB });
    expect(swapped.output.refused).toMatch(/tenant-export job, not site-backup/);
    const extra = await forgeJob('tenant-export', { tenantId: tenantA, userId: userA, jobId: realId, requestId: 'x', prefix: `tenants/${tenantB}/` });
    expect(extra.output.refused).toMatch(/does not match the arguments/);
    // A member of A named as the actor of the owner's job.
    const other = await forgeJob('tenant-export', { tenantId: tenantA, userId: memberUserA, jobId: realId, requestId: 'x' });
    expect(other.output.refused).toMatch(/another user/);
    await expectTenantBIntact();
  });
});

describe('maintenance sweeps', () => {
  it('an upload announced and sent but never completed: once expired, upload-expire removes its row and its bytes', async () => {
    const tenantGid = (await ownerA.gql.ok(`{ tenants { edges { node { id } } } }`)).tenants.edges[0].node.id;
    const bytes = Buffer.from('abandoned before completion\n');
    const ticket = await createUpload(ownerA, tenantGid, bytes, { filename: 'abandoned.txt', mimeType: 'text/plain' });
    await putBytes(ticket, bytes);
    const uploadId = rowUuid(ticket.id);
    const key = (await sql.query(`select object_key from app_public.uploads where id = $1`, [uploadId])).rows[0].object_key;
    expect(await app.services.storage.size(key)).toBe(bytes.length);
    // Not yet expired: the sweep leaves it alone.
    await app.services.jobs.send('upload-expire', {});
    await new Promise((r) => setTimeout(r, 1500));
    expect((await sql.query(`select count(*)::int as n from app_public.uploads where id = $1`, [uploadId])).rows[0].n).toBe(1);
    await sql.query(`update app_public.uploads set expires_at = now() - interval '1 second' where id = $1`, [uploadId]);
    await app.services.jobs.send('upload-expire', {});
    await poll(async () => (await sql.query(`select 1 from app_public.uploads where id = $1`, [uploadId])).rowCount === 0, 15_000, 'the expired upload row to go');
    await poll(async () => (await app.services.storage.size(key)) === null, 15_000, 'the abandoned bytes to go');
    await expectTenantBIntact();
  });
});

describe('queues are declared once', () => {
  it('the tenant queues of src/jobs/queues.ts are exactly the ones sql/0014 lets a tenant ask for, with the same roles', async () => {
    const { rows } = await sql.query(`select name, permissions from app_private.tenant_job_queues order by name`);
    expect(rows).toEqual(Object.entries(TENANT_QUEUES).map(([name, q]) => ({ name, permissions: [...q.permissions] })).sort((a, b) => a.name.localeCompare(b.name)));
    // Every declared queue has a handler and every handler a declaration of the same kind.
    for (const q of QUEUES) expect(q.kind === 'tenant' ? q.name in TENANT_QUEUES : !(q.name in TENANT_QUEUES), q.name).toBe(true);
    expect(QUEUES.filter((q) => q.kind === 'tenant').map((q) => q.name).sort()).toEqual(Object.keys(TENANT_QUEUES).sort());
  });
});
