import { z } from 'zod';
import type { Context } from '../../graphql/context.ts';
import { badInput, conflict, notFound, translateDatabaseError } from '../../graphql/errors.ts';
import { displayName, parseInput, slug } from '../../graphql/validate.ts';
import { requirePermission, requirePlatformPermission } from '../access/permissions.ts';
import { audited, platformAudited, recordAudit, recordPlatformAudit } from '../audit/service.ts';
import { enqueueTrackedJob } from '../jobs/service.ts';
import { repositoryUrlProblem } from './sources.ts';

/**
 * Releases as a tenant sees them (issue 11 §1–§3): app sources, release groups of them on some clusters, deploy
 * candidates built from a group (a job), and benches deploying a candidate on its cluster (a job). sites:read reads
 * them, sites:write changes them; the policies of sql/0036 check both again on every statement, and only workers
 * record what a build or a deploy found.
 */

const gitName = (what: string) =>
  z
    .string()
    .trim()
    .min(1, `the ${what} cannot be empty`)
    .max(200)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._/+-]*$/, `a ${what} is letters, digits and . _ / + - (a git ref name)`)
    .refine((s) => !s.includes('..'), `a ${what} cannot contain ..`);

const AppSourceInput = z.object({
  repositoryUrl: z.string().trim().min(1).max(2000),
  branch: gitName('branch'),
  version: gitName('version (a tag or a commit)'),
  path: z
    .string()
    .trim()
    .max(500)
    .regex(/^[A-Za-z0-9._/-]+$/, 'the folder is a relative path in the repository')
    .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'the folder is a relative path inside the repository')
    .default('.'),
});

export function createAppSource(ctx: Context, tenantId: string, raw: unknown) {
  return audited(ctx, { tenantId, action: 'createAppSource', targetType: 'AppSource' }, async () => {
    await requirePermission(ctx, tenantId, 'sites:write');
    const input = parseInput(AppSourceInput, raw);
    const problem = repositoryUrlProblem(ctx.services.config, input.repositoryUrl);
    if (problem) throw badInput('repositoryUrl', problem);
    const source = await ctx.db.appSource.create({ data: { tenantId, ...input, createdBy: ctx.userId } }).catch((e) => translateDatabaseError(e, { field: 'input' }));
    await recordAudit(ctx, { tenantId, action: 'createAppSource', targetType: 'AppSource', targetId: source.id, details: input });
    return source;
  });
}

export function deleteAppSource(ctx: Context, tenantId: string, id: string) {
  return audited(ctx, { tenantId, action: 'deleteAppSource', targetType: 'AppSource', targetId: id }, async () => {
    await requirePermission(ctx, tenantId, 'sites:write');
    const used = await ctx.db.releaseGroupApp.count({ where: { tenantId, appSourceId: id } });
    if (used) throw conflict(`the app source is in ${used} release group${used === 1 ? '' : 's'}: take it out first`, 'appSourceId');
    const { count } = await ctx.db.appSource.deleteMany({ where: { tenantId, id } });
    if (!count) throw notFound('app source');
    await recordAudit(ctx, { tenantId, action: 'deleteAppSource', targetType: 'AppSource', targetId: id });
    return id;
  });
}

const ReleaseGroupInput = z.object({
  name: slug,
  title: displayName('title', 100),
  clusters: z.array(slug).max(20).optional(),
  apps: z.array(z.uuid()).min(1, 'a release group has at least one app').max(20),
});

const UpdateReleaseGroupInput = z.object({
  title: displayName('title', 100).optional(),
  clusters: z.array(slug).min(1, 'a release group deploys to at least one cluster').max(20).optional(),
  apps: z.array(z.uuid()).min(1, 'a release group has at least one app').max(20).optional(),
});

/** Cluster names → ids (enabled clusters: the only ones a tenant sees); the default cluster when none is named. */
async function clusterIds(ctx: Context, names: string[] | undefined) {
  if (!names?.length) {
    const cluster = await ctx.db.cluster.findFirst({ where: { isDefault: true }, select: { id: true } });
    if (!cluster) throw badInput('clusters', 'no default cluster is configured: name the clusters');
    return [cluster.id];
  }
  const unique = [...new Set(names)];
  const found = await ctx.db.cluster.findMany({ where: { name: { in: unique }, enabled: true }, select: { id: true, name: true } });
  const missing = unique.filter((n) => !found.some((c) => c.name === n));
  if (missing.length) throw badInput('clusters', `no enabled cluster is named ${missing.map((n) => `"${n}"`).join(', ')}`);
  return found.map((c) => c.id);
}

/** The group's apps, in order: each an app source of the same tenant (another tenant's id is simply not found). */
async function checkedSources(ctx: Context, tenantId: string, ids: string[]) {
  if (new Set(ids).size !== ids.length) throw badInput('apps', 'an app source is listed twice');
  const found = await ctx.db.appSource.findMany({ where: { tenantId, id: { in: ids } }, select: { id: true } });
  const missing = ids.filter((id) => !found.some((s) => s.id === id));
  if (missing.length) throw badInput('apps', `no app source ${missing.join(', ')} in this tenant`);
  return ids;
}

export function createReleaseGroup(ctx: Context, tenantId: string, raw: unknown) {
  return audited(ctx, { tenantId, action: 'createReleaseGroup', targetType: 'ReleaseGroup' }, async () => {
    await requirePermission(ctx, tenantId, 'sites:write');
    const input = parseInput(ReleaseGroupInput, raw);
    const clusters = await clusterIds(ctx, input.clusters);
    const apps = await checkedSources(ctx, tenantId, input.apps);
    const group = await ctx.db.releaseGroup
      .create({ data: { tenantId, name: input.name, title: input.title, createdBy: ctx.userId } })
      .catch((e) => translateDatabaseError(e, { uniqueViolation: conflict(`this tenant already has a release group named "${input.name}"`, 'name') }));
    await ctx.db.releaseGroupCluster.createMany({ data: clusters.map((clusterId) => ({ tenantId, groupId: group.id, clusterId })) });
    await ctx.db.releaseGroupApp.createMany({ data: apps.map((appSourceId, position) => ({ tenantId, groupId: group.id, appSourceId, position })) });
    await recordAudit(ctx, { tenantId, action: 'createReleaseGroup', targetType: 'ReleaseGroup', targetId: group.id, details: { name: input.name, clusters, apps } });
    return group;
  });
}

/** A new title, app list or cluster list; candidates already built keep what they were built from. */
export function updateReleaseGroup(ctx: Context, tenantId: string, groupId: string, raw: unknown) {
  return audited(ctx, { tenantId, action: 'updateReleaseGroup', targetType: 'ReleaseGroup', targetId: groupId }, async () => {
    await requirePermission(ctx, tenantId, 'sites:write');
    const input = parseInput(UpdateReleaseGroupInput, raw);
    if (!(await ctx.db.releaseGroup.findUnique({ where: { tenantId_id: { tenantId, id: groupId } }, select: { id: true } }))) throw notFound('release group');
    if (input.title) await ctx.db.releaseGroup.updateMany({ where: { tenantId, id: groupId }, data: { title: input.title, updatedAt: new Date() } });
    if (input.apps) {
      const apps = await checkedSources(ctx, tenantId, input.apps);
      await ctx.db.releaseGroupApp.deleteMany({ where: { tenantId, groupId } });
      await ctx.db.releaseGroupApp.createMany({ data: apps.map((appSourceId, position) => ({ tenantId, groupId, appSourceId, position })) });
    }
    if (input.clusters) {
      const clusters = await clusterIds(ctx, input.clusters);
      // A cluster with candidates stays (their foreign key): removing it is refused in words.
      await ctx.db.releaseGroupCluster
        .deleteMany({ where: { tenantId, groupId, clusterId: { notIn: clusters } } })
        .catch((e) => translateDatabaseError(e, { field: 'clusters' }));
      await ctx.db.releaseGroupCluster.createMany({ data: clusters.map((clusterId) => ({ tenantId, groupId, clusterId })), skipDuplicates: true });
    }
    await recordAudit(ctx, { tenantId, action: 'updateReleaseGroup', targetType: 'ReleaseGroup', targetId: groupId, details: input });
    return groupId;
  });
}

/** Platform staff: a public group is readable by every tenant, and its benches can carry their sites. */
export function setReleaseGroupPublic(ctx: Context, tenantId: string, groupId: string, isPublic: boolean) {
  return platformAudited(ctx, { action: 'setReleaseGroupPublic', targetType: 'ReleaseGroup', targetId: groupId }, async () => {
    await requirePlatformPermission(ctx, 'platform.fleet:write');
    await ctx.db.$executeRaw`select app.set_release_group_public(${tenantId}::uuid, ${groupId}::uuid, ${isPublic})`.catch((e) => translateDatabaseError(e, { field: 'groupId' }));
    await recordPlatformAudit(ctx, { action: 'setReleaseGroupPublic', targetType: 'ReleaseGroup', targetId: groupId, details: { tenantId, public: isPublic } });
    return groupId;
  });
}

/** A deploy candidate of the group for one of its clusters (the first when none is named), built by a job. */
export function buildDeployCandidate(ctx: Context, tenantId: string, groupId: string, clusterName?: string) {
  return audited(ctx, { tenantId, action: 'buildDeployCandidate', targetType: 'DeployCandidate' }, async () => {
    await requirePermission(ctx, tenantId, 'sites:write');
    const group = await ctx.db.releaseGroup.findUnique({
      where: { tenantId_id: { tenantId, id: groupId } },
      select: { clusters: { select: { cluster: { select: { id: true, name: true } } } }, _count: { select: { apps: true } } },
    });
    if (!group) throw notFound('release group');
    if (!group._count.apps) throw badInput('groupId', 'the release group has no app');
    const cluster = clusterName ? group.clusters.find((c) => c.cluster.name === clusterName)?.cluster : group.clusters[0]?.cluster;
    if (!cluster) throw badInput('cluster', clusterName ? `the release group does not deploy to cluster "${clusterName}"` : 'the release group deploys to no cluster');
    const candidate = await ctx.db.deployCandidate.create({ data: { tenantId, groupId, clusterId: cluster.id, status: 'PENDING', createdBy: ctx.userId } });
    const job = await enqueueTrackedJob(ctx, 'deploy-candidate-build', { tenantId, args: { candidateId: candidate.id } });
    await ctx.db.deployCandidate.updateMany({ where: { tenantId, id: candidate.id }, data: { jobId: job.id } });
    await recordAudit(ctx, { tenantId, action: 'buildDeployCandidate', targetType: 'DeployCandidate', targetId: candidate.id, details: { groupId, cluster: cluster.name, job: job.id } });
    return { candidateId: candidate.id, job };
  });
}

/** A bench of a successful candidate on its cluster: each app server pulls and verifies it (a job). */
export function deployBench(ctx: Context, tenantId: string, candidateId: string) {
  return audited(ctx, { tenantId, action: 'deployBench', targetType: 'Bench' }, async () => {
    await requirePermission(ctx, tenantId, 'sites:write');
    const candidate = await ctx.db.deployCandidate.findUnique({ where: { tenantId_id: { tenantId, id: candidateId } }, select: { status: true, groupId: true, clusterId: true } });
    if (!candidate) throw notFound('deploy candidate');
    if (candidate.status !== 'SUCCESS') throw badInput('candidateId', `only a successful deploy candidate is deployed; this one is ${candidate.status}`);
    const bench = await ctx.db.bench
      .create({ data: { tenantId, groupId: candidate.groupId, candidateId, clusterId: candidate.clusterId, createdBy: ctx.userId } })
      .catch((e) => translateDatabaseError(e, { field: 'candidateId' }));
    const job = await enqueueTrackedJob(ctx, 'bench-deploy', { tenantId, args: { benchId: bench.id } });
    await ctx.db.bench.updateMany({ where: { tenantId, id: bench.id }, data: { jobId: job.id } });
    await recordAudit(ctx, { tenantId, action: 'deployBench', targetType: 'Bench', targetId: bench.id, details: { candidateId, job: job.id } });
    return { benchId: bench.id, job };
  });
}
