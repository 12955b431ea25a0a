import crypto from 'node:crypto';
import type { Context } from '../../graphql/context.ts';
import { badInput, notFound, translateDatabaseError } from '../../graphql/errors.ts';
import type { SiteAppStatus } from '../../db/generated/prisma/enums.ts';
import { requirePermission } from '../access/permissions.ts';
import { audited, recordAudit } from '../audit/service.ts';
import { backupPrefix } from '../backups/service.ts';
import { enqueueTrackedJob } from '../jobs/service.ts';
import { assertTransition } from '../sites/lifecycle.ts';

/**
 * The requests behind a released site's modules (issue 11 §4): each moves the app (or the site) into its
 * transitional state and asks for the job that does the work (site-modules.ts), in the request's transaction.
 */

type Change = 'install' | 'enable' | 'disable' | 'remove';
const MOVES: Record<Change, { from: SiteAppStatus[]; to: SiteAppStatus }> = {
  install: { from: ['REGISTERED'], to: 'INSTALLING' },
  enable: { from: ['DISABLED'], to: 'ENABLED' },
  disable: { from: ['ENABLED'], to: 'DISABLED' },
  remove: { from: ['ENABLED', 'DISABLED'], to: 'REMOVING' },
};

async function siteWithBench(ctx: Context, tenantId: string, siteId: string) {
  const site = await ctx.db.site.findUnique({
    where: { tenantId_id: { tenantId, id: siteId } },
    select: { status: true, benchTenantId: true, benchId: true },
  });
  if (!site) throw notFound('site');
  const bench =
    site.benchTenantId && site.benchId
      ? await ctx.db.bench.findUnique({ where: { tenantId_id: { tenantId: site.benchTenantId, id: site.benchId } }, select: { groupId: true, clusterId: true, candidate: { select: { apps: true } } } })
      : null;
  return { ...site, bench };
}

async function releasedSite(ctx: Context, tenantId: string, siteId: string) {
  const site = await siteWithBench(ctx, tenantId, siteId);
  if (!site.benchId || !site.benchTenantId) throw badInput('siteId', 'the site runs the built-in apps, not a release: create it on a release group (createSite releaseGroup) to manage its apps');
  if (!site.bench) throw badInput('siteId', "the site's bench can no longer be read here (its release group was made private)");
  return site as typeof site & { benchId: string; benchTenantId: string; bench: NonNullable<typeof site.bench> };
}

/** install (a release app the site has not got yet), enable, disable, remove: one app, one job. */
export function changeSiteApp(ctx: Context, tenantId: string, siteId: string, name: string, change: Change) {
  const action = `${change}SiteApp`;
  return audited(ctx, { tenantId, action, targetType: 'Site', targetId: siteId }, async () => {
    await requirePermission(ctx, tenantId, 'sites:write');
    const site = await releasedSite(ctx, tenantId, siteId);
    if (site.status !== 'HEALTHY') throw badInput('siteId', `the site is ${site.status}: apps change on a HEALTHY site`);
    const existing = await ctx.db.siteApp.findUnique({ where: { tenantId_siteId_name: { tenantId, siteId, name } } });
    if (change === 'install' && !existing) {
      const offered = (site.bench.candidate.apps as Array<{ name: string }>).map((a) => a.name);
      if (!offered.includes(name)) throw badInput('app', `the site's release has no app ${name}: it has ${offered.join(', ')}`);
      await ctx.db.siteApp.create({ data: { tenantId, siteId, name, status: 'REGISTERED' } });
    } else if (!existing) throw badInput('app', `the site has no app ${name}`);
    const move = MOVES[change];
    const current = existing?.status ?? 'REGISTERED';
    if (!move.from.includes(current)) throw badInput('app', `${name} is ${current}: it cannot be ${change === 'remove' ? 'removed' : `${change}d`} now`);
    // enable/disable are instant (a state the module jobs read); install and remove change the site's schema.
    const job = await enqueueTrackedJob(ctx, 'site-app-change', { tenantId, siteId, args: { siteId, app: name, change, from: current as 'REGISTERED' | 'ENABLED' | 'DISABLED' } });
    await ctx.db.siteApp
      .updateMany({ where: { tenantId, siteId, name }, data: { status: change === 'enable' || change === 'disable' ? current : move.to, jobId: job.id, error: null, updatedAt: new Date() } })
      .catch((e) => translateDatabaseError(e, { field: 'app' }));
    await recordAudit(ctx, { tenantId, action, targetType: 'Site', targetId: siteId, details: { app: name, job: job.id } });
    return job;
  });
}

/**
 * Moves a HEALTHY site to another ACTIVE bench of its release group (by default the group's latest): UPDATING, a
 * backup row (kept like any backup, taken by the job first) and the job. With `only`, one app's update: refused
 * unless that app is the only one the newer bench changes (the job then migrates it alone; the others have nothing
 * pending).
 */
export function updateSite(ctx: Context, tenantId: string, siteId: string, bench?: { tenantId: string; id: string }, only?: string) {
  return audited(ctx, { tenantId, action: 'updateSite', targetType: 'Site', targetId: siteId }, async () => {
    await requirePermission(ctx, tenantId, 'sites:write');
    await requirePermission(ctx, tenantId, 'backups:write');
    const site = await releasedSite(ctx, tenantId, siteId);
    const target = await ctx.db.bench.findFirst({
      where: bench
        ? { tenantId: bench.tenantId, id: bench.id }
        : { tenantId: site.benchTenantId, groupId: site.bench.groupId, clusterId: site.bench.clusterId, status: 'ACTIVE' },
      orderBy: [{ activatedAt: 'desc' }, { createdAt: 'desc' }],
      select: { tenantId: true, id: true, status: true, groupId: true, clusterId: true, candidate: { select: { apps: true } } },
    });
    if (!target) throw badInput('bench', bench ? 'no such bench' : 'the release group has no ACTIVE bench');
    if (target.status !== 'ACTIVE') throw badInput('bench', `the bench is ${target.status}: a site moves to an ACTIVE bench`);
    if (target.tenantId !== site.benchTenantId || target.groupId !== site.bench.groupId) throw badInput('bench', "the bench is not of the site's release group");
    if (target.clusterId !== site.bench.clusterId) throw badInput('bench', 'the bench is in another cluster than the site');
    if (target.id === site.benchId) throw badInput('bench', 'the site already runs this bench');
    if (only) {
      // One app's update: the newer bench may change that app only; the others stay at the versions they have.
      const installed = await ctx.db.siteApp.findMany({ where: { tenantId, siteId }, select: { name: true, version: true } });
      if (!installed.some((m) => m.name === only)) throw badInput('app', `the site has no app ${only}`);
      const offered = new Map((target.candidate.apps as Array<{ name: string; version: string }>).map((a) => [a.name, a.version]));
      const others = installed.filter((m) => m.name !== only && offered.get(m.name) !== m.version).map((m) => `${m.name} ${m.version ?? '—'} → ${offered.get(m.name) ?? 'absent'}`);
      if (others.length) throw badInput('app', `the newer bench changes other apps too (${others.join(', ')}): update the whole site`);
      if (offered.get(only) === installed.find((m) => m.name === only)!.version) throw badInput('app', `${only} is already at ${offered.get(only)} on that bench`);
    }
    assertTransition(site.status, 'UPDATING', 'update');
    await ctx.db.site.updateMany({ where: { tenantId, id: siteId }, data: { status: 'UPDATING', updatedAt: new Date() } }).catch((e) => translateDatabaseError(e, { field: 'siteId' }));
    const backupId = crypto.randomUUID();
    await ctx.db.backup.create({
      data: {
        tenantId,
        id: backupId,
        siteId,
        objectKey: backupPrefix(tenantId, backupId),
        requestedBy: ctx.userId,
        expiresAt: new Date(Date.now() + ctx.services.config.backups.retentionDays * 86400_000),
      },
    });
    const job = await enqueueTrackedJob(ctx, 'site-update', { tenantId, siteId, args: { siteId, benchTenantId: target.tenantId, benchId: target.id, backupId } });
    await recordAudit(ctx, { tenantId, action: 'updateSite', targetType: 'Site', targetId: siteId, details: { from: site.benchId, to: target.id, backupId, job: job.id, ...(only ? { app: only } : {}) } });
    return job;
  });
}

/** runModuleJob: one module job now, through the same definer function the scheduler uses (sql/0038). */
export function runModuleJob(ctx: Context, tenantId: string, siteId: string, app: string, job: string) {
  return audited(ctx, { tenantId, action: 'runModuleJob', targetType: 'Site', targetId: siteId }, async () => {
    await requirePermission(ctx, tenantId, 'sites:operate');
    const [row] = await ctx.db
      .$queryRaw<Array<{ id: string }>>`select app.enqueue_module_job(${tenantId}::uuid, ${siteId}::uuid, ${app}, ${job}, null)::text as id`
      .catch((e) => translateDatabaseError(e, { field: 'job', columns: { job: 'job', app: 'app' } }));
    await recordAudit(ctx, { tenantId, action: 'runModuleJob', targetType: 'Site', targetId: siteId, details: { module: `${app}/${job}`, job: row!.id } });
    return row!.id;
  });
}
