import { dropDueOldCopies } from '../sites/move.ts';
import type { Logger } from 'pino';
import { maintenanceQueue } from '../../jobs/queue.ts';
import type { WorkerServices } from '../../services.ts';
import { ident } from '../sites/apps.ts';
import { dropSiteHome, homePool, siteHome } from '../sites/hosting.ts';

/** Everything of a tenant in the bucket lives under this prefix (files, uploads, site files, backups, exports). */
export const tenantPrefix = (tenantId: string) => `tenants/${tenantId}/`;

/** The steps of a purge, in order; a test may stop a purge after any of them (a crash) and run it again. */
export type PurgeStep = 'schemas' | 'objects' | 'rows';

export interface PurgeOptions {
  /** Called after each step; throwing from it stops the purge there (tests simulate a killed worker). */
  afterStep?: (step: PurgeStep) => void | Promise<void>;
}

/**
 * Purges one DELETED tenant whose retention has ended, in one owner transaction that holds the tenant row
 * (FOR UPDATE: a restoreTenant racing the purge either wins before it starts or finds the tenant gone): the schemas
 * and roles of its sites (and any scratch schema an export or restore left), every object under tenants/<id>/, then
 * every row of every table that carries its id, the tenant row itself, and the jobs still queued for it. Each step
 * is idempotent: a purge killed anywhere leaves the tenant DELETED and due (its transaction rolled back, only
 * objects deleted), and the next sweep finishes it. Returns false when the tenant is not (or no longer) due: an
 * ACTIVE, SUSPENDED or not-yet-due tenant is never touched; a tenant already gone only has its prefix and queued
 * jobs checked again.
 */
export async function purgeTenant(services: WorkerServices, tenantId: string, log: Logger, opts: PurgeOptions = {}): Promise<boolean> {
  const prefix = tenantPrefix(tenantId);
  const c = await services.ownerPool.connect();
  let summary: { objects: number; rows: number; queued: number; gone: boolean };
  try {
    await c.query('begin');
    const tenant = await c.query<{ due: boolean }>(
      `select status = 'DELETED' and purge_after <= now() as due from app_public.tenants where id = $1 for update`,
      [tenantId],
    );
    if (tenant.rowCount && !tenant.rows[0]!.due) {
      await c.query('rollback');
      return false;
    }
    const gone = !tenant.rowCount;

    // 1. Site schemas and roles, the scratch schemas of restores and exports.
    if (!gone) {
      const sites = await c.query<{ id: string; databaseServerId: string | null; isolation: 'SCHEMA' | 'DATABASE'; databaseName: string | null; clusterId: string }>(
        `select id, database_server_id as "databaseServerId", isolation, database_name as "databaseName", cluster_id as "clusterId" from app_public.sites where tenant_id = $1`,
        [tenantId],
      );
      const exports = await c.query<{ id: string }>(`select id from app_public.jobs where tenant_id = $1 and type = 'tenant-export'`, [tenantId]);
      await dropDueOldCopies(services, { tenantId, now: true });
      for (const site of sites.rows) {
        // On the site's own server (idempotent: a retried purge finds them gone), and the site's cluster's storage.
        if (site.databaseServerId) {
          const home = await siteHome(services, site);
          await (await homePool(services, home)).query(`drop schema if exists ${ident(`restore_${site.id.replace(/-/g, '')}`)} cascade`).catch(() => undefined);
          await dropSiteHome(services, home);
        }
        const { storage } = await services.fleet.storage(site.clusterId);
        // Its backups and files in another storage than the deployment's (step 2 empties that one).
        if (storage !== services.storage) {
          await storage.abortUploads(prefix);
          await storage.deletePrefix(prefix);
        }
      }
      for (const job of exports.rows) await c.query(`drop schema if exists ${ident(`export_${job.id.replace(/-/g, '')}`)} cascade`);
    }
    await opts.afterStep?.('schemas');

    // 2. Objects: unfinished multipart uploads first, then every key under the tenant's prefix.
    await services.storage.abortUploads(prefix);
    const objects = await services.storage.deletePrefix(prefix);
    await opts.afterStep?.('objects');

    // 3. Rows: documents before files (documents.file_id is ON DELETE RESTRICT), then the tenant row (its foreign keys
    // cascade to every tenant table), then whatever table carries tenant_id without a foreign key, then the jobs still
    // queued for the tenant — among them the deletions of its objects the triggers just enqueued, done by step 2.
    let rows = 0;
    rows += (await c.query(`delete from app_public.documents where tenant_id = $1`, [tenantId])).rowCount ?? 0;
    rows += (await c.query(`delete from app_public.tenants where id = $1`, [tenantId])).rowCount ?? 0;
    const tables = await c.query<{ schema: string; table: string }>(
      `select c.table_schema as schema, c.table_name as table
         from information_schema.columns c
         join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE'
        where c.table_schema in ('app', 'app_public', 'app_private') and c.column_name = 'tenant_id'
        order by 1, 2`,
    );
    for (const t of tables.rows) {
      rows += (await c.query(`delete from ${ident(t.schema)}.${ident(t.table)} where tenant_id = $1`, [tenantId])).rowCount ?? 0;
    }
    const queued = await c.query(`delete from pgboss.job where state in ('created', 'retry') and data ->> 'tenantId' = $1`, [tenantId]);
    await c.query('commit');
    summary = { objects, rows, queued: queued.rowCount ?? 0, gone };
  } catch (e) {
    await c.query('rollback').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
  await opts.afterStep?.('rows');
  // Anything a job still running for the tenant wrote meanwhile goes too.
  await services.storage.deletePrefix(prefix);
  log.info({ tenantId, ...summary }, 'tenant purged after retention');
  return true;
}

/**
 * `tenant-purge` (maintenance, hourly, owner role): DELETED tenants whose retention has ended are purged, one after
 * another; deleteTenant with TENANT_RETENTION_DAYS=0 enqueues it at once for its tenant (app.delete_tenant).
 */
export const tenantPurgeQueue = maintenanceQueue({
  name: 'tenant-purge',
  retryLimit: 5,
  retryDelay: 30,
  retryBackoff: true,
  expireInSeconds: 3600,
  cron: '41 * * * *',
  async run(services, data, job) {
    const ids = data.tenantId
      ? [data.tenantId]
      : (
          await services.ownerPool.query<{ id: string }>(
            `select id from app_public.tenants where status = 'DELETED' and purge_after <= now() order by purge_after limit 50`,
          )
        ).rows.map((r) => r.id);
    const purged: string[] = [];
    for (const id of ids) {
      job.signal.throwIfAborted();
      if (await purgeTenant(services, id, job.log)) purged.push(id);
    }
    return { purged };
  },
});
