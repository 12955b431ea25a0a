import { tenantQueue } from '../../jobs/queue.ts';
import type { Context } from '../../graphql/context.ts';
import { enqueueTrackedJob } from '../jobs/service.ts';
import { asOwner } from '../sites/provisioning.ts';
import { ident } from '../sites/apps.ts';
import { audited, recordAudit } from '../audit/service.ts';
import { requirePermission } from '../access/permissions.ts';
import { writeArchive } from './archive.ts';

/** The pooled tables a tenant export carries, in the same archive format as a site backup. */
export const EXPORTED_TABLES = ['memberships', 'files', 'documents', 'chat_sessions', 'chat_messages', 'social_links'] as const;

export const exportPrefix = (tenantId: string, jobId: string) => `tenants/${tenantId}/exports/${jobId}/`;

export function exportTenant(ctx: Context, tenantId: string) {
  return audited(ctx, { tenantId, action: 'exportTenant', targetType: 'Tenant', targetId: tenantId }, async () => {
    await requirePermission(ctx, tenantId, 'tenants:export');
    const job = await enqueueTrackedJob(ctx, 'tenant-export', { tenantId, args: {} });
    await recordAudit(ctx, { tenantId, action: 'exportTenant', targetType: 'Job', targetId: job.id });
    return job;
  });
}

/**
 * `tenant-export`: copies the tenant's rows of the pooled tables into a scratch schema (explicit tenant_id filter,
 * owner role: a maintenance task), archives that schema plus the tenant's stored objects with the site-backup
 * writer, then drops the scratch schema. The groundwork for moving one tenant out of a shared database.
 */
export const tenantExportQueue = tenantQueue({
  name: 'tenant-export',
  retryLimit: 2,
  retryDelay: 2,
  retryBackoff: true,
  expireInSeconds: 3600,
  heartbeatSeconds: 10,
  async run(run) {
    const services = run.services;
    const { tenantId, jobId } = run.job;
    const scratch = `export_${jobId.replace(/-/g, '')}`;
    const prefix = exportPrefix(tenantId, jobId);
    const tenant = await run.withDb((tx) => tx.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { slug: true } }));
    await run.progress(5, 'collecting rows');
    await services.storage.abortUploads(prefix);
    await services.storage.deletePrefix(prefix);
    await services.ownerPool.query(`drop schema if exists ${ident(scratch)} cascade`);
    try {
      await asOwner(services.ownerPool, async (c) => {
        await c.query(`create schema ${ident(scratch)}`);
        for (const table of EXPORTED_TABLES) {
          await c.query(`create table ${ident(scratch)}.${ident(table)} (like app_public.${ident(table)} including defaults including constraints including indexes)`);
          await c.query(`insert into ${ident(scratch)}.${ident(table)} select * from app_public.${ident(table)} where tenant_id = $1`, [tenantId]);
        }
      });
      await run.progress(20, 'writing archive');
      const manifest = await writeArchive({
        pool: services.ownerPool,
        storage: services.storage,
        schema: scratch,
        prefix,
        meta: { siteId: tenantId, siteName: `tenant:${tenant.slug}`, apps: [] },
        files: { prefix: `tenants/${tenantId}/objects/` },
        onProgress: (pct, step) => run.progress(20 + pct * 0.75, step),
      });
      return {
        prefix,
        checksum: manifest.checksum,
        totalBytes: manifest.totalBytes,
        tables: Object.fromEntries(manifest.tables.map((t) => [t.name, t.rowCount])),
        files: manifest.files.length,
      };
    } finally {
      await services.ownerPool.query(`drop schema if exists ${ident(scratch)} cascade`).catch(() => undefined);
    }
  },
});
