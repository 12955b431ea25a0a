import { builder } from '../../graphql/builder.ts';
import { tenantScopedIdFromGlobalId, uuidFromGlobalId } from '../../graphql/ids.ts';
import * as sites from './service.ts';
import { resetSitePassword } from './credentials.ts';
import { changeSitePlan, requestSiteMeasure } from './usage.ts';
import { moveSite } from './move.ts';
import { SiteIsolationEnum } from '../fleet/types.ts';

const SiteConnection = builder.objectRef<{ host: string; port: number; database: string; user: string; sslMode: string }>('SiteConnection').implement({
  description: "Where the tenant's own application connects: the site's login role on its database server (the password is shown once, by createSite and resetSitePassword).",
  fields: (t) => ({
    host: t.exposeString('host'),
    port: t.exposeInt('port'),
    database: t.exposeString('database'),
    user: t.exposeString('user'),
    sslMode: t.exposeString('sslMode'),
  }),
});


const SiteUsage = builder
  .objectRef<{ databaseBytes: bigint; fileBytes: bigint; limitBytes: bigint; measuredAt: Date; overStorageLimit: boolean }>('SiteUsage')
  .implement({
    description: "The site's last measure against its plan (every SITE_MEASURE_CRON, or measureSite).",
    fields: (t) => ({
      databaseBytes: t.field({ type: 'BigInt', description: 'Its schema (tables, indexes, sequences), or its whole database when it has one of its own.', resolve: (u) => u.databaseBytes }),
      fileBytes: t.field({ type: 'BigInt', description: 'Its files in object storage.', resolve: (u) => u.fileBytes }),
      totalBytes: t.field({ type: 'BigInt', resolve: (u) => u.databaseBytes + u.fileBytes }),
      limitBytes: t.field({ type: 'BigInt', description: "Its plan's storage limit.", resolve: (u) => u.limitBytes }),
      fraction: t.float({ description: 'totalBytes / limitBytes (above 1: over the limit).', resolve: (u) => Number(u.databaseBytes + u.fileBytes) / Number(u.limitBytes) }),
      overStorageLimit: t.exposeBoolean('overStorageLimit'),
      measuredAt: t.expose('measuredAt', { type: 'DateTime' }),
    }),
  });

const SiteStatusEnum = builder.enumType('SiteStatus', {
  description: 'PENDING → PROVISIONING → RUNNING → HEALTHY; FAILED; SUSPENDED; SOFT_DELETED → DELETED; RESTORING; MOVING (moveSite) → HEALTHY; UPDATING (updateSite) → HEALTHY.',
  values: ['PENDING', 'PROVISIONING', 'RUNNING', 'HEALTHY', 'FAILED', 'SUSPENDED', 'SOFT_DELETED', 'DELETED', 'RESTORING', 'MOVING', 'UPDATING'] as const,
});

builder.prismaNode('Site', {
  id: { field: 'tenantId_id' },
  nullable: true,
  fields: (t) => ({
    name: t.exposeString('name'),
    displayName: t.exposeString('displayName'),
    domain: t.exposeString('domain'),
    status: t.expose('status', { type: SiteStatusEnum }),
    apps: t.exposeStringList('apps'),
    config: t.expose('config', { type: 'JSON' }),
    schemaName: t.exposeString('schemaName', { nullable: true }),
    isolation: t.expose('isolation', { type: SiteIsolationEnum }),
    plan: t.relation('plan'),
    clusterName: t.string({ select: { cluster: { select: { name: true } } }, resolve: (site) => site.cluster.name }),
    overStorageLimit: t.exposeBoolean('overStorageLimit', { description: 'Measured over its plan\'s storage limit: its login may read and delete, not write, until it is back under.' }),
    measuredAt: t.expose('measuredAt', { type: 'DateTime', nullable: true }),
    usage: t.field({
      type: SiteUsage,
      nullable: true,
      description: 'Null until the site is first measured.',
      select: { databaseBytes: true, fileBytes: true, measuredAt: true, overStorageLimit: true, plan: { select: { storageLimitBytes: true } } },
      resolve: (site) =>
        site.measuredAt && site.databaseBytes !== null && site.fileBytes !== null
          ? { databaseBytes: site.databaseBytes, fileBytes: site.fileBytes, measuredAt: site.measuredAt, overStorageLimit: site.overStorageLimit, limitBytes: site.plan.storageLimitBytes }
          : null,
    }),
    connection: t.field({
      type: SiteConnection,
      nullable: true,
      description: 'Null until the site is placed, or for a caller without sites:read.',
      select: { tenantId: true, id: true },
      resolve: async (site, _args, ctx) => {
        const rows = await ctx.db.$queryRaw<Array<{ host: string | null; port: number; database: string; user: string; ssl_mode: string }>>`
          select host, port, database, "user", ssl_mode from app.site_connection(${site.tenantId}::uuid, ${site.id}::uuid)`;
        const r = rows[0];
        return r?.host ? { host: r.host, port: r.port, database: r.database, user: r.user, sslMode: r.ssl_mode } : null;
      },
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    deletedAt: t.expose('deletedAt', { type: 'DateTime', nullable: true }),
    retentionUntil: t.expose('retentionUntil', { type: 'DateTime', nullable: true }),
    sizeBytes: t.field({
      type: 'BigInt',
      nullable: true,
      select: { schemas: { select: { sizeBytes: true }, take: 1 } },
      resolve: (site) => site.schemas[0]?.sizeBytes ?? null,
    }),
    lastBackupAt: t.field({
      type: 'DateTime',
      nullable: true,
      select: { schemas: { select: { lastBackupAt: true }, take: 1 } },
      resolve: (site) => site.schemas[0]?.lastBackupAt ?? null,
    }),
    jobs: t.relatedConnection('jobs', { totalCount: true, cursor: 'tenantId_id', query: () => ({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }) }),
  }),
});

builder.prismaObjectFields('Job', (t) => ({ site: t.relation('site', { nullable: true }) }));


builder.prismaObjectFields('Tenant', (t) => ({
  sites: t.relatedConnection('sites', {
    totalCount: true,
    args: { status: t.arg({ type: SiteStatusEnum }) },
    cursor: 'tenantId_id',
    query: (args) => ({ where: args.status ? { status: args.status } : {}, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }),
  }),
}));

const SiteJobPayload = builder.objectRef<{ tenantId: string; siteId: string; jobId: string; password?: string }>('SiteJobPayload').implement({
  description: 'A site and the job now working on it.',
  fields: (t) => ({
    password: t.string({
      nullable: true,
      description: "The site login's password, shown this once (createSite, resetSitePassword): it is stored encrypted and never returned again.",
      resolve: (p) => p.password ?? null,
    }),
    site: t.prismaField({
      type: 'Site',
      resolve: (query, p, _args, ctx) => ctx.db.site.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId: p.tenantId, id: p.siteId } } }),
    }),
    job: t.prismaField({
      type: 'Job',
      resolve: (query, p, _args, ctx) => ctx.db.job.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId: p.tenantId, id: p.jobId } } }),
    }),
  }),
});

const CreateSiteInput = builder.inputType('CreateSiteInput', {
  fields: (t) => ({
    tenantId: t.id({ required: true }),
    name: t.string({ required: true, description: 'DNS-safe: lowercase letters, digits, hyphens, 3–63 characters; unique in the deployment.' }),
    displayName: t.string({ required: true }),
    apps: t.stringList({ description: "The apps to install: of the release group's bench (all of them when omitted), or without a release group the built-in notes, crm." }),
    releaseGroup: t.id({ description: "A ReleaseGroup (your tenant's own, or a public one): the site runs its latest ACTIVE bench, in that bench's cluster." }),
    cluster: t.string({ description: 'The cluster (by name) to place the site in; the default cluster when omitted.' }),
    plan: t.string({ description: 'The site plan (by id, e.g. site-pro); the default plan when omitted.' }),
  }),
});

const MoveSiteInput = builder.inputType('MoveSiteInput', {
  description: 'Where to move a site: another database server of its cluster, the other isolation level, or both.',
  fields: (t) => ({
    server: t.id({ description: "A database server (its Server id) of the site's cluster: platform staff only (platform.fleet:write)." }),
    isolation: t.field({ type: SiteIsolationEnum, description: 'SCHEMA: a schema in the server\'s sites database; DATABASE: a database of its own.' }),
  }),
});

const siteId = (raw: unknown) => tenantScopedIdFromGlobalId('Site', String(raw), 'siteId');

builder.mutationFields((t) => ({
  createSite: t.field({
    extensions: { permission: 'sites:write' },
    type: SiteJobPayload,
    description: 'Creates a site (PENDING) and its provisioning job. Admins and owners only; the plan caps the number of sites.',
    args: { input: t.arg({ type: CreateSiteInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const tenantId = uuidFromGlobalId('Tenant', String(input.tenantId), 'tenantId');
      const { site, job, password } = await sites.createSite(ctx, tenantId, {
        name: input.name,
        displayName: input.displayName,
        apps: input.apps ?? undefined,
        cluster: input.cluster ?? undefined,
        plan: input.plan ?? undefined,
        releaseGroup: input.releaseGroup ? tenantScopedIdFromGlobalId('ReleaseGroup', String(input.releaseGroup), 'releaseGroup') : undefined,
      });
      return { tenantId, siteId: site.id, jobId: job.id, password };
    },
  }),
  resetSitePassword: t.field({
    extensions: { permission: 'sites:write' },
    type: SiteJobPayload,
    description: "A new password for the site's login, shown once; the job applies it and ends the sessions opened with the old one.",
    args: { siteId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const { tenantId, id } = siteId(args.siteId);
      const { job, password } = await resetSitePassword(ctx, tenantId, id);
      return { tenantId, siteId: id, jobId: job.id, password };
    },
  }),
  measureSite: t.field({
    extensions: { permission: 'sites:operate' },
    type: SiteJobPayload,
    description: 'Measures the site against its plan now (a job), as the periodic measure does; site.usage shows the result.',
    args: { siteId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const { tenantId, id } = siteId(args.siteId);
      const job = await requestSiteMeasure(ctx, tenantId, id);
      return { tenantId, siteId: id, jobId: job.id };
    },
  }),
  changeSitePlan: t.field({
    extensions: { permission: 'sites:write' },
    type: SiteJobPayload,
    description:
      "Puts the site on another plan (audited); the job applies its limits to the site's login and measures it against its storage limit. A plan of the other isolation level moves the site (as moveSite does).",
    args: { siteId: t.arg.id({ required: true }), plan: t.arg.string({ required: true, description: 'The plan by name, e.g. site-pro.' }) },
    resolve: async (_root, args, ctx) => {
      const { tenantId, id } = siteId(args.siteId);
      const job = await changeSitePlan(ctx, tenantId, id, args.plan);
      return { tenantId, siteId: id, jobId: job.id };
    },
  }),
  moveSite: t.field({
    extensions: { permission: 'sites:operate' },
    type: SiteJobPayload,
    description:
      "Moves a HEALTHY site (MOVING until its job ends): pauses its login, archives it, restores it on the target, verifies row counts, checksums and sequences, switches and resumes. On any failure it stays where it was. The old copy is dropped after SITE_MOVE_GRACE_SECONDS.",
    args: { siteId: t.arg.id({ required: true }), input: t.arg({ type: MoveSiteInput, required: true }) },
    resolve: async (_root, args, ctx) => {
      const { tenantId, id } = siteId(args.siteId);
      const job = await moveSite(ctx, tenantId, id, {
        serverId: args.input.server ? uuidFromGlobalId('Server', String(args.input.server), 'server') : undefined,
        isolation: args.input.isolation ?? undefined,
      });
      return { tenantId, siteId: id, jobId: job.id };
    },
  }),
  retrySiteProvisioning: t.field({
    extensions: { permission: 'sites:operate' },
    type: SiteJobPayload,
    description: 'FAILED → PENDING with a new provisioning job.',
    args: { siteId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const { tenantId, id } = siteId(args.siteId);
      const { job } = await sites.retrySiteProvisioning(ctx, tenantId, id);
      return { tenantId, siteId: id, jobId: job.id };
    },
  }),
  ...Object.fromEntries(
    (['suspend', 'resume', 'delete'] as const).map((action) => [
      `${action}Site`,
      t.prismaField({
        type: 'Site',
        extensions: { permission: action === 'delete' ? 'sites:write' : 'sites:operate' },
        description:
          action === 'delete' ? 'SOFT_DELETED now, DELETED (schema, role and files removed) after the retention period.' : action === 'suspend' ? 'RUNNING/HEALTHY → SUSPENDED.' : 'SUSPENDED → HEALTHY.',
        args: { siteId: t.arg.id({ required: true }) },
        resolve: async (query, _root, args, ctx) => {
          const { tenantId, id } = siteId(args.siteId);
          await sites.changeSiteState(ctx, tenantId, id, action);
          return ctx.db.site.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId, id } } });
        },
      }),
    ]),
  ),
  updateSiteConfig: t.prismaField({
    extensions: { permission: 'sites:write' },
    type: 'Site',
    args: { siteId: t.arg.id({ required: true }), config: t.arg({ type: 'JSON', required: true }) },
    resolve: async (query, _root, args, ctx) => {
      const { tenantId, id } = siteId(args.siteId);
      await sites.updateSiteConfig(ctx, tenantId, id, args.config);
      return ctx.db.site.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId, id } } });
    },
  }),
}));
