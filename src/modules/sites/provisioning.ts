import type pg from 'pg';
import { tenantQueue } from '../../jobs/queue.ts';
import type { SiteStatus } from '../../db/generated/prisma/enums.ts';
import { PermanentJobError, type JobRun } from '../jobs/run.ts';
import { APPS, ident } from './apps.ts';
import { ensureSiteHome, homePool, inTransaction, siteAccess, siteHome, type SiteHome } from './hosting.ts';
import { applySitePassword } from './credentials.ts';
import { canTransition } from './lifecycle.ts';
import { siteFilesPrefix } from './usage.ts';
import { SITE_PROVISION_ATTEMPTS } from './service.ts';
import { installReleaseApps } from '../releases/site-modules.ts';

/** Runs fn in one transaction on the owner pool (DDL the app role may not do): inTransaction by its older name. */
export const asOwner = inTransaction;

export async function setSiteStatus(run: JobRun<unknown>, siteId: string, to: SiteStatus, extra: Record<string, unknown> = {}) {
  await run.withDb(async (tx) => {
    const site = await tx.site.findUnique({ where: { tenantId_id: { tenantId: run.tenantId, id: siteId } }, select: { status: true } });
    if (!site) throw new PermanentJobError('the site no longer exists');
    if (site.status !== to && !canTransition(site.status, to)) throw new PermanentJobError(`the site is ${site.status}, it cannot become ${to}`);
    await tx.site.updateMany({ where: { tenantId: run.tenantId, id: siteId }, data: { status: to, updatedAt: new Date(), ...extra } });
  });
}

/** The site's owner role, if missing: no login, no privileges beyond what its schema grants it. Idempotent. */
export async function ensureSiteRole(c: pg.ClientBase, role: string) {
  const exists = await c.query(`select 1 from pg_roles where rolname = $1`, [role]);
  if (!exists.rowCount) await c.query(`create role ${ident(role)} nologin nosuperuser nocreatedb nocreaterole noinherit nobypassrls`);
}

/** Each app's SQL, as the site's owner role inside the site's schema: nothing else is reachable from there. */
export async function installApps(pool: pg.Pool, home: SiteHome, apps: string[]) {
  for (const name of apps) {
    const app = APPS[name];
    if (!app) throw new PermanentJobError(`unknown app ${name}`);
    await inTransaction(pool, async (c) => {
      await c.query(`set local role ${ident(home.ownerRole)}`);
      await c.query(`set local search_path = ${ident(home.schema)}`);
      await c.query(app.sql);
    });
  }
}

/** As the site's owner role: its own tables answer; its size. */
export async function healthCheck(pool: pg.Pool, home: SiteHome, apps: string[]) {
  return inTransaction(pool, async (c) => {
    await c.query(`set local role ${ident(home.ownerRole)}`);
    const tables: Record<string, number> = {};
    for (const name of apps) for (const table of APPS[name]!.tables) {
      const r = await c.query(`select count(*)::int as n from ${ident(home.schema)}.${ident(table)}`);
      tables[table] = r.rows[0].n;
    }
    const size = await c.query(
      `select coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint as bytes from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1`,
      [home.schema],
    );
    return { tables, sizeBytes: Number(size.rows[0].bytes) };
  });
}

/**
 * `site-provision`: PENDING → PROVISIONING → RUNNING → HEALTHY, or FAILED with the job's log. Every step is
 * idempotent (if-not-exists DDL, upserts), so a retry after a crash at any point resumes from the state the dead
 * attempt left — PROVISIONING or RUNNING — and ends as a clean run would.
 */
export const siteProvisionQueue = tenantQueue({
  name: 'site-provision',
  retryLimit: SITE_PROVISION_ATTEMPTS - 1,
  retryDelay: 1,
  retryBackoff: true,
  expireInSeconds: 600,
  heartbeatSeconds: 10,
  async run(run) {
    const services = run.services;
    const site = await run.withDb((tx) => tx.site.findUnique({ where: { tenantId_id: { tenantId: run.tenantId, id: run.args.siteId } }, include: { plan: true } }));
    if (!site) throw new PermanentJobError('the site no longer exists');
    if (!site.databaseServerId) throw new PermanentJobError('the site has no database server (it was created before placement existed)');
    const home = await siteHome(services, site);
    if (site.status === 'HEALTHY') return { schema: home.schema, role: home.loginRole, resumed: 'already healthy' };
    if (site.status === 'PENDING') await setSiteStatus(run, site.id, 'PROVISIONING');
    else if (site.status !== 'PROVISIONING' && site.status !== 'RUNNING') throw new PermanentJobError(`the site is ${site.status}: nothing to provision`);
    if (site.status !== 'PENDING') await run.log(`resuming from ${site.status}`);
    const endpoint = await services.fleet.server(home.serverId);
    await run.progress(10, 'creating roles and schema', `${home.isolation === 'DATABASE' ? 'database' : 'schema'} ${home.isolation === 'DATABASE' ? home.database : home.schema} on ${endpoint.host}:${endpoint.port}, login ${home.loginRole}`);
    await ensureSiteHome(services, home, siteAccess(site));
    await applySitePassword(services, site.tenantId, site.id, home);
    const pool = await homePool(services, home);
    await run.progress(30, 'installing apps', site.apps.length ? `apps: ${site.apps.join(', ')}` : 'no apps');
    // A site on a bench runs its release's apps (migrations and health checks, in one transaction); an older site the
    // built-in SQL of src/modules/sites/apps.ts.
    if (site.benchId) {
      const release = await installReleaseApps(run, site, home);
      await run.log(`installed from ${release.label}`);
    } else await installApps(pool, home, site.apps);
    await run.progress(55, 'creating storage prefix');
    const { storage } = await services.fleet.storage(site.clusterId);
    await storage.putEmpty(`${siteFilesPrefix(site.tenantId, site.id)}.keep`);
    await run.progress(70, 'recording schema');
    await asOwner(services.ownerPool, (c) =>
      c.query(
        `insert into app_public.tenant_schemas (tenant_id, schema_name, site_id, owner_role) values ($1, $2, $3, $4)
         on conflict (tenant_id, schema_name) do nothing`,
        [site.tenantId, home.schema, site.id, home.ownerRole],
      ),
    );
    await setSiteStatus(run, site.id, 'RUNNING', { schemaName: home.schema });
    await run.progress(80, 'health check');
    const health = await healthCheck(pool, home, site.benchId ? [] : site.apps);
    await asOwner(services.ownerPool, (c) =>
      c.query(`update app_public.tenant_schemas set size_bytes = $3 where tenant_id = $1 and schema_name = $2`, [site.tenantId, home.schema, health.sizeBytes]),
    );
    await setSiteStatus(run, site.id, 'HEALTHY');
    await run.log(`healthy: ${JSON.stringify(health.tables)}`);
    return { schema: home.schema, role: home.loginRole, database: home.database, ...health };
  },
  async onFailed(run) {
    await setSiteStatus(run, run.args.siteId, 'FAILED').catch(() => undefined);
  },
  async onCancelled(run) {
    await setSiteStatus(run, run.args.siteId, 'FAILED').catch(() => undefined);
  },
});
