import type pg from 'pg';
import type { Context } from '../../graphql/context.ts';
import { badInput, notFound } from '../../graphql/errors.ts';
import { maintenanceQueue, tenantQueue } from '../../jobs/queue.ts';
import type { WorkerServices } from '../../services.ts';
import { requirePermission, requirePlatformPermission } from '../access/permissions.ts';
import { audited, recordAudit } from '../audit/service.ts';
import { PermanentJobError, type JobRun } from '../jobs/run.ts';
import { enqueueTrackedJob } from '../jobs/service.ts';
import { restoreArchive, swapSchemas, writeArchive } from '../backups/archive.ts';
import { APPS, ident } from './apps.ts';
import { applySitePassword } from './credentials.ts';
import { dropSiteHome, endLoginSessions, ensureSiteHome, homePool, inTransaction, setSiteWriteAccess, siteAccess, siteHome, type SiteHome } from './hosting.ts';
import { assertTransition } from './lifecycle.ts';
import { setSiteStatus } from './provisioning.ts';
import { loadSite, measureSite } from './usage.ts';

/**
 * Moving a site (issue 10 §2): to another database server of its cluster, or to the other isolation level (a schema in
 * the server's sites database ⇄ a database of its own), or both. The `site-move` job pauses the site's login and ends
 * its sessions, archives the site (the backup format, to the cluster's storage), restores it on the target as the
 * site's owner role, compares every table's row count and checksum and every sequence between the two copies,
 * switches the site's row to the target, and lets the login in again there. Until the switch the site's row still
 * names the old home; any failure before it drops the target copy and lets the login in where it was. The old copy
 * is kept SITE_MOVE_GRACE_SECONDS (app_private.site_old_copies), then dropped by `site-drop-old-copies`.
 */
type Isolation = 'SCHEMA' | 'DATABASE';

export const movePrefix = (tenantId: string, siteId: string, jobId: string) => `tenants/${tenantId}/sites/${siteId}/moves/${jobId}/`;

const sameHome = (a: SiteHome, b: SiteHome) => a.serverId === b.serverId && a.isolation === b.isolation;

/** In a request: HEALTHY → MOVING and the site-move job, in this transaction. changeSitePlan uses it too. */
export async function beginMove(ctx: Context, tenantId: string, siteId: string, target: { serverId: string; isolation: Isolation }) {
  await ctx.db.site.updateMany({ where: { tenantId, id: siteId }, data: { status: 'MOVING', updatedAt: new Date() } });
  return enqueueTrackedJob(ctx, 'site-move', { tenantId, siteId, args: { siteId, serverId: target.serverId, isolation: target.isolation } });
}

/**
 * moveSite (sites:operate; a target server also needs platform.fleet:write: servers are fleet internals, which
 * tenants never see). The site must be HEALTHY; it is MOVING until the job ends, then HEALTHY again, moved or not.
 */
export function moveSite(ctx: Context, tenantId: string, siteId: string, input: { serverId?: string; isolation?: Isolation }) {
  return audited(ctx, { tenantId, action: 'moveSite', targetType: 'Site', targetId: siteId }, async () => {
    await requirePermission(ctx, tenantId, 'sites:operate');
    if (!input.serverId && !input.isolation) throw badInput('input', 'name a server or an isolation level to move the site to');
    if (input.serverId) await requirePlatformPermission(ctx, 'platform.fleet:write');
    const site = await ctx.db.site.findUnique({ where: { tenantId_id: { tenantId, id: siteId } }, select: { status: true, databaseServerId: true, isolation: true, clusterId: true } });
    if (!site) throw notFound('site');
    if (!site.databaseServerId) throw badInput('siteId', 'the site is not placed on a database server');
    assertTransition(site.status, 'MOVING', 'move');
    const target = { serverId: input.serverId ?? site.databaseServerId, isolation: input.isolation ?? site.isolation };
    if (target.serverId === site.databaseServerId && target.isolation === site.isolation) throw badInput('input', 'the site is already there');
    if (target.serverId !== site.databaseServerId) {
      // Platform staff read the fleet under RLS: the server must be an active, checked database server of the site's
      // cluster. Its room is counted by the job, over every tenant's sites.
      const server = await ctx.db.databaseServer.findUnique({ where: { serverId: target.serverId }, select: { checkStatus: true, server: { select: { clusterId: true, status: true, name: true } } } });
      if (!server) throw badInput('server', 'no database server has this id');
      if (server.server.clusterId !== site.clusterId) throw badInput('server', `${server.server.name} is in another cluster: a site moves within its cluster`);
      if (server.server.status !== 'ACTIVE' || server.checkStatus !== 'PASSED') {
        throw badInput('server', `${server.server.name} is ${server.server.status} (check ${server.checkStatus}): only an ACTIVE, checked server takes sites`);
      }
    }
    const job = await beginMove(ctx, tenantId, siteId, target);
    await recordAudit(ctx, {
      tenantId,
      action: 'moveSite',
      targetType: 'Site',
      targetId: siteId,
      details: { fromIsolation: site.isolation, toIsolation: target.isolation, otherServer: target.serverId !== site.databaseServerId },
    });
    return job;
  });
}

/** Lets the site's login in on its server, or keeps it out and ends its sessions there. */
async function setLogin(services: WorkerServices, home: SiteHome, allowed: boolean) {
  const pool = await services.fleet.pool(home.serverId);
  await pool.query(`alter role ${ident(home.loginRole)} ${allowed ? 'login' : 'nologin'}`);
  if (!allowed) await endLoginSessions(pool, home);
}

// Its taken places as placement counts them (app.database_server_sites, sql/0035).
const ROOM = `select sv.name, sv.status, d.check_status, d.capacity, app.database_server_sites(d.server_id) as used
                from app_public.database_servers d join app_public.servers sv on sv.id = d.server_id
               where d.server_id = $1 and sv.cluster_id = $2`;

/** The target server takes one more site: in the cluster, ACTIVE, checked, with a free place (counted over all tenants). */
async function assertRoom(c: pg.ClientBase | pg.Pool, serverId: string, clusterId: string) {
  const { rows } = await c.query<{ name: string; status: string; check_status: string; capacity: number; used: number }>(ROOM, [serverId, clusterId]);
  const s = rows[0];
  if (!s) throw new PermanentJobError('the target database server is not in the site\'s cluster');
  if (s.status !== 'ACTIVE' || s.check_status !== 'PASSED') throw new PermanentJobError(`database server ${s.name} is ${s.status} (check ${s.check_status}): it takes no site`);
  if (s.used >= s.capacity) throw new PermanentJobError(`database server ${s.name} is full (${s.used} of ${s.capacity} places): the site stays where it is`);
}

/** Every table's row count and checksum (md5 over the rows' md5s, in order), and every sequence's state. */
async function fingerprint(pool: pg.Pool, schema: string, tables: string[]) {
  const out: Record<string, string> = {};
  for (const table of tables) {
    const r = await pool.query<{ n: string; sum: string }>(
      `select count(*)::text as n, md5(coalesce(string_agg(md5(t::text), '' order by md5(t::text)), '')) as sum from ${ident(schema)}.${ident(table)} t`,
    );
    out[`table ${table}`] = `${r.rows[0]!.n} rows, md5 ${r.rows[0]!.sum}`;
  }
  const seqs = await pool.query<{ name: string }>(
    `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind = 'S' order by 1`,
    [schema],
  );
  for (const { name } of seqs.rows) {
    const r = await pool.query<{ v: string }>(`select last_value::text || case when is_called then '' else ' (not called)' end as v from ${ident(schema)}.${ident(name)}`);
    out[`sequence ${name}`] = r.rows[0]!.v;
  }
  return out;
}

/** Both copies must agree on everything fingerprint sees; the first difference fails the move, naming it. */
async function verifyCopies(services: WorkerServices, source: SiteHome, target: SiteHome, tables: string[]) {
  const [a, b] = await Promise.all([fingerprint(await homePool(services, source), source.schema, tables), fingerprint(await homePool(services, target), target.schema, tables)]);
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (a[key] !== b[key]) throw new PermanentJobError(`verification failed: ${key} is ${a[key] ?? 'missing'} on the old home and ${b[key] ?? 'missing'} on the new one`);
  }
  return Object.keys(a).length;
}

/**
 * The switch, in one transaction on the control plane: the site's row names the target (a server move re-counts
 * the target's room under the cluster's lock, as placement does), and the old home is recorded to be dropped later.
 */
async function switchHome(services: WorkerServices, site: { tenantId: string; id: string; clusterId: string }, source: SiteHome, target: SiteHome, jobId: string) {
  await inTransaction(services.ownerPool, async (c) => {
    await c.query(`select 1 from app_public.clusters where id = $1 for no key update`, [site.clusterId]);
    if (target.serverId !== source.serverId) await assertRoom(c, target.serverId, site.clusterId);
    const moved = await c.query(
      `update app_public.sites set database_server_id = $3, isolation = $4::app_public.site_isolation,
              database_name = case when $4::app_public.site_isolation = 'DATABASE' then $5 end, updated_at = now()
        where tenant_id = $1 and id = $2 and status = 'MOVING' and database_server_id = $6 and isolation = $7::app_public.site_isolation`,
      [site.tenantId, site.id, target.serverId, target.isolation, target.database, source.serverId, source.isolation],
    );
    if (!moved.rowCount) throw new PermanentJobError('the site changed while it was moving');
    await c.query(
      `insert into app_private.site_old_copies (tenant_id, site_id, database_server_id, isolation, moved_by_job_id, drop_after)
       values ($1, $2, $3, $4::app_public.site_isolation, $5, now() + make_interval(secs => $6))
       on conflict (tenant_id, site_id, database_server_id, isolation) do update set moved_by_job_id = excluded.moved_by_job_id, drop_after = excluded.drop_after`,
      [site.tenantId, site.id, source.serverId, source.isolation, jobId, services.config.sites.moveGraceSeconds],
    );
    await c.query(`delete from app_private.site_old_copies where tenant_id = $1 and site_id = $2 and database_server_id = $3 and isolation = $4::app_public.site_isolation`, [
      site.tenantId,
      site.id,
      target.serverId,
      target.isolation,
    ]);
  });
}

export const siteMoveQueue = tenantQueue({
  name: 'site-move',
  retryLimit: 1,
  retryDelay: 5,
  retryBackoff: false,
  expireInSeconds: 3600,
  heartbeatSeconds: 10,
  async run(run) {
    const { services, tenantId } = run;
    const { siteId, serverId, isolation } = run.args;
    const site = await run.withDb((tx) => tx.site.findUnique({ where: { tenantId_id: { tenantId, id: siteId } }, include: { plan: true } }));
    if (!site?.databaseServerId) throw new PermanentJobError('the site is not placed on a database server');
    if (site.status !== 'MOVING') throw new PermanentJobError(`the site is ${site.status}: it is not being moved`);
    const source = await siteHome(services, site);
    const target = await siteHome(services, site, { serverId, isolation });
    if (sameHome(source, target)) {
      // An attempt that died after the switch: what is left is letting the login in and finishing.
      await setLogin(services, target, true);
      await setSiteStatus(run, siteId, 'HEALTHY');
      return { resumed: 'the site had already been switched to its new home' };
    }
    if (target.serverId !== source.serverId) {
      // The request checked this; a job enqueued by other means is checked again, as the member who asked.
      const [row] = await run.withDb((tx) => tx.$queryRaw<{ allowed: boolean }[]>`select app.has_platform_permission('platform.fleet:write') as allowed`);
      if (!row?.allowed) throw new PermanentJobError('moving a site to another database server needs the platform.fleet:write platform permission');
      await assertRoom(services.ownerPool, target.serverId, site.clusterId);
    }
    const where = (h: SiteHome) => `${h.isolation === 'DATABASE' ? `database ${h.database}` : `schema ${h.schema} in ${h.database}`} on server ${h.serverId}`;
    await run.progress(5, 'pausing the site', `from ${where(source)} to ${where(target)}; login ${source.loginRole} is refused until the move ends, its sessions are ended`);
    await setLogin(services, source, false);

    const { storage } = await services.fleet.storage(site.clusterId);
    const prefix = movePrefix(tenantId, siteId, run.job.jobId);
    await storage.abortUploads(prefix);
    await storage.deletePrefix(prefix);
    const manifest = await writeArchive({
      pool: await homePool(services, source),
      storage,
      schema: source.schema,
      prefix,
      meta: { siteId, siteName: site.name, apps: site.apps.map((name) => ({ name, version: APPS[name]?.version ?? 'unknown' })) },
      onProgress: (pct, step) => run.progress(8 + pct * 0.3, `archiving: ${step}`),
    });
    await run.log(`archived ${manifest.tables.length} tables (${manifest.totalBytes} bytes) under ${prefix}`);

    await run.progress(40, 'preparing the new home');
    // Whatever of this site the target still holds (an old copy from an earlier move, a failed attempt) goes first.
    await dropSiteHome(services, target, { keepRoles: true });
    await ensureSiteHome(services, target, siteAccess(site));
    if (target.serverId !== source.serverId) {
      await applySitePassword(services, tenantId, siteId, target);
      await setLogin(services, target, false);
    }
    const pool = await homePool(services, target);
    const incoming = `move_${siteId.replace(/-/g, '')}`;
    await pool.query(`drop schema if exists ${ident(incoming)} cascade`);
    await restoreArchive({ pool, storage, prefix, targetSchema: incoming, owner: target.ownerRole, onProgress: (pct, step) => run.progress(45 + pct * 0.35, `restoring: ${step}`) });
    await inTransaction(pool, async (c) => {
      await swapSchemas({ client: c, live: target.schema, incoming, dropOld: true });
      await c.query(`alter schema ${ident(target.schema)} owner to ${ident(target.ownerRole)}`);
      await c.query(`revoke all on schema ${ident(target.schema)} from public`);
    });
    if (site.overStorageLimit) await setSiteWriteAccess(services, target, true);

    await run.progress(82, 'verifying');
    const checked = await verifyCopies(services, source, target, manifest.tables.map((t) => t.name));
    await run.log(`verified: ${checked} tables and sequences have the same row counts, checksums and values on both homes`);

    await run.progress(90, 'switching');
    await switchHome(services, site, source, target, run.job.jobId);
    // On one server the login stays the same role: it no longer connects to the old database.
    if (target.serverId === source.serverId) {
      await (await services.fleet.pool(source.serverId)).query(`revoke connect on database ${ident(source.database)} from ${ident(source.loginRole)}`);
    }
    await run.progress(95, 'resuming');
    await setLogin(services, target, true);
    await setSiteStatus(run, siteId, 'HEALTHY');
    await storage.deletePrefix(prefix).catch(() => undefined);
    if (services.config.sites.moveGraceSeconds === 0) await dropDueOldCopies(services, { tenantId, siteId, now: true });
    // The new home is measured (a database of its own carries its catalogue); the periodic measure would, later.
    const loaded = await loadSite(services, tenantId, siteId);
    const usage = loaded ? await measureSite(services, loaded.site).catch(() => null) : null;
    return { from: where(source), to: where(target), tables: manifest.tables.length, verified: checked, databaseBytes: usage?.databaseBytes ?? null };
  },
  async onFailed(run) {
    await abandonMove(run);
  },
  async onCancelled(run) {
    await abandonMove(run);
  },
});

/**
 * After a failed or cancelled move: a site not yet switched keeps its old home, which gets its login back; the
 * target copy goes. A site already switched (the failure came after) is finished instead. Either way it is HEALTHY.
 */
async function abandonMove(run: JobRun<{ siteId: string; serverId: string; isolation: Isolation }>) {
  const { services, tenantId } = run;
  const { siteId, serverId, isolation } = run.args;
  const site = (await loadSite(services, tenantId, siteId))?.row;
  if (!site?.databaseServerId) return;
  const current = await siteHome(services, site);
  const target = await siteHome(services, site, { serverId, isolation });
  if (!sameHome(current, target)) {
    await services.fleet
      .pool(target.serverId)
      .then((p) => p.query(`drop schema if exists ${ident(`move_${siteId.replace(/-/g, '')}`)} cascade`))
      .catch(() => undefined);
    await dropSiteHome(services, target, { keepRoles: target.serverId === current.serverId }).catch(() => undefined);
  }
  await setLogin(services, current, true);
  const { storage } = await services.fleet.storage(site.clusterId);
  await storage.deletePrefix(movePrefix(tenantId, siteId, run.job.jobId)).catch(() => undefined);
  await setSiteStatus(run, siteId, 'HEALTHY').catch(() => undefined);
}

interface OldCopy {
  tenantId: string;
  siteId: string;
  serverId: string;
  isolation: Isolation;
  currentServerId: string | null;
  currentIsolation: Isolation;
}

/**
 * Drops old copies: the due ones (drop_after passed), or every one of a site or a tenant (`now`: purges and a zero
 * grace period). A copy that is the site's home again (moved back) is only forgotten. Its roles go too when nothing
 * of the site is left on that server.
 */
export async function dropDueOldCopies(services: WorkerServices, opts: { tenantId?: string; siteId?: string; now?: boolean } = {}) {
  const { rows } = await services.ownerPool.query<OldCopy>(
    `select o.tenant_id as "tenantId", o.site_id as "siteId", o.database_server_id as "serverId", o.isolation,
            s.database_server_id as "currentServerId", s.isolation as "currentIsolation"
       from app_private.site_old_copies o join app_public.sites s on s.tenant_id = o.tenant_id and s.id = o.site_id
      where ($1::uuid is null or o.tenant_id = $1) and ($2::uuid is null or o.site_id = $2) and ($3 or o.drop_after <= now())
      order by o.drop_after limit 100`,
    [opts.tenantId ?? null, opts.siteId ?? null, opts.now ?? false],
  );
  let dropped = 0;
  for (const copy of rows) {
    const isHome = copy.serverId === copy.currentServerId && copy.isolation === copy.currentIsolation;
    if (!isHome) {
      const home = await siteHome(services, { id: copy.siteId, databaseServerId: copy.serverId, isolation: copy.isolation, databaseName: null });
      const others = rows.filter((o) => o !== copy && o.siteId === copy.siteId && o.serverId === copy.serverId).length;
      await dropSiteHome(services, home, { keepRoles: copy.serverId === copy.currentServerId || others > 0 });
      dropped++;
    }
    await services.ownerPool.query(`delete from app_private.site_old_copies where tenant_id = $1 and site_id = $2 and database_server_id = $3 and isolation = $4::app_public.site_isolation`, [
      copy.tenantId,
      copy.siteId,
      copy.serverId,
      copy.isolation,
    ]);
  }
  return { dropped, of: rows.length };
}

/** `site-drop-old-copies` (maintenance, every five minutes): the old copies whose grace period has passed. */
export const siteDropOldCopiesQueue = maintenanceQueue({
  name: 'site-drop-old-copies',
  cron: '*/5 * * * *',
  retryLimit: 2,
  retryDelay: 60,
  retryBackoff: false,
  expireInSeconds: 900,
  run: (services) => dropDueOldCopies(services),
});
