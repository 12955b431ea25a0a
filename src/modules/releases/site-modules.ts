import type pg from 'pg';
import { CronExpressionParser } from 'cron-parser';
import { maintenanceQueue, tenantQueue } from '../../jobs/queue.ts';
import type { WorkerServices } from '../../services.ts';
import type { SiteAppStatus } from '../../db/generated/prisma/enums.ts';
import { PermanentJobError, type JobRun } from '../jobs/run.ts';
import { archiveSite, restoreSite } from '../backups/jobs.ts';
import { ident } from '../sites/apps.ts';
import { homePool, siteHome, type SiteHome } from '../sites/hosting.ts';
import { setSiteStatus } from '../sites/provisioning.ts';
import type { AppBundle } from './app-format.ts';
import { pullArtifact, releaseApps } from './artifacts.ts';
import { AppMigrationFailed, migrateApp, migrateApps, uninstallApp } from './site-apps.ts';

/**
 * A released site's apps as modules (issue 11 §4, seed 004): installed from the site's bench (the candidate's
 * artifact, as this app server holds it), each app's migrations run inside the site as its owner role in one
 * transaction with the app's health check (site-apps.ts). `site-app-change` installs, enables, disables or removes
 * one app; `site-update` moves a whole site to a newer bench: a backup first, every app's new migrations and health
 * checks in ONE transaction, and on any failure the backup restored and the reason recorded — the site ends exactly
 * as it was, on its old bench.
 */

export interface BenchRelease {
  tenantId: string;
  benchId: string;
  apps: AppBundle[];
  label: string;
}

/** The release a bench runs: its candidate's artifact pulled (or found in this server's cache) and verified. */
export async function benchRelease(services: WorkerServices, benchTenantId: string, benchId: string): Promise<BenchRelease> {
  const { rows } = await services.ownerPool.query<{ cluster_id: string; image_name: string; image_tag: string; manifest_digest: string; layer_digest: string; status: string }>(
    `select c.cluster_id::text, c.image_name, c.image_tag, c.manifest_digest, c.layer_digest, b.status::text
       from app_public.benches b join app_public.deploy_candidates c on c.tenant_id = b.tenant_id and c.id = b.candidate_id
      where b.tenant_id = $1 and b.id = $2`,
    [benchTenantId, benchId],
  );
  const row = rows[0];
  if (!row) throw new PermanentJobError('the bench no longer exists');
  const bytes = await pullArtifact(services, { clusterId: row.cluster_id, imageName: row.image_name, manifestDigest: row.manifest_digest, layerDigest: row.layer_digest });
  return { tenantId: benchTenantId, benchId, apps: await releaseApps(bytes), label: `${row.image_name}:${row.image_tag}` };
}

/** A connection to the site's home as its owner role, search_path its schema, outside any transaction. */
export async function withSiteOwner<T>(services: WorkerServices, home: SiteHome, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await (await homePool(services, home)).connect();
  try {
    await client.query(`set role ${ident(home.ownerRole)}`);
    await client.query(`set search_path = ${ident(home.schema)}`);
    return await fn(client);
  } finally {
    await client.query('reset role; reset search_path').then(
      () => client.release(),
      (e) => client.release(e as Error),
    );
  }
}

/** Records what is installed (the worker's finding: version and manifest), and the state it is now in. */
async function recordInstalled(services: WorkerServices, tenantId: string, siteId: string, app: AppBundle, status: SiteAppStatus) {
  await services.ownerPool.query(
    `insert into app_public.site_apps (tenant_id, site_id, name, status, version, manifest, error, updated_at)
     values ($1, $2, $3, 'INSTALLING', $4, $5::jsonb, null, now())
     on conflict (tenant_id, site_id, name) do update set version = excluded.version, manifest = excluded.manifest, error = null, updated_at = now()`,
    [tenantId, siteId, app.manifest.name, app.manifest.version, JSON.stringify(app.manifest)],
  );
  await services.ownerPool.query(`update app_public.site_apps set status = $4::app_public.site_app_status, updated_at = now() where tenant_id = $1 and site_id = $2 and name = $3`, [
    tenantId,
    siteId,
    app.manifest.name,
    status,
  ]);
}

function pick(release: BenchRelease, names: string[]) {
  return names.map((name) => {
    const app = release.apps.find((a) => a.manifest.name === name);
    if (!app) throw new PermanentJobError(`the release ${release.label} has no app ${name}`);
    return app;
  });
}

/** Provisioning a site on a bench: the chosen apps installed in one transaction, each then ENABLED at its version. */
export async function installReleaseApps(run: JobRun<unknown>, site: { id: string; benchTenantId: string | null; benchId: string | null; apps: string[] }, home: SiteHome) {
  if (!site.benchId || !site.benchTenantId) throw new PermanentJobError('the site has no bench');
  const release = await benchRelease(run.services, site.benchTenantId, site.benchId);
  const apps = pick(release, site.apps);
  const lines: string[] = [];
  await withSiteOwner(run.services, home, (c) => migrateApps(c, apps, (line) => lines.push(line)));
  for (const line of lines) await run.log(line);
  for (const app of apps) await recordInstalled(run.services, run.tenantId, site.id, app, 'ENABLED');
  return release;
}


const appRow = (run: JobRun<unknown>, siteId: string, name: string) =>
  run.withDb((tx) => tx.siteApp.findUnique({ where: { tenantId_siteId_name: { tenantId: run.tenantId, siteId, name } } }));

async function setAppStatus(run: JobRun<unknown>, siteId: string, name: string, status: SiteAppStatus, error: string | null = null) {
  await run.withDb((tx) => tx.siteApp.updateMany({ where: { tenantId: run.tenantId, siteId, name }, data: { status, error, updatedAt: new Date() } }));
}


export const siteAppChangeQueue = tenantQueue({
  name: 'site-app-change',
  retryLimit: 2,
  retryDelay: 2,
  retryBackoff: true,
  expireInSeconds: 1800,
  heartbeatSeconds: 10,
  async run(run) {
    const { siteId, app: name, change } = run.args;
    const services = run.services;
    const site = await run.withDb((tx) => tx.site.findUnique({ where: { tenantId_id: { tenantId: run.tenantId, id: siteId } } }));
    if (!site?.benchId || !site.benchTenantId || !site.databaseServerId) throw new PermanentJobError('the site runs no release');
    const row = await appRow(run, siteId, name);
    if (!row) throw new PermanentJobError(`the site has no app ${name}`);
    const home = await siteHome(services, site);
    await run.progress(10, `${change} ${name}`);
    if (change === 'install') {
      if (row.status === 'ENABLED') return { app: name, version: row.version, resumed: 'already installed' };
      const release = await benchRelease(services, site.benchTenantId, site.benchId);
      const [bundle] = pick(release, [name]);
      await run.progress(30, `installing ${name} ${bundle!.manifest.version}`, `from ${release.label}`);
      try {
        const outcome = await withSiteOwner(services, home, (c) => migrateApp(c, bundle!));
        for (const line of outcome.log) await run.log(line);
      } catch (e) {
        if (e instanceof AppMigrationFailed) {
          for (const line of e.log) await run.log(line);
          throw new PermanentJobError(e.message);
        }
        throw e;
      }
      await recordInstalled(services, run.tenantId, siteId, bundle!, 'ENABLED');
      return { app: name, version: bundle!.manifest.version };
    }
    if (change === 'enable' || change === 'disable') {
      // A disabled app keeps its tables and data; its module jobs do not run (an update still migrates it).
      await setAppStatus(run, siteId, name, change === 'enable' ? 'ENABLED' : 'DISABLED');
      return { app: name, status: change === 'enable' ? 'ENABLED' : 'DISABLED' };
    }
    // remove: the app's uninstall script (at the version installed), in one transaction; then the module row goes.
    const release = await benchRelease(services, site.benchTenantId, site.benchId);
    const [bundle] = pick(release, [name]);
    try {
      await withSiteOwner(services, home, (c) => uninstallApp(c, bundle!, (line) => void run.log(line).catch(() => undefined)));
    } catch (e) {
      if (e instanceof AppMigrationFailed) throw new PermanentJobError(e.message);
      throw e;
    }
    await services.ownerPool.query(`delete from app_public.site_apps where tenant_id = $1 and site_id = $2 and name = $3`, [run.tenantId, siteId, name]);
    await services.ownerPool.query(`update app_public.sites set apps = array_remove(apps, $3), updated_at = now() where tenant_id = $1 and id = $2`, [run.tenantId, siteId, name]);
    return { app: name, removed: true };
  },
  async onFailed(run, error) {
    // Back where it was before the change (a failed removal leaves a disabled app disabled).
    await setAppStatus(run, run.args.siteId, run.args.app, run.args.from, error).catch(() => undefined);
  },
  async onCancelled(run) {
    await setAppStatus(run, run.args.siteId, run.args.app, run.args.from, 'cancelled').catch(() => undefined);
  },
});

/**
 * `site-update`: a HEALTHY site (UPDATING for the job's length) moves to another bench. The backup first (kept like
 * any backup); then every installed app's new migrations and health checks in one transaction; then the site's bench
 * and its apps' versions switch. On a failed migration or health check the backup is restored, so whatever the
 * transaction could not undo is undone too, and the job fails with the reason: the site is HEALTHY on its old bench.
 */
export const siteUpdateQueue = tenantQueue({
  name: 'site-update',
  retryLimit: 1,
  retryDelay: 2,
  retryBackoff: false,
  expireInSeconds: 3600,
  heartbeatSeconds: 10,
  async run(run) {
    const { siteId, benchTenantId, benchId, backupId } = run.args;
    const services = run.services;
    const site = await run.withDb((tx) => tx.site.findUnique({ where: { tenantId_id: { tenantId: run.tenantId, id: siteId } }, include: { plan: true } }));
    if (!site?.databaseServerId || !site.benchId) throw new PermanentJobError('the site runs no release');
    if (site.status !== 'UPDATING') throw new PermanentJobError(`the site is ${site.status}, not UPDATING`);
    const modules = await run.withDb((tx) => tx.siteApp.findMany({ where: { tenantId: run.tenantId, siteId, status: { in: ['ENABLED', 'DISABLED', 'UPDATING'] } }, orderBy: { createdAt: 'asc' } }));
    const target = await benchRelease(services, benchTenantId, benchId);
    const apps = pick(target, modules.map((m) => m.name));
    // The backup, unless an earlier attempt of this update already took it (a retry must not back up a half-updated site).
    const backup = await run.withDb((tx) => tx.backup.findUnique({ where: { tenantId_id: { tenantId: run.tenantId, id: backupId } } }));
    if (!backup) throw new PermanentJobError('the update\'s backup row is gone');
    if (backup.status !== 'SUCCESS') {
      await run.progress(2, 'backing up', `backup ${backupId} before moving to ${target.label}`);
      await archiveSite(run, site, backupId, (pct, step, log) => run.progress(2 + pct * 0.4, `backup: ${step}`, log));
    }
    const home = await siteHome(services, site);
    const before = new Map(modules.map((m) => [m.name, m.status === 'UPDATING' ? 'ENABLED' : m.status] as const));
    for (const m of modules) if (m.status !== 'UPDATING') await setAppStatus(run, siteId, m.name, 'UPDATING');
    await run.progress(45, 'migrating', apps.map((a) => `${a.manifest.name} → ${a.manifest.version}`).join(', '));
    try {
      const lines: string[] = [];
      await withSiteOwner(services, home, (c) => migrateApps(c, apps, (line) => lines.push(line)));
      for (const line of lines) await run.log(line);
    } catch (e) {
      if (!(e instanceof AppMigrationFailed)) throw e;
      for (const line of e.log) await run.log(line);
      await run.progress(60, 'restoring the backup', `the update failed (${e.message}): restoring backup ${backupId}`);
      const saved = await run.withDb((tx) => tx.backup.findUniqueOrThrow({ where: { tenantId_id: { tenantId: run.tenantId, id: backupId } } }));
      await restoreSite(run, site, saved, (pct, step) => run.progress(60 + pct * 0.35, `restore: ${step}`));
      for (const m of modules) await setAppStatus(run, siteId, m.name, before.get(m.name)!, e.message);
      await setSiteStatus(run, siteId, 'HEALTHY');
      await run.log(`restored from backup ${backupId}: the site is as it was, on its old bench`);
      throw new PermanentJobError(`${e.message}; the site was restored from backup ${backupId}`);
    }
    for (const app of apps) await recordInstalled(services, run.tenantId, siteId, app, before.get(app.manifest.name)!);
    await services.ownerPool.query(`update app_public.sites set bench_tenant_id = $3, bench_id = $4, updated_at = now() where tenant_id = $1 and id = $2`, [run.tenantId, siteId, benchTenantId, benchId]);
    await setSiteStatus(run, siteId, 'HEALTHY');
    await run.progress(100, 'updated', `on ${target.label}: ${apps.map((a) => `${a.manifest.name} ${a.manifest.version}`).join(', ')}`);
    return { bench: benchId, apps: apps.map((a) => ({ name: a.manifest.name, version: a.manifest.version })), backupId };
  },
  async onFailed(run, error) {
    // A failure outside the migrations (the backup, the registry): nothing changed in the site; it is HEALTHY again.
    const { siteId } = run.args;
    await run.withDb((tx) => tx.siteApp.updateMany({ where: { tenantId: run.tenantId, siteId, status: 'UPDATING' }, data: { status: 'ENABLED', error, updatedAt: new Date() } })).catch(() => undefined);
    await setSiteStatus(run, siteId, 'HEALTHY').catch(() => undefined);
  },
  async onCancelled(run) {
    const { siteId } = run.args;
    await run.withDb((tx) => tx.siteApp.updateMany({ where: { tenantId: run.tenantId, siteId, status: 'UPDATING' }, data: { status: 'ENABLED', updatedAt: new Date() } })).catch(() => undefined);
    await setSiteStatus(run, siteId, 'HEALTHY').catch(() => undefined);
  },
});

// ---------------------------------------------------------------------------------------------------------------
// Module jobs (seed 004 Job): an enabled app's SQL tasks, run inside the site on their cron schedule.

/**
 * `site-module-job`: one module job — the app's job SQL (from the site's release, as this app server holds it) in
 * one transaction as the site's owner role, under the plan's statement timeout. The result (command, rows, time) and
 * the error (message, SQLSTATE, detail) are JSON on the job. A job whose app was disabled meanwhile is skipped.
 */
export const siteModuleJobQueue = tenantQueue({
  name: 'site-module-job',
  retryLimit: 0,
  retryDelay: 5,
  retryBackoff: false,
  expireInSeconds: 900,
  heartbeatSeconds: 10,
  async run(run) {
    const { siteId, app: name, job: jobName } = run.args;
    const services = run.services;
    const site = await run.withDb((tx) => tx.site.findUnique({ where: { tenantId_id: { tenantId: run.tenantId, id: siteId } }, include: { plan: true } }));
    if (!site?.benchId || !site.benchTenantId || !site.databaseServerId) throw new PermanentJobError('the site runs no release');
    const row = await appRow(run, siteId, name);
    if (row?.status !== 'ENABLED' || site.status !== 'HEALTHY') return { skipped: `the app is ${row?.status ?? 'gone'} and the site ${site.status}` };
    const release = await benchRelease(services, site.benchTenantId, site.benchId);
    const [bundle] = pick(release, [name]);
    const definition = bundle!.manifest.jobs.find((j) => j.name === jobName);
    if (!definition) throw new PermanentJobError(`${name} ${bundle!.manifest.version} has no job ${jobName}`);
    const home = await siteHome(services, site);
    await run.progress(10, `${name}/${jobName}`, `${definition.sql} (priority ${definition.priority}, schedule ${definition.schedule})`);
    const started = performance.now();
    try {
      const r = await withSiteOwner(services, home, async (c) => {
        await c.query('begin');
        try {
          await c.query(`set local statement_timeout = ${Number(site.plan.statementTimeoutMs)}`);
          const result = await c.query(bundle!.files[definition.sql]!);
          await c.query('commit');
          return Array.isArray(result) ? result[result.length - 1]! : result;
        } catch (e) {
          await c.query('rollback').catch(() => undefined);
          throw e;
        }
      });
      const result = { command: r.command, rowCount: r.rowCount, durationMs: Math.round(performance.now() - started) };
      await run.log(`${name}/${jobName}: ${r.command} ${r.rowCount ?? 0}`);
      return result;
    } catch (e) {
      const err = e as { message?: string; code?: string; detail?: string };
      if (!err.code) throw e;
      const detail = { message: err.message ?? String(e), sqlstate: err.code, ...(err.detail ? { detail: err.detail } : {}) };
      await services.ownerPool.query(`update app_public.jobs set error_detail = $3::jsonb where tenant_id = $1 and id = $2`, [run.tenantId, run.job.jobId, JSON.stringify(detail)]);
      throw new PermanentJobError(`${name}/${jobName} failed: ${detail.message} (SQLSTATE ${detail.sqlstate})`);
    }
  },
});

/**
 * `site-module-jobs` (every minute): asks for every module job that fell due since it was last asked for (or since
 * its app was installed), acting for the site's admin like the backup schedule, higher priorities first. A job due
 * several times while the scheduler was down runs once.
 */
export const siteModuleJobsScheduleQueue = maintenanceQueue({
  name: 'site-module-jobs',
  cron: '* * * * *',
  retryLimit: 1,
  retryDelay: 10,
  retryBackoff: false,
  expireInSeconds: 300,
  async run(services, _data, job) {
    const now = new Date();
    const { rows } = await services.ownerPool.query<{ tenant_id: string; site_id: string; name: string; jobs: Array<{ name: string; schedule: string; priority: number }>; since: Date; runs: Record<string, string> | null; actor: string | null }>(
      `select a.tenant_id, a.site_id, a.name, a.manifest -> 'jobs' as jobs, a.created_at as since,
              (select jsonb_object_agg(r.job, r.last_scheduled_at) from app_private.site_module_job_runs r
                where r.tenant_id = a.tenant_id and r.site_id = a.site_id and r.app = a.name) as runs,
              coalesce(
                (select m.user_id from app_public.memberships m where m.tenant_id = s.tenant_id and m.user_id = s.created_by and m.role >= 'ADMIN'),
                (select m.user_id from app_public.memberships m where m.tenant_id = s.tenant_id and m.role = 'OWNER' order by m.created_at limit 1)
              ) as actor
         from app_public.site_apps a join app_public.sites s on s.tenant_id = a.tenant_id and s.id = a.site_id
        where a.status = 'ENABLED' and s.status = 'HEALTHY' and jsonb_array_length(coalesce(a.manifest -> 'jobs', '[]')) > 0`,
    );
    const due: Array<{ tenantId: string; siteId: string; app: string; job: string; priority: number; at: Date; actor: string }> = [];
    for (const row of rows) {
      if (!row.actor) continue;
      for (const j of row.jobs) {
        const at = CronExpressionParser.parse(j.schedule, { currentDate: now, tz: 'UTC' }).prev().toDate();
        const last = row.runs?.[j.name] ? new Date(row.runs[j.name]!) : row.since;
        if (at > last) due.push({ tenantId: row.tenant_id, siteId: row.site_id, app: row.name, job: j.name, priority: j.priority ?? 0, at, actor: row.actor });
      }
    }
    due.sort((a, b) => b.priority - a.priority);
    let asked = 0;
    for (const d of due) {
      try {
        await services.db.withContext({ userId: d.actor, tenant: d.tenantId, requestId: `module-jobs-${job.id}` }, (tx) =>
          tx.$queryRaw`select app.enqueue_module_job(${d.tenantId}::uuid, ${d.siteId}::uuid, ${d.app}, ${d.job}, ${d.at}::timestamptz)`,
        );
        await services.ownerPool.query(
          `insert into app_private.site_module_job_runs (tenant_id, site_id, app, job, last_scheduled_at) values ($1, $2, $3, $4, $5)
           on conflict (tenant_id, site_id, app, job) do update set last_scheduled_at = excluded.last_scheduled_at`,
          [d.tenantId, d.siteId, d.app, d.job, d.at],
        );
        asked++;
      } catch (err) {
        job.log.warn({ err, tenantId: d.tenantId, siteId: d.siteId, module: `${d.app}/${d.job}` }, 'module job not asked for');
      }
    }
    return { asked };
  },
});
