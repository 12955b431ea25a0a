import { builder } from '../../graphql/builder.ts';
import { tenantScopedIdFromGlobalId, uuidFromGlobalId } from '../../graphql/ids.ts';
import * as backups from './service.ts';
import { exportTenant } from './export.ts';

const BackupStatusEnum = builder.enumType('BackupStatus', { values: ['PENDING', 'RUNNING', 'SUCCESS', 'FAILED'] as const });
const BackupTypeEnum = builder.enumType('BackupType', {
  description: 'FULL only for now: INCREMENTAL is reserved (a COPY-based archive has no honest incremental form yet).',
  values: ['FULL', 'INCREMENTAL'] as const,
});

builder.prismaNode('Backup', {
  id: { field: 'tenantId_id' },
  nullable: true,
  fields: (t) => ({
    status: t.expose('status', { type: BackupStatusEnum }),
    type: t.expose('type', { type: BackupTypeEnum }),
    sizeBytes: t.expose('sizeBytes', { type: 'BigInt', nullable: true, description: 'Compressed bytes of every part.' }),
    objectKey: t.exposeString('objectKey', { description: 'The archive’s prefix in the bucket (manifest.json at its root).' }),
    checksum: t.exposeString('checksum', { nullable: true, description: 'sha256 of manifest.json, which holds the sha256 of every part.' }),
    error: t.exposeString('error', { nullable: true }),
    scheduled: t.exposeBoolean('scheduled'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
    site: t.relation('site'),
  }),
});

builder.prismaObjectFields('Site', (t) => ({
  backups: t.relatedConnection('backups', {
    totalCount: true,
    cursor: 'tenantId_id',
    query: () => ({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }),
  }),
}));

const BackupJobPayload = builder.objectRef<{ tenantId: string; backupId: string; jobId: string }>('BackupJobPayload').implement({
  fields: (t) => ({
    backup: t.prismaField({
      type: 'Backup',
      resolve: (query, p, _a, ctx) => ctx.db.backup.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId: p.tenantId, id: p.backupId } } }),
    }),
    job: t.prismaField({
      type: 'Job',
      resolve: (query, p, _a, ctx) => ctx.db.job.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId: p.tenantId, id: p.jobId } } }),
    }),
  }),
});

const RestorePayload = builder.objectRef<{ tenantId: string; siteId: string; jobId: string }>('RestoreSitePayload').implement({
  fields: (t) => ({
    site: t.prismaField({
      type: 'Site',
      resolve: (query, p, _a, ctx) => ctx.db.site.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId: p.tenantId, id: p.siteId } } }),
    }),
    job: t.prismaField({
      type: 'Job',
      resolve: (query, p, _a, ctx) => ctx.db.job.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId: p.tenantId, id: p.jobId } } }),
    }),
  }),
});

builder.mutationFields((t) => ({
  exportTenant: t.prismaField({
    extensions: { permission: 'tenants:export' },
    type: 'Job',
    description: 'Writes the tenant’s pooled rows (members, documents, files, chats, links) and its objects as one archive (site-backup format); the job’s result names its prefix.',
    args: { tenantId: t.arg.id({ required: true }) },
    resolve: async (query, _root, args, ctx) => {
      const tenantId = uuidFromGlobalId('Tenant', String(args.tenantId), 'tenantId');
      const job = await exportTenant(ctx, tenantId);
      return ctx.db.job.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId, id: job.id } } });
    },
  }),
  backupSite: t.field({
    extensions: { permission: 'backups:write' },
    type: BackupJobPayload,
    description: 'A FULL backup now (admins and owners). It is SUCCESS only once every part is verified in S3.',
    args: { siteId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const { tenantId, id } = tenantScopedIdFromGlobalId('Site', String(args.siteId), 'siteId');
      const { backup, job } = await backups.backupSite(ctx, tenantId, id);
      return { tenantId, backupId: backup.id, jobId: job.id };
    },
  }),
  deleteBackup: t.boolean({
    extensions: { permission: 'backups:write' },
    description: 'FORBIDDEN before the backup’s expiresAt (retention).',
    args: { backupId: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => {
      const { tenantId, id } = tenantScopedIdFromGlobalId('Backup', String(args.backupId), 'backupId');
      return backups.deleteBackup(ctx, tenantId, id);
    },
  }),
  restoreSite: t.field({
    extensions: { permission: 'sites:operate' },
    type: RestorePayload,
    description: 'Restores a SUCCESS backup of this site: checksums verified first, loaded into a fresh schema, then swapped in.',
    args: { siteId: t.arg.id({ required: true }), backupId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const { tenantId, id } = tenantScopedIdFromGlobalId('Site', String(args.siteId), 'siteId');
      const backup = tenantScopedIdFromGlobalId('Backup', String(args.backupId), 'backupId');
      if (backup.tenantId !== tenantId) throw backups.otherSiteBackup();
      const { job } = await backups.restoreSite(ctx, tenantId, id, backup.id);
      return { tenantId, siteId: id, jobId: job.id };
    },
  }),
}));
