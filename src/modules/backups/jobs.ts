import { maintenanceQueue, tenantQueue } from '../../jobs/queue.ts';
import type { WorkerServices } from '../../services.ts';
import { requestServices } from '../../services.ts';
import type { Context } from '../../graphql/context.ts';
import { PermanentJobError, RefusedJob, type JobRun } from '../jobs/run.ts';
import type { Tx } from '../../db/database.ts';
import { APPS, ident } from '../sites/apps.ts';
import { asOwner, setSiteStatus } from '../sites/provisioning.ts';
import { loadSite, siteFilesPrefix } from '../sites/usage.ts';
import { ensureSiteHome, homePool, setSiteWriteAccess, siteAccess, siteHome } from '../sites/hosting.ts';
import type { Storage } from '../../storage/s3.ts';
import { writeArchive, restoreArchive, restoreFiles, swapSchemas } from './archive.ts';
import { BACKUP_ATTEMPTS, RESTORE_ATTEMPTS, backupPrefix, backupSite } from './service.ts';


/** The storage holding a backup: the configuration it recorded (the deployment's own for backups older than the fleet). */
async function backupStorage(services: WorkerServices, tenantId: string, backupId: string): Promise<Storage> {
  const { rows } = await services.ownerPool.query<{ storage_config_id: string | null }>(
    `select storage_config_id from app_public.backups where tenant_id = $1 and id = $2`,
    [tenantId, backupId],
  );
  const configId = rows[0]?.storage_config_id;
  return configId ? services.fleet.storageById(configId) : services.storage;
}

/** Drops what a failed restore left next to the live schema, on the site's own server. */
async function dropIncoming(services: WorkerServices, tenantId: string, siteId: string) {
  const site = (await loadSite(services, tenantId, siteId))?.row;
  if (!site?.databaseServerId) return;
  const home = await siteHome(services, site);
  await (await homePool(services, home)).query(`drop schema if exists ${ident(`restore_${siteId.replace(/-/g, '')}`)} cascade`);
}

/**
 * Wall-clock seconds per phase of a backup or restore, from the steps it reports: the job logs them as
 * `timings: {"phase": seconds, …}` (operators see where the time went; bench/backup-throughput.ts reads them).
 */
function phaseClock(phaseOf: (step: string) => string) {
  const seconds: Record<string, number> = {};
  let current: string | undefined;
  let since = performance.now();
  return {
    step(step: string) {
      const phase = phaseOf(step);
      if (phase === current) return;
      const t = performance.now();
      if (current) seconds[current] = (seconds[current] ?? 0) + (t - since) / 1000;
      current = phase;
      since = t;
    },
    line() {
      this.step('\0end');
      return `timings: ${JSON.stringify(Object.fromEntries(Object.entries(seconds).map(([k, v]) => [k, Math.round(v * 100) / 100])))}`;
    },
  };
}

const backupPhase = (step: string) =>
  step === 'verifying' ? 'verify' : step === 'writing manifest' || step === 'done' ? 'manifest' : step === '\0end' ? 'end' : 'dump + upload';
const restorePhase = (step: string) =>
  step === 'verifying'
    ? 'verify'
    : step === 'restoring' || step.startsWith('table ')
      ? 'load'
      : step === 'constraints and indexes' || step === 'done'
        ? 'constraints + indexes + commit'
        : step === '\0end'
          ? 'end'
          : step;

type Site = NonNullable<Awaited<ReturnType<Tx['site']['findUnique']>>>;

/**
 * A FULL archive of the site's schema and files under the backup's prefix, the backup row RUNNING → SUCCESS (with
 * its manifest): the body of `site-backup`, and the backup an update takes first (src/modules/releases/site-update.ts).
 * Progress is reported on 0–100 of this part; the caller places it in its own job.
 */
export async function archiveSite(run: JobRun<unknown>, site: Site, backupId: string, onProgress: (pct: number, step: string, log?: string) => Promise<void>) {
  const services = run.services;
  const { tenantId } = run;
  const siteId = site.id;
  if (!site.schemaName || !site.databaseServerId) throw new PermanentJobError('the site has no schema to back up');
  const home = await siteHome(services, site);
  const prefix = backupPrefix(tenantId, backupId);
  // The archive goes to the storage of the site's cluster; the backup records which one and its bucket.
  const { storage, configId } = await services.fleet.storage(site.clusterId);
  await services.ownerPool.query(`update app_public.backups set storage_config_id = $3, bucket = $4 where tenant_id = $1 and id = $2`, [
    tenantId,
    backupId,
    configId,
    storage.bucket,
  ]);
  await run.withDb((tx) => tx.backup.updateMany({ where: { tenantId, id: backupId }, data: { status: 'RUNNING', error: null } }));
  await onProgress(5, 'preparing', `archive under ${prefix} in bucket ${storage.bucket}`);
  // Whatever an interrupted attempt left behind goes first: parts, manifest, unfinished multipart uploads.
  await storage.abortUploads(prefix);
  await storage.deletePrefix(prefix);
  const clock = phaseClock(backupPhase);
  const manifest = await writeArchive({
    pool: await homePool(services, home),
    storage,
    schema: site.schemaName,
    prefix,
    meta: { siteId, siteName: site.name, apps: await siteAppVersions(run, site) },
    files: { prefix: siteFilesPrefix(tenantId, siteId) },
    onProgress: (pct, step) => {
      clock.step(step);
      return onProgress(5 + pct * 0.9, step);
    },
  });
  await run.log(clock.line());
  const checksum = manifest.checksum;
  await run.withDb(async (tx) => {
    await tx.backup.updateMany({
      where: { tenantId, id: backupId },
      data: { status: 'SUCCESS', sizeBytes: BigInt(manifest.totalBytes), checksum, manifest: manifest as object, completedAt: new Date() },
    });
  });
  await services.ownerPool.query(`update app_public.tenant_schemas set last_backup_at = now() where tenant_id = $1 and schema_name = $2`, [
    tenantId,
    site.schemaName,
  ]);
  return manifest;
}

/** The apps a backup's manifest names: a released site's modules at their versions, else the built-in SQL apps. */
async function siteAppVersions(run: JobRun<unknown>, site: Site) {
  const modules = await run.withDb((tx) => tx.siteApp.findMany({ where: { tenantId: site.tenantId, siteId: site.id }, select: { name: true, version: true }, orderBy: { name: 'asc' } }));
  if (modules.length) return modules.map((m) => ({ name: m.name, version: m.version ?? 'not installed' }));
  return site.apps.map((name) => ({ name, version: APPS[name]?.version ?? 'unknown' }));
}

/**
 * `site-backup`: a FULL archive of the site's schema and files under the backup's prefix. A retry (after a crash
 * or a transient S3 failure) starts from a clean prefix; the backup is SUCCESS only after every part is verified.
 */
export const siteBackupQueue = tenantQueue({
  name: 'site-backup',
  retryLimit: BACKUP_ATTEMPTS - 1,
  retryDelay: 2,
  retryBackoff: true,
  expireInSeconds: 3600,
  heartbeatSeconds: 10,
  async run(run) {
    const { siteId, backupId } = run.args;
    const site = await run.withDb((tx) => tx.site.findUnique({ where: { tenantId_id: { tenantId: run.tenantId, id: siteId } } }));
    if (!site) throw new PermanentJobError('the site has no schema to back up');
    const manifest = await archiveSite(run, site, backupId, (pct, step) => run.progress(pct, step));
    return { backupId, tables: manifest.tables.length, files: manifest.files.length, bytes: manifest.totalBytes };
  },
  async onFailed(run, error) {
    const prefix = backupPrefix(run.tenantId, run.args.backupId);
    const storage = await backupStorage(run.services, run.tenantId, run.args.backupId).catch(() => run.services.storage);
    await storage.abortUploads(prefix).catch(() => undefined);
    await storage.deletePrefix(prefix).catch(() => undefined);
    await run.withDb((tx) => tx.backup.updateMany({ where: { tenantId: run.tenantId, id: run.args.backupId }, data: { status: 'FAILED', error, completedAt: new Date() } }));
  },
  async onCancelled(run) {
    const storage = await backupStorage(run.services, run.tenantId, run.args.backupId).catch(() => run.services.storage);
    await storage.deletePrefix(backupPrefix(run.tenantId, run.args.backupId)).catch(() => undefined);
    await run.withDb((tx) => tx.backup.updateMany({ where: { tenantId: run.tenantId, id: run.args.backupId }, data: { status: 'FAILED', error: 'cancelled', completedAt: new Date() } }));
  },
});

type Backup = NonNullable<Awaited<ReturnType<Tx['backup']['findUnique']>>>;

/**
 * Puts a SUCCESS backup back into its site: every checksum verified before anything is touched, the archive loaded
 * as the site's owner role into a fresh schema next to the live one in one transaction, swapped in, then the files
 * made equal to the backup's. The body of `site-restore`, and the way back of a failed update. Any failure before the
 * swap leaves the live schema as it was.
 */
export async function restoreSite(run: JobRun<unknown>, site: Site & Parameters<typeof siteAccess>[0], backup: Backup, onProgress: (pct: number, step: string) => Promise<void>) {
  const services = run.services;
  const { tenantId } = run;
  const siteId = site.id;
  if (!site.databaseServerId) throw new PermanentJobError('the site is not placed on a database server');
  const home = await siteHome(services, site);
  const live = home.schema;
  const role = home.ownerRole;
  const incoming = `restore_${siteId.replace(/-/g, '')}`;
  const storage = await backupStorage(services, tenantId, backup.id);
  const { storage: siteStorage } = await services.fleet.storage(site.clusterId);
  if (siteStorage !== storage) throw new PermanentJobError('the backup is in another storage than the site\'s cluster: restore it in its own cluster');
  await onProgress(0, 'verifying archive');
  // The site's roles and database exist again (a purged or moved site's are recreated), then the archive is
  // loaded as its owner role into a fresh schema next to the live one.
  await ensureSiteHome(services, home, siteAccess(site));
  const pool = await homePool(services, home);
  await pool.query(`drop schema if exists ${ident(incoming)} cascade`);
  const restored = await restoreArchive({
    pool,
    storage,
    prefix: backup.objectKey,
    targetSchema: incoming,
    owner: role,
    onProgress: (pct, name) => onProgress(pct * 0.85, name),
  });
  await onProgress(88, 'swapping in the restored schema');
  await asOwner(pool, async (c) => {
    await swapSchemas({ client: c, live, incoming, dropOld: true });
    await c.query(`alter schema ${ident(live)} owner to ${ident(role)}`);
  });
  // A site over its storage limit keeps reading (and only that) from the restored tables too.
  if (site.overStorageLimit) await setSiteWriteAccess(services, home, true);
  await asOwner(services.ownerPool, async (c) => {
    await c.query(
      `insert into app_public.tenant_schemas (tenant_id, schema_name, site_id, owner_role) values ($1, $2, $3, $4) on conflict (tenant_id, schema_name) do nothing`,
      [tenantId, live, siteId, role],
    );
  });
  await onProgress(95, 'restoring files');
  // exact: files added after the backup go too, so the site's files equal the backup's. The manifest is the one
  // restoreArchive verified (every part re-hashed): not read and verified a third time; each file is re-hashed
  // again as it is copied back.
  await restoreFiles({ storage, prefix: backup.objectKey, toPrefix: siteFilesPrefix(tenantId, siteId), manifest: restored.manifest, exact: true });
  return { schema: live };
}

/**
 * `site-restore`: verifies every checksum of the archive before touching anything, loads it into a fresh schema in
 * one transaction, then swaps it in (and the files). On any failure the site keeps exactly its previous data.
 */
export const siteRestoreQueue = tenantQueue({
  name: 'site-restore',
  retryLimit: RESTORE_ATTEMPTS - 1,
  retryDelay: 2,
  retryBackoff: true,
  expireInSeconds: 3600,
  heartbeatSeconds: 10,
  async run(run) {
    const services = run.services;
    const { tenantId } = run;
    const { siteId, backupId } = run.args;
    const backup = await run.withDb((tx) => tx.backup.findUnique({ where: { tenantId_id: { tenantId, id: backupId } } }));
    if (!backup || backup.status !== 'SUCCESS' || backup.siteId !== siteId) throw new PermanentJobError('the backup is not a SUCCESS backup of this site');
    const site = await run.withDb((tx) => tx.site.findUnique({ where: { tenantId_id: { tenantId, id: siteId } }, include: { plan: true } }));
    if (!site?.databaseServerId) throw new PermanentJobError('the site is not placed on a database server');
    const clock = phaseClock(restorePhase);
    const step = (pct: number, name: string) => {
      clock.step(name);
      return run.progress(pct, name);
    };
    const { schema: live } = await restoreSite(run, site, backup, (pct, name) => step(5 + pct * 0.83, name));
    await setSiteStatus(run, siteId, 'RUNNING', { schemaName: live, deletedAt: null, retentionUntil: null });
    await step(95, 'health check');
    await setSiteStatus(run, siteId, 'HEALTHY');
    await run.log(clock.line());
    return { backupId, schema: live };
  },
  async onFailed(run) {
    await dropIncoming(run.services, run.tenantId, run.args.siteId).catch(() => undefined);
    await setSiteStatus(run, run.args.siteId, run.args.previousStatus).catch(() => undefined);
  },
  async onCancelled(run) {
    await setSiteStatus(run, run.args.siteId, run.args.previousStatus).catch(() => undefined);
  },
});

/**
 * `backup-delete-objects` (maintenance, enqueued by the backups_delete_archive trigger when a backup row is deleted):
 * removes that backup's archive. The prefix is built from the ids, never taken from the payload, and nothing is
 * deleted while a backup row with that id still exists.
 */
export const backupDeleteObjectsQueue = maintenanceQueue({
  name: 'backup-delete-objects',
  retryLimit: 5,
  retryDelay: 5,
  retryBackoff: true,
  expireInSeconds: 600,
  async run(services, data) {
    const live = await services.ownerPool.query(`select 1 from app_public.backups where tenant_id = $1 and id = $2`, [data.tenantId, data.backupId]);
    if (live.rowCount) throw new RefusedJob('the backup still exists: its archive is kept');
    const prefix = backupPrefix(data.tenantId, data.backupId);
    const storage = data.storageConfigId ? await services.fleet.storageById(data.storageConfigId) : services.storage;
    await storage.abortUploads(prefix);
    return { deleted: await storage.deletePrefix(prefix) };
  },
});

/**
 * `backup-expire` (maintenance, hourly): backups past their retention go; their archives follow (trigger). A suspended
 * tenant's are kept while it is suspended: its sites are suspended, so no new backup replaces them.
 */
export const backupExpireQueue = maintenanceQueue({
  name: 'backup-expire',
  retryLimit: 3,
  retryDelay: 60,
  retryBackoff: true,
  expireInSeconds: 900,
  cron: '17 * * * *',
  async run(services) {
    const expired = await services.ownerPool.query(
      `delete from app_public.backups where (tenant_id, id) in (
         select b.tenant_id, b.id from app_public.backups b
          where b.expires_at <= now()
            and not exists (select 1 from app_public.tenants t where t.id = b.tenant_id and t.status = 'SUSPENDED')
          order by b.expires_at limit 500)`,
    );
    return { expired: expired.rowCount };
  },
});

/**
 * `site-backup-schedule` (maintenance, BACKUP_CRON): one scheduled FULL backup of every healthy site, through the
 * same service path as `backupSite` — in the RLS context of the site's creator when still an admin, else the
 * tenant's oldest owner, with the scheduler named in the audit entry. One backup per site per 20 hours.
 */
export const siteBackupScheduleQueue = maintenanceQueue({
  name: 'site-backup-schedule',
  cron: (config) => config.backups.cron,
  retryLimit: 2,
  retryDelay: 60,
  retryBackoff: true,
  expireInSeconds: 900,
  async run(services, _data, job) {
    const due = await services.ownerPool.query<{ tenant_id: string; site_id: string; actor: string | null }>(
      `select s.tenant_id, s.id as site_id,
              coalesce(
                (select m.user_id from app_public.memberships m where m.tenant_id = s.tenant_id and m.user_id = s.created_by and m.role >= 'ADMIN'),
                (select m.user_id from app_public.memberships m where m.tenant_id = s.tenant_id and m.role = 'OWNER' order by m.created_at limit 1)
              ) as actor
         from app_public.sites s
        where s.status = 'HEALTHY'
          and not exists (select 1 from app_public.backups b where b.tenant_id = s.tenant_id and b.site_id = s.id and b.scheduled and b.created_at > now() - interval '20 hours')`,
    );
    let scheduled = 0;
    for (const row of due.rows) {
      if (!row.actor) continue;
      try {
        await scheduledBackup(services, row.tenant_id, row.site_id, row.actor, `schedule-${job.id}`);
        scheduled++;
      } catch (err) {
        job.log.warn({ err, tenantId: row.tenant_id, siteId: row.site_id }, 'scheduled backup not started');
      }
    }
    return { scheduled };
  },
});

/** backupSite as a request would run it: one transaction in the acting member's context, narrowed to the tenant. */
async function scheduledBackup(services: WorkerServices, tenantId: string, siteId: string, actor: string, requestId: string) {
  const afterRollback: Array<() => Promise<void>> = [];
  try {
    await services.db.withContext({ userId: actor, tenant: tenantId, requestId }, (tx) => {
      const ctx: Context = { requestId, userId: actor, tenant: tenantId, apiKeyId: null, ip: null, userAgent: 'tenantplane-scheduler', db: tx, services: requestServices(services), afterRollback };
      return backupSite(ctx, tenantId, siteId, { scheduled: true });
    });
  } catch (e) {
    for (const hook of afterRollback) await hook();
    throw e;
  }
}
