import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { WorkerProcesses, poll } from './support/workers.ts';
import { signUp, createTenant, type TestUser, rowUuid } from './support/client.ts';

/**
 * A worker process killed with SIGKILL in the middle of provisioning: another worker picks the job up (after the
 * heartbeat lapses) and finishes it, with exactly one schema and one role.
 */
let app: TestApp;
let owner: TestUser;
let tenant: { id: string; slug: string };
let sql: pg.Client;
let siteSql: pg.Client;
let workers: WorkerProcesses;



beforeAll(async () => {
  app = await startTestApp({ WORKERS: 'false' });
  workers = new WorkerProcesses(app);
  owner = await signUp(app, 'owner');
  tenant = await createTenant(owner, 'crash');
  sql = new pg.Client({ connectionString: app.databaseUrl });
  await sql.connect();
  siteSql = new pg.Client({ connectionString: app.sitesDatabaseUrl });
  await siteSql.connect();
});
afterAll(async () => {
  workers?.killAll();
  await sql?.end();
  await siteSql?.end();
  await app?.stop();
});

describe('a killed worker', () => {
  it('mid-provisioning: another worker finishes, exactly one schema', async () => {
    const slow = workers.start({ JOB_STEP_DELAY_MS: '1500' });
    const created = await owner.gql.ok(`mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } job { id } } }`, {
      i: { tenantId: tenant.id, name: `crash-${process.pid}`, displayName: 'Crash', apps: ['notes', 'crm'] },
    });
    const siteUuid = rowUuid(created.createSite.site.id);
    const jobUuid = rowUuid(created.createSite.job.id);
    // Kill it once it is inside the work: schema being created or apps being installed.
    await poll(async () => {
      const r = await sql.query(`select status, progress from app_public.jobs where id = $1`, [jobUuid]);
      return r.rows[0]?.status === 'RUNNING' && r.rows[0].progress >= 30;
    }, 30_000, 'the job to be running');
    slow.kill('SIGKILL');
    await new Promise((r) => slow.once('exit', r));
    const midway = (await sql.query(`select status from app_public.sites where id = $1`, [siteUuid])).rows[0].status;
    expect(midway).toBe('PROVISIONING');

    workers.start();
    const done = await poll(async () => {
      const r = await sql.query(`select s.status, j.status as job, j.attempts from app_public.sites s join app_public.jobs j on j.site_id = s.id where s.id = $1`, [siteUuid]);
      return r.rows[0]?.job === 'COMPLETED' ? r.rows[0] : null; // the site turns HEALTHY just before its job completes
    }, 60_000, 'the site to become healthy');
    expect(done).toMatchObject({ status: 'HEALTHY', job: 'COMPLETED', attempts: 2 });
    const hex = siteUuid.replace(/-/g, '');
    expect((await siteSql.query(`select nspname from pg_namespace where nspname like $1`, [`%${hex}%`])).rows).toEqual([{ nspname: `site_${hex}` }]);
    expect((await sql.query(`select count(*)::int as n from app_public.tenant_schemas where site_id = $1`, [siteUuid])).rows[0].n).toBe(1);
    expect((await siteSql.query(`select table_name from information_schema.tables where table_schema = $1 order by 1`, [`site_${hex}`])).rows.map((r) => r.table_name)).toEqual([
      'contacts',
      'deals',
      'notes',
    ]);
  }, 120_000);

  it('SIGTERM: the running job stops at its next checkpoint, the worker exits, another worker resumes it', async () => {
    workers.killAll();
    const slow = workers.start({ JOB_STEP_DELAY_MS: '1500' });
    const created = await owner.gql.ok(`mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } job { id } } }`, {
      i: { tenantId: tenant.id, name: `term-${process.pid}`, displayName: 'Term', apps: ['notes'] },
    });
    const jobUuid = rowUuid(created.createSite.job.id);
    await poll(async () => (await sql.query(`select status from app_public.jobs where id = $1`, [jobUuid])).rows[0]?.status === 'RUNNING', 30_000, 'running');
    const started = Date.now();
    slow.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => slow.once('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    const after = (await sql.query(`select status, logs from app_public.jobs where id = $1`, [jobUuid])).rows[0];
    expect(after.status).toBe('PENDING');
    expect(after.logs.join('\n')).toMatch(/interrupted at a checkpoint by a worker shutdown/);
    workers.start();
    await poll(async () => (await sql.query(`select status from app_public.jobs where id = $1`, [jobUuid])).rows[0]?.status === 'COMPLETED', 60_000, 'completed');
  }, 120_000);

  it('SIGKILLed at each step of provisioning (schema, storage, and after RUNNING in the health check): every retry finishes its site', async () => {
    workers.killAll();
    await sql.query(`update app_public.tenants set plan_id = 'pro' where slug = $1`, [tenant.slug]);
    const steps = [
      { step: 'creating roles and schema', status: 'PROVISIONING' },
      { step: 'creating storage prefix', status: 'PROVISIONING' },
      { step: 'health check', status: 'RUNNING' },
    ];
    // One slow worker per site, started one after the other so that each takes exactly its own site's job, which is
    // watched from then on and its worker killed at its step.
    const slow: ReturnType<typeof workers.start>[] = [];
    const sites: Array<{ site: string; job: string }> = [];
    const killed: Promise<void>[] = [];
    const killAtStep = async (job: string, i: number) => {
      let last: any;
      const at = await poll(async () => {
        last = (await sql.query(`select j.step, j.status as job, j.logs, s.status from app_public.jobs j join app_public.sites s on s.id = j.site_id where j.id = $1`, [job])).rows[0];
        return last?.step === steps[i]!.step ? last : null;
      }, 60_000, `job ${i} at "${steps[i]!.step}"`).catch((e) => {
        const dead = slow.filter((w) => w.exitCode !== null || w.signalCode !== null).map((w) => `pid ${w.pid} exited ${w.exitCode ?? w.signalCode}: ${(w as any).stderrTail}`);
        throw new Error(`${e.message}: ${JSON.stringify(last)}; workers gone: ${dead.join(' | ')}`);
      });
      expect(at.status).toBe(steps[i]!.status);
      const pid = Number(/started on .* \(pid (\d+)\)/.exec(at.logs.join('\n'))![1]);
      const holder = slow.find((w) => w.pid === pid);
      expect(holder, `the worker (pid ${pid}) holding job ${i}`).toBeDefined();
      holder!.kill('SIGKILL');
      await new Promise((r) => (holder!.exitCode !== null || holder!.signalCode !== null ? r(null) : holder!.once('exit', r)));
    };
    for (let i = 0; i < steps.length; i++) {
      slow.push(workers.start({ JOB_STEP_DELAY_MS: '2500' }));
      const created = await owner.gql.ok(`mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } job { id } } }`, {
        i: { tenantId: tenant.id, name: `step-${i}-${process.pid}`, displayName: `Step ${i}`, apps: ['notes'] },
      });
      const job = rowUuid(created.createSite.job.id);
      sites.push({ site: rowUuid(created.createSite.site.id), job });
      await poll(async () => (await sql.query(`select status from app_public.jobs where id = $1`, [job])).rows[0]?.status === 'RUNNING', 60_000, `job ${i} to start`);
      killed.push(killAtStep(job, i));
    }
    await Promise.all(killed);
    workers.start();
    for (const { site, job } of sites) {
      const done = await poll(async () => {
        const r = await sql.query(`select s.status, j.status as job, j.attempts from app_public.sites s join app_public.jobs j on j.site_id = s.id where j.id = $1`, [job]);
        return r.rows[0]?.job === 'COMPLETED' || r.rows[0]?.job === 'FAILED' ? r.rows[0] : null;
      }, 90_000, `site ${site} to finish`);
      expect(done).toMatchObject({ status: 'HEALTHY', job: 'COMPLETED', attempts: 2 });
      const hex = site.replace(/-/g, '');
      expect((await sql.query(`select count(*)::int as n from app_public.tenant_schemas where site_id = $1`, [site])).rows[0].n).toBe(1);
      expect((await siteSql.query(`select count(*)::int as n from information_schema.tables where table_schema = $1`, [`site_${hex}`])).rows[0].n).toBe(1);
    }
  }, 180_000);
});
