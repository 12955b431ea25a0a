import fs from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { builder } from '../../graphql/builder.ts';
import { tenantScopedIdFromGlobalId, uuidFromGlobalId } from '../../graphql/ids.ts';
import { FleetCheckStatusEnum } from '../fleet/types.ts';
import { MANIFEST_FILE, parseManifest } from './app-format.ts';
import { BUILTIN_APPS_DIR } from './builtin.ts';
import * as registries from './registries.ts';
import * as releases from './service.ts';
import { changeSiteApp, runModuleJob, updateSite } from './site-service.ts';

/**
 * Releases in GraphQL (issue 11). What a caller sees is the policies' decision (sql/0036): a tenant's sources,
 * groups, candidates and benches for its members with sites:read, public groups (and their successful candidates
 * and benches) for everyone signed in, registries for platform staff only. Registry passwords are write-only.
 */

builder.prismaNode('Registry', {
  id: { field: 'id' },
  nullable: true,
  description: 'The OCI registry of a cluster (seed 001 Local Registry). The password is write-only.',
  fields: (t) => ({
    cluster: t.relation('cluster'),
    url: t.exposeString('url'),
    namespace: t.exposeString('namespace', { description: 'Repositories are <namespace>/<tenant slug>/<release group name>.' }),
    username: t.exposeString('username'),
    checkStatus: t.expose('checkStatus', { type: FleetCheckStatusEnum }),
    checkError: t.exposeString('checkError', { nullable: true }),
    checkedAt: t.expose('checkedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.prismaObjectFields('Cluster', (t) => ({
  registry: t.relation('registry', { nullable: true, description: 'Null unless you hold platform.fleet:read (RLS), or when the cluster has none.' }),
}));

builder.prismaNode('AppSource', {
  id: { field: 'tenantId_id' },
  nullable: true,
  description: 'Where an app is fetched from (seed 001 App Source): a repository, a branch, a tag or commit on it, and the app\'s folder.',
  fields: (t) => ({
    repositoryUrl: t.exposeString('repositoryUrl', { description: 'https://…, builtin:<app> (shipped with Tenantplane), or file:///… inside APP_SOURCE_FILE_ROOTS.' }),
    branch: t.exposeString('branch'),
    version: t.exposeString('version', { description: 'A tag (v2.0.0) or a commit on the branch.' }),
    path: t.exposeString('path'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const DeployCandidateStatusEnum = builder.enumType('DeployCandidateStatus', {
  description: 'DRAFT → PENDING → RUNNING → SUCCESS | FAILURE (enforced by the database).',
  values: ['DRAFT', 'PENDING', 'RUNNING', 'SUCCESS', 'FAILURE'] as const,
});
const BenchStatusEnum = builder.enumType('BenchStatus', {
  description: 'PENDING (app servers pulling) → ACTIVE, or BROKEN with the reason; ARCHIVED once no site uses it.',
  values: ['PENDING', 'ACTIVE', 'BROKEN', 'ARCHIVED'] as const,
});
const BenchServerStatusEnum = builder.enumType('BenchServerStatus', { values: ['PENDING', 'PULLED', 'FAILED'] as const });

const ResolvedApp = builder.objectRef<{ name: string; version: string; commit: string }>('ResolvedApp').implement({
  description: 'An app as a build found it: its manifest name and version, and the commit its version named.',
  fields: (t) => ({ name: t.exposeString('name'), version: t.exposeString('version'), commit: t.exposeString('commit') }),
});

builder.prismaNode('ReleaseGroup', {
  id: { field: 'tenantId_id' },
  nullable: true,
  description: 'Apps released together to some clusters (seed 001 Release Group). Public groups are readable by every tenant.',
  fields: (t) => ({
    name: t.exposeString('name'),
    title: t.exposeString('title'),
    public: t.exposeBoolean('public', { description: 'Set by platform staff (setReleaseGroupPublic).' }),
    apps: t.prismaField({
      type: ['AppSource'],
      description: 'Its app sources, in order.',
      select: (_args, _ctx, nested) => ({ apps: { orderBy: { position: 'asc' }, select: { source: nested() } } }),
      resolve: (_query, group) => group.apps.map((a) => a.source),
    }),
    clusters: t.prismaField({
      type: ['Cluster'],
      select: (_args, _ctx, nested) => ({ clusters: { select: { cluster: nested() } } }),
      resolve: (_query, group) => group.clusters.map((c) => c.cluster),
    }),
    candidates: t.relatedConnection('candidates', { totalCount: true, cursor: 'tenantId_id', query: () => ({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }) }),
    benches: t.relatedConnection('benches', {
      totalCount: true,
      cursor: 'tenantId_id',
      args: { status: t.arg({ type: BenchStatusEnum }) },
      query: (args) => ({ where: args.status ? { status: args.status } : {}, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }),
    }),
    latestActiveBench: t.prismaField({
      type: 'Bench',
      nullable: true,
      description: 'Where new sites of this group go by default.',
      select: (_args, _ctx, nested) => ({ benches: nested({ where: { status: 'ACTIVE' }, orderBy: [{ activatedAt: 'desc' }], take: 1 }) }),
      resolve: (_query, group) => group.benches[0] ?? null,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.prismaNode('DeployCandidate', {
  id: { field: 'tenantId_id' },
  nullable: true,
  description: 'One build of a release group, pushed to its cluster\'s registry as an OCI artifact (seed 001 Deploy Candidate).',
  fields: (t) => ({
    group: t.relation('group'),
    cluster: t.relation('cluster'),
    status: t.expose('status', { type: DeployCandidateStatusEnum }),
    imageName: t.exposeString('imageName', { nullable: true, description: '<registry host>/<namespace>/<tenant>/<group>.' }),
    imageTag: t.exposeString('imageTag', { nullable: true }),
    manifestDigest: t.exposeString('manifestDigest', { nullable: true, description: 'What app servers pull it by: the sha256 of its OCI manifest.' }),
    layerDigest: t.exposeString('layerDigest', { nullable: true, description: 'The sha256 of the release tar.' }),
    apps: t.field({ type: [ResolvedApp], resolve: (c) => c.apps as Array<{ name: string; version: string; commit: string }> }),
    error: t.exposeString('error', { nullable: true }),
    job: t.relation('job', { nullable: true, description: 'The build, with its progress and log.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.prismaObject('BenchServer', {
  description: 'What one app server of the bench\'s cluster reported for its pull.',
  fields: (t) => ({
    serverName: t.exposeString('serverName'),
    status: t.expose('status', { type: BenchServerStatusEnum }),
    digest: t.exposeString('digest', { nullable: true }),
    error: t.exposeString('error', { nullable: true }),
    reportedAt: t.expose('reportedAt', { type: 'DateTime', nullable: true }),
  }),
});

builder.prismaNode('Bench', {
  id: { field: 'tenantId_id' },
  nullable: true,
  description: 'A successful deploy candidate deployed on its cluster\'s app servers (seed 001 Bench); sites run on an ACTIVE one.',
  fields: (t) => ({
    group: t.relation('group'),
    candidate: t.relation('candidate'),
    cluster: t.relation('cluster'),
    status: t.expose('status', { type: BenchStatusEnum }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why it is BROKEN.' }),
    servers: t.relation('servers', { description: 'Each app server\'s pull (the tenant\'s own benches; empty on another tenant\'s public one).' }),
    job: t.relation('job', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    activatedAt: t.expose('activatedAt', { type: 'DateTime', nullable: true }),
  }),
});

const SiteAppStatusEnum = builder.enumType('SiteAppStatus', {
  description: 'Seed 004: REGISTERED → INSTALLING → ENABLED ⇄ DISABLED; ENABLED/DISABLED → UPDATING → back; → REMOVING → gone.',
  values: ['REGISTERED', 'INSTALLING', 'ENABLED', 'DISABLED', 'UPDATING', 'REMOVING'] as const,
});

const ModuleJobDefinition = builder.objectRef<{ name: string; schedule: string; sql: string; priority: number }>('ModuleJobDefinition').implement({
  description: "A module job the installed version declares: SQL run inside the site on a cron schedule (UTC).",
  fields: (t) => ({ name: t.exposeString('name'), schedule: t.exposeString('schedule'), sql: t.exposeString('sql'), priority: t.exposeInt('priority') }),
});

builder.prismaObjectFields('Job', (t) => ({
  module: t.exposeString('module', { nullable: true, description: 'A module job: <app>/<job name>.' }),
  priority: t.exposeInt('priority', { description: 'Higher runs first (module jobs; 0 otherwise).' }),
  scheduledAt: t.expose('scheduledAt', { type: 'DateTime', nullable: true, description: 'When a module job fell due.' }),
  errorDetail: t.expose('errorDetail', { type: 'JSON', nullable: true, description: "A module job's error: { message, sqlstate, detail }." }),
}));

builder.prismaObject('SiteApp', {
  description: "An app installed in a released site (seed 004 Module): its state, the version and manifest installed, the last error.",
  fields: (t) => ({
    name: t.exposeString('name'),
    status: t.expose('status', { type: SiteAppStatusEnum }),
    version: t.exposeString('version', { nullable: true, description: 'Null until it is first installed.' }),
    manifest: t.expose('manifest', { type: 'JSON', description: 'tenantplane-app.json as installed.' }),
    error: t.exposeString('error', { nullable: true, description: 'Why the last change failed (the app is back where it was).' }),
    jobs: t.field({
      type: [ModuleJobDefinition],
      description: 'The module jobs of the installed version.',
      resolve: (a) => ((a.manifest as { jobs?: Array<{ name: string; schedule: string; sql: string; priority?: number }> }).jobs ?? []).map((j) => ({ ...j, priority: j.priority ?? 0 })),
    }),
    moduleJobs: t.prismaField({
      type: ['Job'],
      description: 'Its latest module jobs (20), newest first.',
      select: { tenantId: true, siteId: true, name: true },
      resolve: (query, a, _args, ctx) =>
        ctx.db.job.findMany({ ...query, where: { tenantId: a.tenantId, siteId: a.siteId, module: { startsWith: `${a.name}/` } }, orderBy: [{ createdAt: 'desc' }], take: 20 }),
    }),
    job: t.relation('job', { nullable: true, description: 'The last change, with its progress and log.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.prismaObjectFields('Site', (t) => ({
  bench: t.prismaField({
    type: 'Bench',
    nullable: true,
    description: 'The bench the site runs (null: the built-in apps of older sites). It may be a public group\'s, of another tenant.',
    select: { benchTenantId: true, benchId: true },
    resolve: (query, site, _args, ctx) =>
      site.benchTenantId && site.benchId ? ctx.db.bench.findUnique({ ...query, where: { tenantId_id: { tenantId: site.benchTenantId, id: site.benchId } } }) : null,
  }),
  modules: t.relation('siteApps', { description: "The apps of a released site, by name.", query: () => ({ orderBy: { name: 'asc' } }) }),
}));

builder.prismaObjectFields('Tenant', (t) => ({
  appSources: t.relatedConnection('appSources', { totalCount: true, cursor: 'tenantId_id', query: () => ({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }) }),
  releaseGroups: t.relatedConnection('releaseGroups', { totalCount: true, cursor: 'tenantId_id', query: () => ({ orderBy: [{ name: 'asc' }] }) }),
}));

const BuiltinApp = builder.objectRef<{ name: string; description: string; versions: string[] }>('BuiltinApp').implement({
  description: 'An app shipped with Tenantplane: an app source with repositoryUrl builtin:<name>, branch main, version v<version>.',
  fields: (t) => ({
    name: t.exposeString('name'),
    repositoryUrl: t.string({ resolve: (a) => `builtin:${a.name}` }),
    description: t.exposeString('description'),
    versions: t.exposeStringList('versions', { description: 'Its released versions, oldest first (tags v<version>).' }),
  }),
});

async function builtinApps() {
  const out: Array<{ name: string; description: string; versions: string[] }> = [];
  for (const name of (await fs.readdir(BUILTIN_APPS_DIR)).sort()) {
    const current = await fs.readFile(path.join(BUILTIN_APPS_DIR, name, MANIFEST_FILE), 'utf8').then(parseManifest, () => null);
    if (!current) continue;
    const older = await fs.readdir(path.join(BUILTIN_APPS_DIR, name, 'releases')).catch(() => [] as string[]);
    const versions = [...older.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)), current.version].sort(semver.compare);
    out.push({ name: current.name, description: current.description, versions });
  }
  return out;
}

builder.queryFields((t) => ({
  builtinApps: t.field({ type: [BuiltinApp], description: 'The apps shipped with Tenantplane, to make app sources of.', resolve: () => builtinApps() }),
  publicReleaseGroups: t.prismaField({
    type: ['ReleaseGroup'],
    description: 'Release groups platform staff made public: any tenant may create sites on their benches.',
    resolve: (query, _root, _args, ctx) => ctx.db.releaseGroup.findMany({ ...query, where: { public: true }, orderBy: { title: 'asc' } }),
  }),
}));

// ---------------------------------------------------------------------------------------------------------------
// Mutations

const CreateAppSourceInput = builder.inputType('CreateAppSourceInput', {
  fields: (t) => ({
    tenantId: t.id({ required: true }),
    repositoryUrl: t.string({ required: true, description: 'https://…, builtin:<app>, or file:///… inside APP_SOURCE_FILE_ROOTS.' }),
    branch: t.string({ required: true }),
    version: t.string({ required: true, description: 'A tag or a commit on the branch; a semver tag must match the manifest\'s version.' }),
    path: t.string({ description: 'The app\'s folder in the repository (default: its root).' }),
  }),
});
const CreateReleaseGroupInput = builder.inputType('CreateReleaseGroupInput', {
  fields: (t) => ({
    tenantId: t.id({ required: true }),
    name: t.string({ required: true, description: 'DNS-safe, unique in the tenant: part of the registry repository.' }),
    title: t.string({ required: true }),
    apps: t.idList({ required: true, description: 'AppSource ids of this tenant, in the order they install.' }),
    clusters: t.stringList({ description: 'Cluster names; the default cluster when omitted.' }),
  }),
});
const UpdateReleaseGroupInput = builder.inputType('UpdateReleaseGroupInput', {
  fields: (t) => ({
    title: t.string(),
    apps: t.idList({ description: 'Replaces the apps (the next candidate builds these).' }),
    clusters: t.stringList({ description: 'Replaces the clusters; one with candidates cannot be taken out.' }),
  }),
});

const CandidatePayload = builder.objectRef<{ tenantId: string; id: string; jobId: string }>('DeployCandidatePayload').implement({
  description: 'A deploy candidate and the job building it.',
  fields: (t) => ({
    candidate: t.prismaField({ type: 'DeployCandidate', resolve: (query, p, _a, ctx) => ctx.db.deployCandidate.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId: p.tenantId, id: p.id } } }) }),
    job: t.prismaField({ type: 'Job', resolve: (query, p, _a, ctx) => ctx.db.job.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId: p.tenantId, id: p.jobId } } }) }),
  }),
});
const BenchPayload = builder.objectRef<{ tenantId: string; id: string; jobId: string }>('BenchPayload').implement({
  description: 'A bench and the job deploying it.',
  fields: (t) => ({
    bench: t.prismaField({ type: 'Bench', resolve: (query, p, _a, ctx) => ctx.db.bench.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId: p.tenantId, id: p.id } } }) }),
    job: t.prismaField({ type: 'Job', resolve: (query, p, _a, ctx) => ctx.db.job.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId: p.tenantId, id: p.jobId } } }) }),
  }),
});

const CreateRegistryInput = builder.inputType('CreateRegistryInput', {
  fields: (t) => ({
    clusterId: t.id({ required: true, description: 'One registry per cluster.' }),
    url: t.string({ required: true, description: 'http(s)://host:port of the OCI registry.' }),
    namespace: t.string({ required: true }),
    username: t.string({ required: true }),
    password: t.string({ required: true, description: 'Write-only: sealed at rest, never returned.' }),
  }),
});
const UpdateRegistryInput = builder.inputType('UpdateRegistryInput', {
  fields: (t) => ({
    registryId: t.id({ required: true }),
    url: t.string(),
    namespace: t.string(),
    username: t.string(),
    password: t.string({ description: 'Rotates the stored password (write-only).' }),
  }),
});

const scoped = (type: string, field: string) => (raw: unknown) => tenantScopedIdFromGlobalId(type, String(raw), field);
const groupIdOf = scoped('ReleaseGroup', 'groupId');
const given = <T extends Record<string, unknown>>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined));
const FLEET_WRITE = { permission: 'platform.fleet:write' } as const;

builder.mutationFields((t) => ({
  createAppSource: t.prismaField({
    type: 'AppSource',
    extensions: { permission: 'sites:write' },
    description: 'An app source of the tenant; nothing is fetched until a candidate is built.',
    args: { input: t.arg({ type: CreateAppSourceInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const tenantId = uuidFromGlobalId('Tenant', String(input.tenantId), 'tenantId');
      const source = await releases.createAppSource(ctx, tenantId, given({ repositoryUrl: input.repositoryUrl, branch: input.branch, version: input.version, path: input.path }));
      return ctx.db.appSource.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId, id: source.id } } });
    },
  }),
  deleteAppSource: t.id({
    extensions: { permission: 'sites:write' },
    description: 'Deletes an app source that no release group uses; answers its id.',
    args: { appSourceId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const { tenantId, id } = scoped('AppSource', 'appSourceId')(args.appSourceId);
      await releases.deleteAppSource(ctx, tenantId, id);
      return args.appSourceId;
    },
  }),
  createReleaseGroup: t.prismaField({
    type: 'ReleaseGroup',
    extensions: { permission: 'sites:write' },
    args: { input: t.arg({ type: CreateReleaseGroupInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const tenantId = uuidFromGlobalId('Tenant', String(input.tenantId), 'tenantId');
      const apps = input.apps.map((a) => {
        const ref = scoped('AppSource', 'apps')(a);
        return ref.tenantId === tenantId ? ref.id : '00000000-0000-0000-0000-000000000000';
      });
      const group = await releases.createReleaseGroup(ctx, tenantId, given({ name: input.name, title: input.title, apps, clusters: input.clusters }));
      return ctx.db.releaseGroup.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId, id: group.id } } });
    },
  }),
  updateReleaseGroup: t.prismaField({
    type: 'ReleaseGroup',
    extensions: { permission: 'sites:write' },
    args: { groupId: t.arg.id({ required: true }), input: t.arg({ type: UpdateReleaseGroupInput, required: true }) },
    resolve: async (query, _root, args, ctx) => {
      const { tenantId, id } = groupIdOf(args.groupId);
      const apps = args.input.apps?.map((a) => {
        const ref = scoped('AppSource', 'apps')(a);
        return ref.tenantId === tenantId ? ref.id : '00000000-0000-0000-0000-000000000000';
      });
      await releases.updateReleaseGroup(ctx, tenantId, id, given({ title: args.input.title, apps, clusters: args.input.clusters }));
      return ctx.db.releaseGroup.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId, id } } });
    },
  }),
  setReleaseGroupPublic: t.prismaField({
    type: 'ReleaseGroup',
    extensions: FLEET_WRITE,
    nullable: true,
    description:
      'Platform staff: a public group is readable by every tenant, and its benches can carry their sites. Answers the group, or null once it is private again and you are not in its tenant.',
    args: { groupId: t.arg.id({ required: true }), public: t.arg.boolean({ required: true }) },
    resolve: async (query, _root, args, ctx) => {
      const { tenantId, id } = groupIdOf(args.groupId);
      await releases.setReleaseGroupPublic(ctx, tenantId, id, args.public);
      return ctx.db.releaseGroup.findUnique({ ...query, where: { tenantId_id: { tenantId, id } } });
    },
  }),
  buildDeployCandidate: t.field({
    type: CandidatePayload,
    extensions: { permission: 'sites:write' },
    description:
      "Builds the group's apps into a deploy candidate (a job): fetch each at its version, check its manifest, run every migration in a scratch schema as an unprivileged role, pack, push to the cluster's registry, pull back and verify.",
    args: { groupId: t.arg.id({ required: true }), cluster: t.arg.string({ description: "One of the group's clusters (by name); its first when omitted." }) },
    resolve: async (_root, args, ctx) => {
      const { tenantId, id } = groupIdOf(args.groupId);
      const { candidateId, job } = await releases.buildDeployCandidate(ctx, tenantId, id, args.cluster ?? undefined);
      return { tenantId, id: candidateId, jobId: job.id };
    },
  }),
  deployBench: t.field({
    type: BenchPayload,
    extensions: { permission: 'sites:write' },
    description: "Deploys a successful candidate as a bench (a job): every app server of its cluster pulls the artifact and checks its digest; ACTIVE, or BROKEN with the reason.",
    args: { candidateId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const { tenantId, id } = scoped('DeployCandidate', 'candidateId')(args.candidateId);
      const { benchId, job } = await releases.deployBench(ctx, tenantId, id);
      return { tenantId, id: benchId, jobId: job.id };
    },
  }),
  ...Object.fromEntries(
    (['install', 'enable', 'disable', 'remove'] as const).map((change) => [
      `${change}SiteApp`,
      t.prismaField({
        type: 'Job',
        extensions: { permission: 'sites:write' },
        description: {
          install: "Installs an app of the site's release (a job): its migrations and health check in one transaction, inside the site.",
          enable: 'DISABLED → ENABLED: its module jobs run again.',
          disable: 'ENABLED → DISABLED: its tables and data stay; its module jobs stop.',
          remove: "Removes an app (a job): its uninstall script in one transaction; an app without one cannot be removed.",
        }[change],
        args: { siteId: t.arg.id({ required: true }), app: t.arg.string({ required: true }) },
        resolve: async (query, _root, args, ctx) => {
          const { tenantId, id } = scoped('Site', 'siteId')(args.siteId);
          const job = await changeSiteApp(ctx, tenantId, id, args.app, change);
          return ctx.db.job.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId, id: job.id } } });
        },
      }),
    ]),
  ),
  runModuleJob: t.prismaField({
    type: 'Job',
    extensions: { permission: 'sites:operate' },
    description: "Runs one of an ENABLED app's module jobs now (as its schedule would), a tracked job carrying its module, priority and time.",
    args: { siteId: t.arg.id({ required: true }), app: t.arg.string({ required: true }), job: t.arg.string({ required: true }) },
    resolve: async (query, _root, args, ctx) => {
      const { tenantId, id } = scoped('Site', 'siteId')(args.siteId);
      const jobId = await runModuleJob(ctx, tenantId, id, args.app, args.job);
      return ctx.db.job.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId, id: jobId } } });
    },
  }),
  updateSite: t.prismaField({
    type: 'Job',
    extensions: { permission: 'sites:write' },
    description:
      "Moves a HEALTHY site to another ACTIVE bench of its release group (its latest by default), as a job: a backup first, every app's new migrations and health checks in one transaction, and on any failure the backup restored and the reason recorded — the site ends as it was.",
    args: {
      siteId: t.arg.id({ required: true }),
      bench: t.arg.id({ description: 'A Bench id; the group\'s latest ACTIVE bench when omitted.' }),
      app: t.arg.string({ description: 'Update this one app only: refused unless it is the only app the newer bench changes.' }),
    },
    resolve: async (query, _root, args, ctx) => {
      const { tenantId, id } = scoped('Site', 'siteId')(args.siteId);
      const bench = args.bench ? scoped('Bench', 'bench')(args.bench) : undefined;
      const job = await updateSite(ctx, tenantId, id, bench, args.app ?? undefined);
      return ctx.db.job.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId, id: job.id } } });
    },
  }),
  createRegistry: t.prismaField({
    type: 'Registry',
    extensions: FLEET_WRITE,
    description: 'Platform staff: the OCI registry of a cluster that has none (UNCHECKED until checkRegistry).',
    args: { input: t.arg({ type: CreateRegistryInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const { clusterId, ...rest } = input;
      const id = await registries.createRegistry(ctx, uuidFromGlobalId('Cluster', String(clusterId), 'clusterId'), rest);
      return ctx.db.registry.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  updateRegistry: t.prismaField({
    type: 'Registry',
    extensions: FLEET_WRITE,
    description: 'Platform staff: changes a registry, which becomes UNCHECKED.',
    args: { input: t.arg({ type: UpdateRegistryInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const { registryId, ...rest } = input;
      const id = uuidFromGlobalId('Registry', String(registryId), 'registryId');
      await registries.updateRegistry(ctx, id, given(rest));
      return ctx.db.registry.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  checkRegistry: t.prismaField({
    type: 'Registry',
    extensions: FLEET_WRITE,
    description: "Platform staff: a worker logs in to the registry's /v2/ with the stored credentials (CHECKING, then PASSED or FAILED).",
    args: { registryId: t.arg.id({ required: true }) },
    resolve: async (query, _root, args, ctx) => {
      const id = uuidFromGlobalId('Registry', String(args.registryId), 'registryId');
      await registries.requestRegistryCheck(ctx, id);
      return ctx.db.registry.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
}));
