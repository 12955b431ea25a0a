import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { createTenant, signUp, type TestUser } from './support/client.ts';
import { tenantScopedGlobalId } from '../src/graphql/ids.ts';
import { TRANSITIONS } from '../src/modules/sites/lifecycle.ts';

/**
 * Issue 14 §5, in SQL as the request role (the way src/db/database.ts switches to it): every status move of sites,
 * backups, jobs, documents and uploads goes through the transition table of sql/0016 (app.lifecycle_transitions),
 * whoever issues it; and a malformed app.user_id / app.tenant_id reads as no context — zero rows, no error.
 */
const APP_ROLE = 'tenantplane_app';

let app: TestApp;
let db: pg.Client;
interface Side {
  owner: TestUser;
  tenantId: string;
  ownerId: string;
  siteId: string;
  fileId: string;
  fileSha: string;
}
let A: Side;
let B: Side;
const suffix = `${process.pid}-${crypto.randomBytes(3).toString('hex')}`;

async function q(sql: string, params: unknown[] = []) {
  return db.query(sql, params);
}

/** One transaction, always rolled back: as the request role with this context, or privileged when ctx is null. */
async function inTx<T>(ctx: { userId: string; tenant?: string } | null, fn: () => Promise<T>): Promise<T> {
  await q('begin');
  try {
    if (ctx) {
      await q(`select set_config('role', $1, true), set_config('app.user_id', $2, true), set_config('app.tenant_id', $3, true)`, [APP_ROLE, ctx.userId, ctx.tenant ?? '']);
    }
    return await fn();
  } finally {
    await q('rollback');
  }
}

/** rowCount, or the SQLSTATE and message of the refusal. */
async function attempt(sql: string, params: unknown[] = []): Promise<number | { code: string; message: string }> {
  await q('savepoint s');
  try {
    const r = await q(sql, params);
    await q('release savepoint s');
    return r.rowCount ?? 0;
  } catch (e) {
    await q('rollback to savepoint s');
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
}

async function setUpSide(prefix: string): Promise<Side> {
  const owner = await signUp(app, `${prefix}-owner`);
  const tenant = await createTenant(owner, prefix);
  const tenantId: string = (await q(`select id from app_public.tenants where slug = $1`, [tenant.slug])).rows[0].id;
  const userId: string = (await q(`select id from app_public.users where email = $1`, [owner.email])).rows[0].id;
  // Many rows of each kind below: no plan quota in the way (test/quotas.test.ts covers those).
  await q(`update app_public.tenants set plan_id = 'enterprise' where id = $1`, [tenantId]);
  const siteId = crypto.randomUUID();
  await q(
    `insert into app_public.sites (tenant_id, id, name, display_name, domain, status, created_by) values ($1, $2, $3, 'S', $3::text || '.test', 'HEALTHY', $4)`,
    [tenantId, siteId, `${prefix}-${suffix}`, userId],
  );
  const fileId = crypto.randomUUID();
  const fileSha = crypto.randomBytes(32).toString('hex');
  await q(
    `insert into app_public.files (tenant_id, id, sha256, size_bytes, mime_type, object_key) values ($1, $2, $3, 10, 'text/plain', 'tenants/' || $1::uuid::text || '/objects/' || $2::uuid::text)`,
    [tenantId, fileId, fileSha],
  );
  return { owner, tenantId, ownerId: userId, siteId, fileId, fileSha };
}

beforeAll(async () => {
  app = await startTestApp();
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  A = await setUpSide('life-a');
  B = await setUpSide('life-b');
});
afterAll(async () => {
  await db?.end();
  await app?.stop();
});

describe('the site lifecycle of TypeScript and SQL', () => {
  it('src/modules/sites/lifecycle.ts TRANSITIONS and app.lifecycle_transitions list the same moves and start', async () => {
    const { rows } = await q(`select from_status, to_status from app.lifecycle_transitions where entity = 'site'`);
    const sql = rows.filter((r) => r.from_status !== null).map((r) => `${r.from_status}→${r.to_status}`).sort();
    const ts = Object.entries(TRANSITIONS).flatMap(([from, tos]) => tos.map((to) => `${from}→${to}`)).sort();
    expect(sql).toEqual(ts);
    expect(rows.filter((r) => r.from_status === null).map((r) => r.to_status)).toEqual(['PENDING']);
    // Every state of the enum is known to both.
    const states = (await q(`select unnest(enum_range(null::app_public.site_status))::text as s`)).rows.map((r) => r.s).sort();
    expect(Object.keys(TRANSITIONS).sort()).toEqual(states);
  });
});

/** Inserts (privileged, any state) a row of each lifecycle table in tenant A; returns its id. */
async function row(table: 'sites' | 'backups' | 'jobs' | 'documents' | 'uploads', status: string, side: Side = A): Promise<string> {
  const id = crypto.randomUUID();
  switch (table) {
    case 'sites':
      await q(`insert into app_public.sites (tenant_id, id, name, display_name, domain, status, created_by) values ($1, $2, $3, 'S', $3::text || '.test', $4, $5)`, [
        side.tenantId, id, `s-${id.slice(0, 8)}`, status, side.ownerId,
      ]);
      break;
    case 'backups':
      await q(`insert into app_public.backups (tenant_id, id, site_id, status, object_key, requested_by, expires_at) values ($1, $2, $3, $4, 'tenants/' || $1::uuid::text || '/backups/' || $2::uuid::text, $5, now() + interval '1 day')`, [
        side.tenantId, id, side.siteId, status, side.ownerId,
      ]);
      break;
    case 'jobs':
      await q(`insert into app_public.jobs (tenant_id, id, type, status, requested_by, max_attempts) values ($1, $2, 'site-backup', $3, $4, 3)`, [side.tenantId, id, status, side.ownerId]);
      break;
    case 'documents':
      await q(
        `insert into app_public.documents (tenant_id, id, file_id, uploader_id, filename, original_name, size_bytes, mime_type, status) values ($1, $2, $3, $4, $5, $5, 10, 'text/plain', $6)`,
        [side.tenantId, id, side.fileId, side.ownerId, `d-${id}.txt`, status],
      );
      break;
    case 'uploads':
      await q(
        `insert into app_public.uploads (tenant_id, id, uploader_id, filename, original_name, mime_type, size_bytes, sha256, object_key, expires_at, completed_at, file_id)
         values ($1, $2, $3, 'u.txt', 'u.txt', 'text/plain', 10, $4, 'tenants/' || $1::uuid::text || '/objects/' || $2::uuid::text, now() + interval '1 hour', $5, $6)`,
        [side.tenantId, id, side.ownerId, status === 'COMPLETED' ? side.fileSha : crypto.randomBytes(32).toString('hex'), status === 'COMPLETED' ? new Date() : null, status === 'COMPLETED' ? side.fileId : null],
      );
      break;
  }
  return id;
}

const ENTITY = { sites: 'site', backups: 'backup', jobs: 'job', documents: 'document' } as const;

describe('status moves, as the request role (owner of the tenant)', () => {
  const cases: Array<{ table: keyof typeof ENTITY; from: string; to: string; legal: boolean }> = [
    { table: 'sites', from: 'HEALTHY', to: 'PENDING', legal: false },
    { table: 'sites', from: 'PENDING', to: 'HEALTHY', legal: false },
    { table: 'sites', from: 'DELETED', to: 'HEALTHY', legal: false },
    { table: 'sites', from: 'RUNNING', to: 'PROVISIONING', legal: false },
    { table: 'sites', from: 'SOFT_DELETED', to: 'HEALTHY', legal: false },
    { table: 'sites', from: 'HEALTHY', to: 'SUSPENDED', legal: true },
    { table: 'sites', from: 'SUSPENDED', to: 'HEALTHY', legal: true },
    { table: 'sites', from: 'FAILED', to: 'PENDING', legal: true },
    { table: 'sites', from: 'HEALTHY', to: 'SOFT_DELETED', legal: true },
    { table: 'sites', from: 'SOFT_DELETED', to: 'RESTORING', legal: true },
    { table: 'backups', from: 'PENDING', to: 'SUCCESS', legal: false },
    { table: 'backups', from: 'FAILED', to: 'SUCCESS', legal: false },
    { table: 'backups', from: 'FAILED', to: 'RUNNING', legal: false },
    { table: 'backups', from: 'RUNNING', to: 'PENDING', legal: false },
    { table: 'backups', from: 'PENDING', to: 'RUNNING', legal: true },
    { table: 'backups', from: 'RUNNING', to: 'SUCCESS', legal: true },
    { table: 'jobs', from: 'PENDING', to: 'COMPLETED', legal: false },
    { table: 'jobs', from: 'COMPLETED', to: 'RUNNING', legal: false },
    { table: 'jobs', from: 'FAILED', to: 'PENDING', legal: false },
    { table: 'jobs', from: 'CANCELLED', to: 'COMPLETED', legal: false },
    { table: 'jobs', from: 'PENDING', to: 'RUNNING', legal: true },
    { table: 'jobs', from: 'RUNNING', to: 'PENDING', legal: true },
    { table: 'jobs', from: 'RUNNING', to: 'COMPLETED', legal: true },
    { table: 'jobs', from: 'RUNNING', to: 'CANCELLED', legal: true },
    { table: 'documents', from: 'UPLOADED', to: 'PROCESSED', legal: false },
    { table: 'documents', from: 'PROCESSED', to: 'UPLOADED', legal: false },
    { table: 'documents', from: 'ERROR', to: 'PROCESSED', legal: false },
    { table: 'documents', from: 'UPLOADED', to: 'PROCESSING', legal: true },
    { table: 'documents', from: 'PROCESSING', to: 'PROCESSED', legal: true },
    { table: 'documents', from: 'PROCESSING', to: 'UPLOADED', legal: true },
  ];
  for (const c of cases) {
    it(`${c.table}: ${c.from} → ${c.to} is ${c.legal ? 'accepted' : 'refused'}`, async () => {
      const id = await row(c.table, c.from);
      const r = await inTx({ userId: A.ownerId }, () =>
        attempt(`update app_public.${c.table} set status = $3 where tenant_id = $1 and id = $2`, [A.tenantId, id, c.to]),
      );
      if (c.legal) expect(r).toBe(1);
      else expect(r).toEqual({ code: 'TPIN0', message: `cannot move a ${ENTITY[c.table]} from ${c.from} to ${c.to}` });
    });
  }

  it('only maintenance (a privileged role: the purge) makes a site DELETED, which frees its place in the quota', async () => {
    const id = await row('sites', 'SOFT_DELETED');
    const r = await inTx({ userId: A.ownerId }, () => attempt(`update app_public.sites set status = 'DELETED' where tenant_id = $1 and id = $2`, [A.tenantId, id]));
    expect(r).toEqual({ code: 'TPIN0', message: 'cannot move a site from SOFT_DELETED to DELETED: only maintenance does' });
    await inTx(null, async () => expect(await attempt(`update app_public.sites set status = 'DELETED' where id = $1`, [id])).toBe(1));
  });

  it('staying in the same state is no move (progress, logs, config updates)', async () => {
    const job = await row('jobs', 'COMPLETED');
    const site = await row('sites', 'DELETED');
    await inTx({ userId: A.ownerId }, async () => {
      expect(await attempt(`update app_public.jobs set status = 'COMPLETED', logs = logs || 'x'::text where tenant_id = $1 and id = $2`, [A.tenantId, job])).toBe(1);
      expect(await attempt(`update app_public.sites set display_name = 'renamed' where tenant_id = $1 and id = $2`, [A.tenantId, site])).toBe(1);
    });
  });

  it('uploads complete once: never un-completed, re-dated or moved onto another file', async () => {
    const pending = await row('uploads', 'PENDING');
    const done = await row('uploads', 'COMPLETED');
    const otherFile = crypto.randomUUID();
    await q(`insert into app_public.files (tenant_id, id, sha256, size_bytes, mime_type, object_key) values ($1, $2, $3, 10, 'text/plain', 'tenants/' || $1::uuid::text || '/objects/' || $2::uuid::text)`, [
      A.tenantId, otherFile, crypto.randomBytes(32).toString('hex'),
    ]);
    await inTx({ userId: A.ownerId }, async () => {
      expect(await attempt(`update app_public.uploads set completed_at = now() where tenant_id = $1 and id = $2`, [A.tenantId, pending])).toBe(1);
      expect(await attempt(`update app_public.uploads set completed_at = null where tenant_id = $1 and id = $2`, [A.tenantId, done])).toEqual({
        code: 'TPIN0',
        message: 'cannot move an upload from COMPLETED to PENDING: an upload completes once',
      });
      expect(await attempt(`update app_public.uploads set completed_at = now() - interval '1 day' where tenant_id = $1 and id = $2`, [A.tenantId, done])).toMatchObject({ code: 'TPIN0' });
      expect(await attempt(`update app_public.uploads set file_id = $3 where tenant_id = $1 and id = $2`, [A.tenantId, done, otherFile])).toEqual({
        code: 'TPIN0',
        message: 'the file of a completed upload cannot change',
      });
    });
    // Pending: its file is set only as it completes, and only to a file of its own bytes (or its reservation would go).
    const sha: string = (await q(`select sha256 from app_public.uploads where id = $1`, [pending])).rows[0].sha256;
    const own = crypto.randomUUID();
    await q(`insert into app_public.files (tenant_id, id, sha256, size_bytes, mime_type, object_key) values ($1, $2, $3, 10, 'text/plain', 'tenants/' || $1::uuid::text || '/objects/' || $2::uuid::text)`, [
      A.tenantId, own, sha,
    ]);
    await inTx({ userId: A.ownerId }, async () => {
      expect(await attempt(`update app_public.uploads set file_id = $3 where tenant_id = $1 and id = $2`, [A.tenantId, pending, own])).toEqual({
        code: 'TPIN0',
        message: 'the file of an upload is set when it completes',
      });
      expect(await attempt(`update app_public.uploads set file_id = $3, completed_at = now() where tenant_id = $1 and id = $2`, [A.tenantId, pending, otherFile])).toEqual({
        code: 'TPIN0',
        message: 'an upload can only be completed onto a stored file with its own sha256',
      });
      expect(await attempt(`update app_public.uploads set file_id = $3, completed_at = now() where tenant_id = $1 and id = $2`, [A.tenantId, pending, own])).toBe(1);
      const forged = await attempt(
        `insert into app_public.uploads (tenant_id, uploader_id, filename, original_name, mime_type, size_bytes, sha256, object_key, expires_at, file_id)
         values ($1, $2, 'u.txt', 'u.txt', 'text/plain', 1, $3, 'tenants/' || $1::uuid::text || '/objects/y', now() + interval '1 hour', $4)`,
        [A.tenantId, A.ownerId, crypto.randomBytes(32).toString('hex'), A.fileId],
      );
      expect(forged).toMatchObject({ code: 'TPIN0' });
    });
    // Its file may still go (ON DELETE SET NULL updates the completed upload).
    await inTx(null, async () => {
      await q(`delete from app_public.documents where tenant_id = $1 and file_id = $2`, [A.tenantId, A.fileId]);
      expect(await attempt(`delete from app_public.files where tenant_id = $1 and id = $2`, [A.tenantId, A.fileId])).toBe(1);
    });
  });

  it('rows are created in their starting state only (a site cannot be inserted HEALTHY)', async () => {
    await inTx({ userId: A.ownerId }, async () => {
      const insert = (status: string) =>
        attempt(
          `insert into app_public.sites (tenant_id, name, display_name, domain, status, created_by) values ($1, $2, 'S', $2::text || '.test', $3, $4)`,
          [A.tenantId, `ins-${status.toLowerCase()}-${suffix}`, status, A.ownerId],
        );
      expect(await insert('HEALTHY')).toEqual({ code: 'TPIN0', message: 'a new site starts PENDING, not HEALTHY' });
      expect(await insert('PENDING')).toBe(1);
      const doc = await attempt(
        `insert into app_public.documents (tenant_id, file_id, uploader_id, filename, original_name, size_bytes, mime_type, status) values ($1, $2, $3, 'x.txt', 'x.txt', 1, 'text/plain', 'PROCESSED')`,
        [A.tenantId, A.fileId, A.ownerId],
      );
      expect(doc).toEqual({ code: 'TPIN0', message: 'a new document starts UPLOADED, not PROCESSED' });
      const upload = await attempt(
        `insert into app_public.uploads (tenant_id, uploader_id, filename, original_name, mime_type, size_bytes, sha256, object_key, expires_at, completed_at)
         values ($1, $2, 'u.txt', 'u.txt', 'text/plain', 1, $3, 'tenants/' || $1::uuid::text || '/objects/x', now() + interval '1 hour', now())`,
        [A.tenantId, A.ownerId, crypto.randomBytes(32).toString('hex')],
      );
      expect(upload).toEqual({ code: 'TPIN0', message: 'a new upload starts PENDING, not COMPLETED' });
      const backup = await attempt(
        `insert into app_public.backups (tenant_id, site_id, status, object_key, requested_by, expires_at) values ($1, $2, 'SUCCESS', 'tenants/' || $1::uuid::text || '/backups/x', $3, now() + interval '1 day')`,
        [A.tenantId, A.siteId, A.ownerId],
      );
      expect(backup).toEqual({ code: 'TPIN0', message: 'a new backup starts PENDING, not SUCCESS' });
    });
  });

  it('the owner (maintenance) role goes through the same table', async () => {
    const site = await row('sites', 'HEALTHY');
    const job = await row('jobs', 'FAILED');
    await inTx(null, async () => {
      expect(await attempt(`update app_public.sites set status = 'PENDING' where id = $1`, [site])).toEqual({ code: 'TPIN0', message: 'cannot move a site from HEALTHY to PENDING' });
      expect(await attempt(`update app_public.jobs set status = 'RUNNING' where id = $1`, [job])).toEqual({ code: 'TPIN0', message: 'cannot move a job from FAILED to RUNNING' });
      expect(await attempt(`update app_public.sites set status = 'SOFT_DELETED' where id = $1`, [site])).toBe(1);
      expect(await attempt(`update app_public.sites set status = 'DELETED' where id = $1`, [site])).toBe(1);
    });
  });

  it("another tenant's rows: nothing is touched, and the refusal names nothing of them", async () => {
    const bSite = await row('sites', 'HEALTHY', B);
    const bJob = await row('jobs', 'RUNNING', B);
    await inTx({ userId: A.ownerId }, async () => {
      expect(await attempt(`update app_public.sites set status = 'PENDING' where id = $1`, [bSite])).toBe(0);
      expect(await attempt(`update app_public.sites set status = 'SUSPENDED' where id = $1`, [bSite])).toBe(0);
      expect(await attempt(`update app_public.jobs set status = 'COMPLETED' where id = $1`, [bJob])).toBe(0);
      // Even narrowed to B's tenant id (X-Tenant of a tenant A's owner does not belong to).
    });
    await inTx({ userId: A.ownerId, tenant: B.tenantId }, async () => {
      expect(await attempt(`update app_public.sites set status = 'SUSPENDED' where id = $1`, [bSite])).toBe(0);
    });
    expect((await q(`select status from app_public.sites where id = $1`, [bSite])).rows[0].status).toBe('HEALTHY');
  });

  it("a site's schema_name can only be its own (never another site's schema, which a backup would dump)", async () => {
    await inTx({ userId: A.ownerId }, async () => {
      const other = `site_${B.siteId.replace(/-/g, '')}`;
      expect(await attempt(`update app_public.sites set schema_name = $2 where id = $1`, [A.siteId, other])).toMatchObject({ code: '23514' });
      expect(await attempt(`update app_public.sites set schema_name = $2 where id = $1`, [A.siteId, `site_${A.siteId.replace(/-/g, '')}`])).toBe(1);
    });
  });
});

describe('garbage context reads as no context: zero rows, no error', () => {
  const GARBAGE = ['not-a-uuid', "x' or true --", '{}', ' ', '00000000-0000-0000-0000-00000000000', `${crypto.randomUUID()}x`, 'ä'.repeat(40)];

  async function tablesWithRows() {
    const { rows } = await q(
      `select c.oid::regclass::text as name, exists (select 1 from information_schema.columns i where i.table_schema = n.nspname and i.table_name = c.relname and i.column_name = 'tenant_id') as tenant_scoped
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'app_public' and c.relkind in ('r', 'p') and has_table_privilege($1, c.oid, 'SELECT') order by 1`,
      [APP_ROLE],
    );
    return rows as Array<{ name: string; tenant_scoped: boolean }>;
  }

  /** Readable by everyone by design: plans, and the permission catalogue with its role sets (sql/0018). */
  const PUBLIC_TABLES = new Set(['app_public.plans', 'app_public.permissions', 'app_public.builtin_roles', 'app_public.role_templates', 'app_public.platform_roles', 'app_public.site_plans']);
  it('app.user_id not a uuid: every table answers, none but the public catalogues (plans, permissions, roles) shows a row', async () => {
    const tables = await tablesWithRows();
    expect(tables.length).toBeGreaterThan(10);
    for (const value of GARBAGE) {
      await inTx({ userId: value }, async () => {
        for (const t of tables) {
          const r = await attempt(`select * from ${t.name}`);
          expect(typeof r === 'number' ? (PUBLIC_TABLES.has(t.name) ? 'public' : r) : r, `${t.name} with app.user_id = ${JSON.stringify(value)}`).toBe(
            PUBLIC_TABLES.has(t.name) ? 'public' : 0,
          );
        }
        expect((await q(`select app.current_user_id() as u, app.visible_tenant_ids() as v, app.platform_role()::text as p`)).rows[0]).toEqual({ u: null, v: [], p: 'NONE' });
        // Writes find nothing either.
        expect(await attempt(`update app_public.sites set display_name = 'x'`)).toBe(0);
        expect(await attempt(`delete from app_public.documents`)).toBe(0);
      });
    }
  });

  it('app.tenant_id not a tenant (garbage, another tenant): the tenant-scoped tables show nothing, no error', async () => {
    const tables = (await tablesWithRows()).filter((t) => t.tenant_scoped || t.name === 'app_public.tenants');
    for (const value of [...GARBAGE, B.tenantId, B.tenantId.toUpperCase()]) {
      await inTx({ userId: A.ownerId, tenant: value }, async () => {
        for (const t of tables) expect(await attempt(`select * from ${t.name}`), `${t.name} with app.tenant_id = ${JSON.stringify(value)}`).toBe(0);
      });
    }
    // Control: A's own tenant id shows A's rows.
    await inTx({ userId: A.ownerId, tenant: A.tenantId }, async () => {
      expect(await attempt(`select * from app_public.sites`)).toBeGreaterThan(0);
    });
  });

  it('both garbage, and a uuid written without hyphens or in capitals still works', async () => {
    await inTx({ userId: 'garbage', tenant: 'garbage' }, async () => {
      expect(await attempt(`select * from app_public.tenants`)).toBe(0);
    });
    await inTx({ userId: A.ownerId.replace(/-/g, '').toUpperCase() }, async () => {
      expect(await attempt(`select * from app_public.tenants`)).toBe(1);
    });
  });
});

describe('through GraphQL, the database has the last word', () => {
  it('concurrent suspendSite and deleteSite of one HEALTHY site: a legal end state, every loser BAD_USER_INPUT naming the state it found', async () => {
    for (let round = 0; round < 3; round++) {
      const id = await row('sites', 'HEALTHY');
      const siteId = tenantScopedGlobalId('Site', A.tenantId, id);
      const calls = Array.from({ length: 16 }, (_, i) =>
        A.owner.gql.request(`mutation($s: ID!) { ${i % 2 ? 'deleteSite' : 'suspendSite'}(siteId: $s) { id status } }`, { s: siteId }),
      );
      const results = await Promise.all(calls);
      const errors = results.flatMap((r) => r.errors ?? []);
      for (const e of errors) {
        expect(e.extensions?.code, e.message).toBe('BAD_USER_INPUT');
        expect(e.extensions?.field).toBe('siteId');
        expect(e.message).toMatch(/^cannot (suspend|delete) a site that is (SUSPENDED|SOFT_DELETED)$|^cannot move a site from (SUSPENDED|SOFT_DELETED) to (SUSPENDED|SOFT_DELETED)$/);
      }
      const { rows } = await q(`select status::text from app_public.sites where id = $1`, [id]);
      expect(rows[0].status).toBe('SOFT_DELETED'); // a delete always gets through (from HEALTHY or SUSPENDED), nothing undoes it
      // Each success in the audit log is a legal move.
      const audit = await q(`select action, details ->> 'from' as "from", details ->> 'to' as "to" from app_public.audit_events where target_id = $1 and outcome = 'SUCCESS'`, [id]);
      for (const a of audit.rows) expect(a.from === a.to || TRANSITIONS[a.from as keyof typeof TRANSITIONS].includes(a.to)).toBe(true);
    }
  });
});
