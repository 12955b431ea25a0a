import type pg from 'pg';
import type { Context } from '../../graphql/context.ts';
import { badInput, notFound } from '../../graphql/errors.ts';
import { maintenanceQueue, tenantQueue } from '../../jobs/queue.ts';
import type { WorkerServices } from '../../services.ts';
import { requirePermission } from '../access/permissions.ts';
import { audited, recordAudit } from '../audit/service.ts';
import { PermanentJobError } from '../jobs/run.ts';
import { enqueueTrackedJob } from '../jobs/service.ts';
import { assertTransition } from './lifecycle.ts';
import { beginMove } from './move.ts';
import { applySiteLimits, homePool, inTransaction, setSiteWriteAccess, siteAccess, siteHome, type SiteHome, type SitePlacement } from './hosting.ts';

/** What a measure needs of a site row (with its plan). */
export interface MeasurableSite extends SitePlacement {
  tenantId: string;
  clusterId: string;
  overStorageLimit: boolean;
  plan: { storageLimitBytes: bigint; connectionLimit: number; statementTimeoutMs: number };
}

export interface SiteUsage {
  databaseBytes: number;
  fileBytes: number;
  totalBytes: number;
  limitBytes: number;
  overStorageLimit: boolean;
}

/** States in which a site has a live schema to measure. */
const MEASURED_STATES = ['RUNNING', 'HEALTHY', 'SUSPENDED'];

export const siteFilesPrefix = (tenantId: string, siteId: string) => `tenants/${tenantId}/sites/${siteId}/files/`;

/**
 * The bytes a site holds on its server: every table (with its indexes and TOAST), materialized view and sequence of
 * its schema; for a site with a database of its own, the whole database (what the tenant may fill: it owns it),
 * catalogue included (about 7.5 MB on PostgreSQL 15).
 */
async function databaseBytes(pool: pg.Pool, home: SiteHome) {
  if (home.isolation === 'DATABASE') {
    const r = await pool.query<{ bytes: string }>(`select pg_database_size(current_database())::text as bytes`);
    return Number(r.rows[0]!.bytes);
  }
  const r = await pool.query<{ bytes: string }>(
    `select coalesce(sum(case when c.relkind in ('r', 'm') then pg_total_relation_size(c.oid) when c.relkind = 'S' then pg_relation_size(c.oid) else 0 end), 0)::text as bytes
       from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1`,
    [home.schema],
  );
  return Number(r.rows[0]!.bytes);
}

/**
 * A site over its limit makes room by deleting rows; VACUUM gives the emptied pages at the end of each table back to
 * the file system, so the next measure counts what was deleted (TRUNCATE counts at once).
 */
async function vacuumSite(pool: pg.Pool, home: SiteHome) {
  if (home.isolation === 'DATABASE') {
    await pool.query('vacuum');
    return;
  }
  const tables = await pool.query<{ name: string }>(
    `select format('%I.%I', n.nspname, c.relname) as name from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind in ('r', 'm')`,
    [home.schema],
  );
  for (const t of tables.rows) await pool.query(`vacuum ${t.name}`);
}

/**
 * Measures a site (its schema or database plus its files) against its plan and records it: sites.database_bytes,
 * file_bytes, measured_at, TenantSchema.sizeBytes. Crossing the limit either way changes what its login may do
 * (setSiteWriteAccess) before the flag is written, so a crash in between is repaired by the next measure.
 */
export async function measureSite(services: WorkerServices, site: MeasurableSite): Promise<SiteUsage> {
  const home = await siteHome(services, site);
  const pool = await homePool(services, home);
  if (site.overStorageLimit) await vacuumSite(pool, home);
  const dbBytes = await databaseBytes(pool, home);
  const { storage } = await services.fleet.storage(site.clusterId);
  const fileBytes = (await storage.list(siteFilesPrefix(site.tenantId, site.id))).reduce((sum, o) => sum + o.size, 0);
  const totalBytes = dbBytes + fileBytes;
  const limitBytes = Number(site.plan.storageLimitBytes);
  const over = totalBytes > limitBytes;
  if (over !== site.overStorageLimit) await setSiteWriteAccess(services, home, over);
  await inTransaction(services.ownerPool, async (c) => {
    await c.query(
      `update app_public.sites set database_bytes = $3, file_bytes = $4, over_storage_limit = $5, measured_at = now() where tenant_id = $1 and id = $2`,
      [site.tenantId, site.id, dbBytes, fileBytes, over],
    );
    await c.query(`update app_public.tenant_schemas set size_bytes = $3 where tenant_id = $1 and site_id = $2 and schema_name = $4`, [site.tenantId, site.id, dbBytes, home.schema]);
  });
  return { databaseBytes: dbBytes, fileBytes, totalBytes, limitBytes, overStorageLimit: over };
}

const SITE_SELECT = `select s.tenant_id as "tenantId", s.id, s.cluster_id as "clusterId", s.database_server_id as "databaseServerId", s.isolation,
                            s.database_name as "databaseName", s.over_storage_limit as "overStorageLimit", s.status,
                            json_build_object('storageLimitBytes', p.storage_limit_bytes, 'connectionLimit', p.connection_limit, 'statementTimeoutMs', p.statement_timeout_ms) as plan
                       from app_public.sites s join app_public.site_plans p on p.id = s.plan_id`;

type SiteRow = Omit<MeasurableSite, 'plan'> & { status: string; plan: { storageLimitBytes: number; connectionLimit: number; statementTimeoutMs: number } };
const measurable = (row: SiteRow): MeasurableSite => ({ ...row, plan: { ...row.plan, storageLimitBytes: BigInt(row.plan.storageLimitBytes) } });

/** One site, read as the owner (the job has already checked, under RLS, that it is the tenant's). */
export async function loadSite(services: WorkerServices, tenantId: string, siteId: string) {
  const { rows } = await services.ownerPool.query<SiteRow>(`${SITE_SELECT} where s.tenant_id = $1 and s.id = $2`, [tenantId, siteId]);
  return rows[0] ? { row: rows[0], site: measurable(rows[0]) } : null;
}

/** measureSite (sites:operate): a fresh measure now, as a tracked job, instead of waiting for the periodic one. */
export function requestSiteMeasure(ctx: Context, tenantId: string, siteId: string) {
  return audited(ctx, { tenantId, action: 'measureSite', targetType: 'Site', targetId: siteId }, async () => {
    await requirePermission(ctx, tenantId, 'sites:operate');
    const site = await ctx.db.site.findUnique({ where: { tenantId_id: { tenantId, id: siteId } }, select: { status: true, databaseServerId: true } });
    if (!site) throw notFound('site');
    if (!site.databaseServerId || !MEASURED_STATES.includes(site.status)) throw badInput('siteId', `the site is ${site.status}: there is nothing to measure`);
    return enqueueTrackedJob(ctx, 'site-measure', { tenantId, siteId, args: { siteId } });
  });
}

/** `site-measure`: one site, now. */
export const siteMeasureQueue = tenantQueue({
  name: 'site-measure',
  retryLimit: 2,
  retryDelay: 5,
  retryBackoff: true,
  expireInSeconds: 600,
  async run(run) {
    const loaded = await loadSite(run.services, run.tenantId, run.args.siteId);
    if (!loaded?.row.databaseServerId || !MEASURED_STATES.includes(loaded.row.status)) throw new PermanentJobError('the site has no live schema to measure');
    await run.progress(20, 'measuring');
    const usage = await measureSite(run.services, loaded.site);
    await run.log(`${usage.totalBytes} of ${usage.limitBytes} bytes${usage.overStorageLimit ? ': over the limit, writes refused' : ''}`);
    return { ...usage };
  },
});

/**
 * `site-measure-all` (maintenance, SITE_MEASURE_CRON): measures every live site, least recently measured first. One
 * site failing (its server down) is logged and the others are still measured.
 */
export const siteMeasureAllQueue = maintenanceQueue({
  name: 'site-measure-all',
  cron: (config) => config.sites.measureCron,
  retryLimit: 1,
  retryDelay: 60,
  retryBackoff: false,
  expireInSeconds: 1800,
  async run(services, _data, job) {
    const { rows } = await services.ownerPool.query<SiteRow>(
      `${SITE_SELECT} where s.database_server_id is not null and s.schema_name is not null and s.status = any($1::app_public.site_status[])
        order by s.measured_at nulls first`,
      [MEASURED_STATES],
    );
    let measured = 0;
    let over = 0;
    for (const row of rows) {
      if (job.signal.aborted) break;
      try {
        const usage = await measureSite(services, measurable(row));
        measured++;
        if (usage.overStorageLimit) over++;
      } catch (err) {
        job.log.warn({ err, tenantId: row.tenantId, siteId: row.id }, 'site not measured');
      }
    }
    return { measured, over, of: rows.length };
  },
});

/**
 * changeSitePlan (sites:write, audited): the site's plan changes now; the `site-apply-plan` job gives its login the
 * new plan's connection limit and statement timeout and measures it against the new storage limit. A plan of the
 * other isolation level moves the site there (the site-move job, which applies the plan on the new home): the site
 * must then be HEALTHY.
 */
export function changeSitePlan(ctx: Context, tenantId: string, siteId: string, planId: string) {
  return audited(ctx, { tenantId, action: 'changeSitePlan', targetType: 'Site', targetId: siteId }, async () => {
    await requirePermission(ctx, tenantId, 'sites:write');
    const site = await ctx.db.site.findUnique({ where: { tenantId_id: { tenantId, id: siteId } }, select: { status: true, planId: true, isolation: true, databaseServerId: true } });
    if (!site) throw notFound('site');
    const plan = await ctx.db.sitePlan.findUnique({ where: { id: planId } });
    if (!plan) throw badInput('plan', `no site plan is named "${planId}"`);
    if (site.planId === plan.id) throw badInput('plan', `the site is already on the ${plan.title} plan`);
    if (!site.databaseServerId || !MEASURED_STATES.includes(site.status)) throw badInput('siteId', `the site is ${site.status}: its plan cannot change now`);
    const moves = plan.isolation !== site.isolation;
    if (moves) assertTransition(site.status, 'MOVING', `move to the ${plan.title} plan (${plan.isolation === 'DATABASE' ? 'a database of its own' : 'a schema'})`);
    await ctx.db.site.updateMany({ where: { tenantId, id: siteId }, data: { planId: plan.id, updatedAt: new Date() } });
    const job = moves
      ? await beginMove(ctx, tenantId, siteId, { serverId: site.databaseServerId, isolation: plan.isolation })
      : await enqueueTrackedJob(ctx, 'site-apply-plan', { tenantId, siteId, args: { siteId } });
    await recordAudit(ctx, { tenantId, action: 'changeSitePlan', targetType: 'Site', targetId: siteId, details: { from: site.planId, to: plan.id } });
    return job;
  });
}

/** `site-apply-plan`: the site's current plan onto its login (limits), then a measure against its storage limit. */
export const siteApplyPlanQueue = tenantQueue({
  name: 'site-apply-plan',
  retryLimit: 3,
  retryDelay: 2,
  retryBackoff: true,
  expireInSeconds: 600,
  async run(run) {
    const loaded = await loadSite(run.services, run.tenantId, run.args.siteId);
    if (!loaded?.row.databaseServerId) throw new PermanentJobError('the site is not placed on a database server');
    const { site } = loaded;
    const home = await siteHome(run.services, site);
    await run.progress(20, 'applying limits', `connection limit ${site.plan.connectionLimit}, statement timeout ${site.plan.statementTimeoutMs} ms`);
    await inTransaction(await run.services.fleet.pool(home.serverId), (c) => applySiteLimits(c, home, siteAccess(site)));
    await run.progress(60, 'measuring');
    const usage = await measureSite(run.services, site);
    return { ...usage };
  },
});
