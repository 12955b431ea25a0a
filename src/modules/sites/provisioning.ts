import type pg from 'pg';
import { tenantQueue } from '../../jobs/queue.ts';
import type { SiteStatus } from '../../db/generated/prisma/enums.ts';
import { PermanentJobError, type JobRun } from '../jobs/run.ts';
import { APPS, ident, siteRoleName, siteSchemaName } from './apps.ts';
import { canTransition } from './lifecycle.ts';
import { SITE_PROVISION_ATTEMPTS } from './service.ts';

/** Runs fn in one transaction on the owner pool (DDL the app role may not do). */
export async function asOwner<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('begin');
    const r = await fn(c);
    await c.query('commit');
    return r;
  } catch (e) {
    await c.query('rollback').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

export async function moveSite(run: JobRun<unknown>, siteId: string, to: SiteStatus, extra: Record<string, unknown> = {}) {
  await run.withDb(async (tx) => {
    const site = await tx.site.findUnique({ where: { tenantId_id: { tenantId: run.tenantId, id: siteId } }, select: { status: true } });
    if (!site) throw new PermanentJobError('the site no longer exists');
    if (site.status !== to && !canTransition(site.status, to)) throw new PermanentJobError(`the site is ${site.status}, it cannot become ${to}`);
    await tx.site.updateMany({ where: { tenantId: run.tenantId, id: siteId }, data: { status: to, updatedAt: new Date(), ...extra } });
  });
}

/** The site's own role: no login, no privileges beyond what its schema grants it. Idempotent. */
export async function ensureSiteRole(c: pg.ClientBase, role: string) {
  const exists = await c.query(`select 1 from pg_roles where rolname = $1`, [role]);
  if (!exists.rowCount) await c.query(`create role ${ident(role)} nologin nosuperuser nocreatedb nocreaterole noinherit nobypassrls`);
}

/** Creates (or finds) the site's role and schema: names from the site id, quoted, owned by that role alone. */
async function createSchema(pool: pg.Pool, schema: string, role: string) {
  await asOwner(pool, async (c) => {
    // Serialise with any concurrent attempt for the same site (a retried job racing a slow one).
    await c.query(`select pg_advisory_xact_lock(hashtextextended($1, 0))`, [schema]);
    await ensureSiteRole(c, role);
    await c.query(`create schema if not exists ${ident(schema)} authorization ${ident(role)}`);
    await c.query(`revoke all on schema ${ident(schema)} from public`);
  });
}

async function installApps(pool: pg.Pool, schema: string, role: string, apps: string[]) {
  for (const name of apps) {
    const app = APPS[name];
    if (!app) throw new PermanentJobError(`unknown app ${name}`);
    await asOwner(pool, async (c) => {
      // As the site's own role, inside its own schema: the app's tables belong to the site, nothing else is reachable.
      await c.query(`set local role ${ident(role)}`);
      await c.query(`set local search_path = ${ident(schema)}`);
      await c.query(app.sql);
    });
  }
}

/** As the site role: its own tables answer, the pooled tables and other schemas refuse. */
async function healthCheck(pool: pg.Pool, schema: string, role: string, apps: string[]) {
  return asOwner(pool, async (c) => {
    await c.query(`set local role ${ident(role)}`);
    const tables: Record<string, number> = {};
    for (const name of apps) for (const table of APPS[name]!.tables) {
      const r = await c.query(`select count(*)::int as n from ${ident(schema)}.${ident(table)}`);
      tables[table] = r.rows[0].n;
    }
    await c.query('savepoint probe');
    const leak = await c.query(`select 1 from app_public.tenants limit 1`).then(
      () => true,
      () => false,
    );
    await c.query('rollback to savepoint probe');
    if (leak) throw new PermanentJobError('health check: the site role can read the pooled tables');
    const size = await c.query(
      `select coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint as bytes from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1`,
      [schema],
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
    const site = await run.withDb((tx) => tx.site.findUnique({ where: { tenantId_id: { tenantId: run.tenantId, id: run.args.siteId } } }));
    if (!site) throw new PermanentJobError('the site no longer exists');
    const schema = siteSchemaName(site.id);
    const role = siteRoleName(site.id);
    if (site.status === 'HEALTHY') return { schema, role, resumed: 'already healthy' };
    if (site.status === 'PENDING') await moveSite(run, site.id, 'PROVISIONING');
    else if (site.status !== 'PROVISIONING' && site.status !== 'RUNNING') throw new PermanentJobError(`the site is ${site.status}: nothing to provision`);
    if (site.status !== 'PENDING') await run.log(`resuming from ${site.status}`);
    await run.progress(10, 'creating schema and role', `schema ${schema}, owner ${role}`);
    await createSchema(services.ownerPool, schema, role);
    await run.progress(30, 'installing apps', site.apps.length ? `apps: ${site.apps.join(', ')}` : 'no apps');
    await installApps(services.ownerPool, schema, role, site.apps);
    await run.progress(55, 'creating storage prefix');
    await services.storage.putEmpty(`tenants/${site.tenantId}/sites/${site.id}/files/.keep`);
    await run.progress(70, 'recording schema');
    await asOwner(services.ownerPool, (c) =>
      c.query(
        `insert into app_public.tenant_schemas (tenant_id, schema_name, site_id, owner_role) values ($1, $2, $3, $4)
         on conflict (tenant_id, schema_name) do nothing`,
        [site.tenantId, schema, site.id, role],
      ),
    );
    await moveSite(run, site.id, 'RUNNING', { schemaName: schema });
    await run.progress(80, 'health check');
    const health = await healthCheck(services.ownerPool, schema, role, site.apps);
    await asOwner(services.ownerPool, (c) =>
      c.query(`update app_public.tenant_schemas set size_bytes = $3 where tenant_id = $1 and schema_name = $2`, [site.tenantId, schema, health.sizeBytes]),
    );
    await moveSite(run, site.id, 'HEALTHY');
    await run.log(`healthy: ${JSON.stringify(health.tables)}`);
    return { schema, role, ...health };
  },
  async onFailed(run) {
    await moveSite(run, run.args.siteId, 'FAILED').catch(() => undefined);
  },
  async onCancelled(run) {
    await moveSite(run, run.args.siteId, 'FAILED').catch(() => undefined);
  },
});
