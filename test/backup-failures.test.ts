import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { WorkerProcesses, poll } from './support/workers.ts';
import { signUp, createTenant, type TestUser, rowUuid } from './support/client.ts';
import { startEmbeddedS3, type EmbeddedS3 } from '../src/storage/embedded.ts';

/**
 * Backups when things break: a worker SIGKILLed mid-backup (another finishes; nothing marked SUCCESS without all
 * its parts), and S3 going away (FAILED with a readable error after the retries; nothing marked SUCCESS).
 * This file has an S3 server of its own so that it can stop it.
 */
let app: TestApp;
let s3: EmbeddedS3;
let s3Dir: string;
let owner: TestUser;
let tenant: { id: string; slug: string };
let sql: pg.Client;
let siteSql: pg.Client;
let workers: WorkerProcesses;




async function healthySite(name: string) {
  const c = await owner.gql.ok(`mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } } }`, {
    i: { tenantId: tenant.id, name, displayName: name, apps: ['notes'] },
  });
  const siteUuid = rowUuid(c.createSite.site.id);
  await poll(async () => (await sql.query(`select status from app_public.sites where id = $1`, [siteUuid])).rows[0]?.status === 'HEALTHY', 30_000, 'site healthy');
  const schema = (await sql.query(`select schema_name from app_public.sites where id = $1`, [siteUuid])).rows[0].schema_name;
  await siteSql.query(`insert into "${schema}".notes (title, body) select 'n' || g, repeat(md5(g::text), 40) from generate_series(1, 20000) g`);
  return { id: c.createSite.site.id as string, uuid: siteUuid, schema };
}

beforeAll(async () => {
  s3Dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantplane-s3-own-'));
  s3 = await startEmbeddedS3(s3Dir, 0, 'tp-failures');
  app = await startTestApp({ S3_ENDPOINT: s3.endpoint, S3_BUCKET: 'tp-failures', WORKERS: 'false' });
  workers = new WorkerProcesses(app);
  owner = await signUp(app, 'owner');
  tenant = await createTenant(owner, 'failures');
  sql = new pg.Client({ connectionString: app.databaseUrl });
  await sql.connect();
  siteSql = new pg.Client({ connectionString: app.sitesDatabaseUrl });
  await siteSql.connect();
  await sql.query(`update app_public.tenants set plan_id = 'pro' where slug = $1`, [tenant.slug]);
});
afterAll(async () => {
  workers?.killAll();
  await sql?.end();
  await siteSql?.end();
  await app?.stop();
  await s3?.stop().catch(() => undefined);
  fs.rmSync(s3Dir, { recursive: true, force: true });
});

describe('backups under failure', () => {
  it('a worker killed mid-backup: another finishes, and SUCCESS only with every part', async () => {
    const first = workers.start();
    const site = await healthySite(`kill-bk-${process.pid}`);
    first.kill('SIGTERM');
    await new Promise((r) => first.once('exit', r));
    const slow = workers.start({ JOB_STEP_DELAY_MS: '1500' });
    const r = await owner.gql.ok(`mutation($s: ID!) { backupSite(siteId: $s) { backup { id } job { id } } }`, { s: site.id });
    const backupUuid = rowUuid(r.backupSite.backup.id);
    const jobUuid = rowUuid(r.backupSite.job.id);
    await poll(async () => {
      const j = (await sql.query(`select status, progress from app_public.jobs where id = $1`, [jobUuid])).rows[0];
      return j?.status === 'RUNNING' && j.progress >= 5;
    }, 30_000, 'the backup to be running');
    slow.kill('SIGKILL');
    await new Promise((r) => slow.once('exit', r));
    expect((await sql.query(`select status from app_public.backups where id = $1`, [backupUuid])).rows[0].status).not.toBe('SUCCESS');
    workers.start();
    await poll(async () => {
      const j = (await sql.query(`select status from app_public.jobs where id = $1`, [jobUuid])).rows[0];
      return j?.status === 'COMPLETED' || j?.status === 'FAILED';
    }, 90_000, 'the backup job to end');
    const done = (await sql.query(`select status, manifest, object_key from app_public.backups where id = $1`, [backupUuid])).rows[0];
    expect(done.status).toBe('SUCCESS');
    const job = (await sql.query(`select status, attempts from app_public.jobs where id = $1`, [jobUuid])).rows[0];
    expect(job).toEqual({ status: 'COMPLETED', attempts: 2 });
    // Exactly the manifest's parts are in the bucket: nothing left over from the killed attempt.
    const listed = (await app.services.storage.list(done.object_key)).map((o) => o.key.slice(done.object_key.length)).sort();
    const expected = ['manifest.json', ...done.manifest.tables.map((t: any) => t.key), ...done.manifest.files.map((f: any) => f.key)].sort();
    expect(listed).toEqual(expected);
  }, 150_000);

  it('S3 unreachable: FAILED with a readable error after the retries, nothing marked SUCCESS', async () => {
    const worker = workers.start();
    const site = await healthySite(`nos3-${process.pid}`);
    await s3.stop();
    const r = await owner.gql.ok(`mutation($s: ID!) { backupSite(siteId: $s) { backup { id } job { id } } }`, { s: site.id });
    const backupUuid = rowUuid(r.backupSite.backup.id);
    // The job is finished last (after the backup row), so wait for the job.
    await poll(async () => {
      const j = (await sql.query(`select status from app_public.jobs where id = $1`, [rowUuid(r.backupSite.job.id)])).rows[0];
      return j?.status === 'FAILED' || j?.status === 'COMPLETED';
    }, 90_000, 'the backup job to end');
    const b = (await sql.query(`select status, error from app_public.backups where id = $1`, [backupUuid])).rows[0];
    expect(b.status).toBe('FAILED');
    expect(b.error).toMatch(/ECONNREFUSED|unreachable|connect/i);
    const job = (await sql.query(`select status, attempts, max_attempts, error from app_public.jobs where id = $1`, [rowUuid(r.backupSite.job.id)])).rows[0];
    expect(job.status).toBe('FAILED');
    expect(job.attempts).toBe(job.max_attempts);
    worker.kill('SIGKILL');
  }, 150_000);
});
