import { z } from 'zod';
import type { Context } from '../../graphql/context.ts';
import { badInput, conflict, notFound, quotaExceeded, translateDatabaseError } from '../../graphql/errors.ts';
import { displayName, parseInput, slug } from '../../graphql/validate.ts';
import type { SiteStatus } from '../../db/generated/prisma/enums.ts';
import { audited, recordAudit } from '../audit/service.ts';
import { requirePermission } from '../access/permissions.ts';
import { enqueueTrackedJob } from '../jobs/service.ts';
import { APPS } from './apps.ts';
import { assertTransition } from './lifecycle.ts';
import { newSitePassword } from './credentials.ts';

/** Names a site cannot take on top of the reserved tenant slugs (they are hostnames under BASE_DOMAIN). */
const RESERVED_SITE_NAMES = new Set(['mail', 'smtp', 'imap', 'pop', 'ftp', 'ns', 'dns', 'vpn', 'proxy', 'cdn', 'assets', 'console']);

const CreateSiteInput = z.object({
  name: slug.refine((n) => !RESERVED_SITE_NAMES.has(n), 'this site name is reserved'),
  displayName: displayName('display name', 100),
  apps: z
    .array(z.string().max(64))
    .max(20)
    .optional()
    .transform((apps) => (apps ? [...new Set(apps)] : undefined)),
  cluster: slug.optional(),
  plan: z.string().max(31).optional(),
  /** A release group (the tenant's own or a public one): the site runs its latest ACTIVE bench. */
  releaseGroup: z.object({ tenantId: z.uuid(), id: z.uuid() }).optional(),
});

/** The bench a new site runs: the group's latest ACTIVE one (in the named cluster), and the apps its release has. */
async function benchFor(ctx: Context, group: { tenantId: string; id: string }, clusterName: string | undefined) {
  const found = await ctx.db.releaseGroup.findUnique({ where: { tenantId_id: group }, select: { title: true } });
  if (!found) throw badInput('releaseGroup', 'no such release group (your tenant\'s own, or a public one)');
  const bench = await ctx.db.bench.findFirst({
    where: { tenantId: group.tenantId, groupId: group.id, status: 'ACTIVE', ...(clusterName ? { cluster: { name: clusterName } } : {}) },
    orderBy: [{ activatedAt: 'desc' }, { createdAt: 'desc' }],
    select: { tenantId: true, id: true, clusterId: true, candidate: { select: { apps: true } } },
  });
  if (!bench) throw badInput('releaseGroup', `the release group ${found.title} has no ACTIVE bench${clusterName ? ` in cluster ${clusterName}` : ''}: deploy one first (deployBench)`);
  return { ...bench, apps: (bench.candidate.apps as Array<{ name: string }>).map((a) => a.name) };
}

export const SITE_PROVISION_ATTEMPTS = 3;

async function findSite(ctx: Context, tenantId: string, siteId: string) {
  const site = await ctx.db.site.findUnique({ where: { tenantId_id: { tenantId, id: siteId } } });
  if (!site) throw notFound('site');
  return site;
}

export function createSite(ctx: Context, tenantId: string, raw: unknown) {
  return audited(ctx, { tenantId, action: 'createSite', targetType: 'Site' }, async () => {
    await requirePermission(ctx, tenantId, 'sites:write');
    const input = parseInput(CreateSiteInput, raw);
    const bench = input.releaseGroup ? await benchFor(ctx, input.releaseGroup, input.cluster) : null;
    const apps = input.apps ?? bench?.apps ?? [];
    const available = bench ? bench.apps : Object.keys(APPS);
    const unknown = apps.filter((a) => !available.includes(a));
    if (unknown.length) throw badInput('apps', `unknown app ${unknown.join(', ')}: available apps are ${available.join(', ')}`);
    const tenant = await ctx.db.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { plan: { select: { name: true, maxSites: true } } } });
    const active = await ctx.db.site.count({ where: { tenantId, status: { not: 'DELETED' } } });
    if (active >= tenant.plan.maxSites) throw quotaExceeded(`the ${tenant.plan.name} plan allows ${tenant.plan.maxSites} sites`);
    // The cluster named (an enabled one: the only ones a tenant sees), or the default one.
    const cluster = bench
      ? { id: bench.clusterId }
      : await ctx.db.cluster.findFirst({ where: input.cluster ? { name: input.cluster, enabled: true } : { isDefault: true }, select: { id: true } });
    if (!cluster) throw badInput('cluster', input.cluster ? `no enabled cluster is named "${input.cluster}"` : 'no default cluster is configured');
    const plan = await ctx.db.sitePlan.findFirst({ where: input.plan ? { id: input.plan } : { isDefault: true }, select: { id: true } });
    if (!plan) throw badInput('plan', input.plan ? `no site plan is named "${input.plan}"` : 'no default site plan is configured');
    const site = await ctx.db.site
      .create({
        data: {
          tenantId,
          name: input.name,
          displayName: input.displayName,
          domain: `${input.name}.${ctx.services.config.sites.baseDomain}`,
          apps,
          createdBy: ctx.userId,
          clusterId: cluster.id,
          planId: plan.id,
          ...(bench ? { benchTenantId: bench.tenantId, benchId: bench.id } : {}),
        },
      })
      .catch((e) => translateDatabaseError(e, { uniqueViolation: conflict(`the site name "${input.name}" is taken`, 'name') }));
    // Placed now, in this transaction: no room in the cluster is this request's answer (QUOTA_EXCEEDED), not a failed job.
    await ctx.db.$queryRaw`select app.place_site(${tenantId}::uuid, ${site.id}::uuid)`.catch((e) => translateDatabaseError(e));
    // A released site's apps are modules (seed 004): INSTALLING until its provisioning installs them.
    if (bench) await ctx.db.siteApp.createMany({ data: apps.map((name) => ({ tenantId, siteId: site.id, name, status: 'INSTALLING' as const })) });
    const password = await newSitePassword(ctx, tenantId, site.id);
    const job = await enqueueTrackedJob(ctx, 'site-provision', { tenantId, siteId: site.id, args: { siteId: site.id } });
    await recordAudit(ctx, { tenantId, action: 'createSite', targetType: 'Site', targetId: site.id, details: { name: input.name, apps, cluster: input.cluster ?? null, plan: plan.id, ...(bench ? { bench: bench.id } : {}) } });
    return { site, job, password };
  });
}

export function retrySiteProvisioning(ctx: Context, tenantId: string, siteId: string) {
  return audited(ctx, { tenantId, action: 'retrySiteProvisioning', targetType: 'Site', targetId: siteId }, async () => {
    await requirePermission(ctx, tenantId, 'sites:operate');
    const site = await findSite(ctx, tenantId, siteId);
    assertTransition(site.status, 'PENDING', 'retry the provisioning of');
    await setStatus(ctx, tenantId, siteId, 'PENDING');
    const job = await enqueueTrackedJob(ctx, 'site-provision', { tenantId, siteId, args: { siteId } });
    await recordAudit(ctx, { tenantId, action: 'retrySiteProvisioning', targetType: 'Site', targetId: siteId });
    return { site, job };
  });
}

async function setStatus(ctx: Context, tenantId: string, siteId: string, status: SiteStatus, extra: Record<string, unknown> = {}) {
  // The database has the last word on the move (sql/0016): a concurrent change makes it TPIN0, BAD_USER_INPUT on siteId.
  await ctx.db.site
    .updateMany({ where: { tenantId, id: siteId }, data: { status, updatedAt: new Date(), ...extra } })
    .catch((e) => translateDatabaseError(e, { field: 'siteId' }));
}

/** suspend / resume (sites:operate) and delete (sites:write): moves of the state machine. */
export function changeSiteState(ctx: Context, tenantId: string, siteId: string, action: 'suspend' | 'resume' | 'delete') {
  const auditAction = `${action}Site`;
  return audited(ctx, { tenantId, action: auditAction, targetType: 'Site', targetId: siteId }, async () => {
    await requirePermission(ctx, tenantId, action === 'delete' ? 'sites:write' : 'sites:operate');
    const site = await findSite(ctx, tenantId, siteId);
    const to: SiteStatus = action === 'suspend' ? 'SUSPENDED' : action === 'resume' ? 'HEALTHY' : 'SOFT_DELETED';
    assertTransition(site.status, to, action);
    const extra =
      action === 'delete'
        ? { deletedAt: new Date(), retentionUntil: new Date(Date.now() + ctx.services.config.sites.retentionDays * 86400_000) }
        : {};
    await setStatus(ctx, tenantId, siteId, to, extra);
    await recordAudit(ctx, { tenantId, action: auditAction, targetType: 'Site', targetId: siteId, details: { from: site.status, to } });
    return siteId;
  });
}

const MAX_CONFIG_BYTES = 64 * 1024;

export function updateSiteConfig(ctx: Context, tenantId: string, siteId: string, config: unknown) {
  return audited(ctx, { tenantId, action: 'updateSiteConfig', targetType: 'Site', targetId: siteId }, async () => {
    await requirePermission(ctx, tenantId, 'sites:write');
    const site = await findSite(ctx, tenantId, siteId);
    if (config === null || typeof config !== 'object' || Array.isArray(config)) throw badInput('config', 'the site config is a JSON object');
    if (Buffer.byteLength(JSON.stringify(config)) > MAX_CONFIG_BYTES) throw badInput('config', `the site config is limited to ${MAX_CONFIG_BYTES} bytes`);
    if (site.status === 'DELETED' || site.status === 'SOFT_DELETED') throw badInput('siteId', `cannot configure a site that is ${site.status}`);
    await ctx.db.site.updateMany({ where: { tenantId, id: siteId }, data: { config: config as object, updatedAt: new Date() } });
    await recordAudit(ctx, { tenantId, action: 'updateSiteConfig', targetType: 'Site', targetId: siteId });
    return siteId;
  });
}
