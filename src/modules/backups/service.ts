import crypto from 'node:crypto';
import type { Context } from '../../graphql/context.ts';
import { badInput, forbidden, notFound, translateDatabaseError } from '../../graphql/errors.ts';
import { audited, recordAudit } from '../audit/service.ts';
import { requirePermission } from '../access/permissions.ts';
import { enqueueTrackedJob } from '../jobs/service.ts';
import { assertTransition } from '../sites/lifecycle.ts';

export const BACKUP_ATTEMPTS = 3;
/** Who the audit log names beside the member a scheduled backup acts for. */
export const SCHEDULER_ACTOR = 'system:backup-schedule';
export const RESTORE_ATTEMPTS = 2;

export function backupPrefix(tenantId: string, backupId: string) {
  return `tenants/${tenantId}/backups/${backupId}/`;
}

async function findSite(ctx: Context, tenantId: string, siteId: string) {
  const site = await ctx.db.site.findUnique({ where: { tenantId_id: { tenantId, id: siteId } } });
  if (!site) throw notFound('site');
  return site;
}

/**
 * A FULL backup of a running site: the backup row (PENDING) and its job, in this transaction. The same path serves
 * `backupSite` and the daily schedule (`scheduled`: the scheduler acts for the site's admin, and says so in the
 * audit entry).
 */
export function backupSite(ctx: Context, tenantId: string, siteId: string, opts: { scheduled?: boolean } = {}) {
  return audited(ctx, { tenantId, action: 'backupSite', targetType: 'Site', targetId: siteId }, async () => {
    await requirePermission(ctx, tenantId, 'backups:write');
    const site = await findSite(ctx, tenantId, siteId);
    if (site.status !== 'HEALTHY' && site.status !== 'RUNNING' && site.status !== 'SUSPENDED') {
      throw badInput('siteId', `cannot back up a site that is ${site.status}`);
    }
    const id = crypto.randomUUID();
    const backup = await ctx.db.backup.create({
      data: {
        tenantId,
        id,
        siteId,
        objectKey: backupPrefix(tenantId, id),
        requestedBy: ctx.userId,
        scheduled: opts.scheduled ?? false,
        expiresAt: new Date(Date.now() + ctx.services.config.backups.retentionDays * 86400_000),
      },
    });
    const job = await enqueueTrackedJob(ctx, 'site-backup', { tenantId, siteId, args: { siteId, backupId: id } });
    await recordAudit(ctx, { tenantId, action: 'backupSite', targetType: 'Backup', targetId: id, details: { siteId, ...(opts.scheduled ? { scheduledBy: SCHEDULER_ACTOR } : {}) } });
    return { backup, job };
  });
}

/** Backups are kept until they expire: deleting one earlier is FORBIDDEN (and the delete policy agrees). */
export function deleteBackup(ctx: Context, tenantId: string, backupId: string) {
  return audited(ctx, { tenantId, action: 'deleteBackup', targetType: 'Backup', targetId: backupId }, async () => {
    const backup = await ctx.db.backup.findUnique({ where: { tenantId_id: { tenantId, id: backupId } } });
    if (!backup) throw notFound('backup');
    await requirePermission(ctx, tenantId, 'backups:write');
    if (backup.expiresAt > new Date()) throw forbidden(`this backup is kept until ${backup.expiresAt.toISOString()} (retention) and cannot be deleted before`);
    await ctx.db.backup.delete({ where: { tenantId_id: { tenantId, id: backupId } }, select: { id: true } }).catch((e) => translateDatabaseError(e));
    // The archive goes by the backups_delete_archive trigger (sql/0014) once this commits: no request enqueues deletions.
    await recordAudit(ctx, { tenantId, action: 'deleteBackup', targetType: 'Backup', targetId: backupId });
    return true;
  });
}

/** SOFT_DELETED or HEALTHY → RESTORING, from a successful backup of the same site. */
export function restoreSite(ctx: Context, tenantId: string, siteId: string, backupId: string) {
  return audited(ctx, { tenantId, action: 'restoreSite', targetType: 'Site', targetId: siteId, details: { backupId } }, async () => {
    await requirePermission(ctx, tenantId, 'sites:operate');
    const site = await findSite(ctx, tenantId, siteId);
    const backup = await ctx.db.backup.findUnique({ where: { tenantId_id: { tenantId, id: backupId } } });
    if (!backup) throw notFound('backup');
    if (backup.siteId !== siteId) throw badInput('backupId', 'this backup belongs to another site');
    if (backup.status !== 'SUCCESS') throw badInput('backupId', `this backup is ${backup.status}: only a SUCCESS backup can be restored`);
    if (site.status !== 'SOFT_DELETED' && site.status !== 'HEALTHY') throw badInput('siteId', `cannot restore a site that is ${site.status}`);
    assertTransition(site.status, 'RESTORING', 'restore');
    await ctx.db.site.updateMany({ where: { tenantId, id: siteId }, data: { status: 'RESTORING', updatedAt: new Date() } });
    const job = await enqueueTrackedJob(ctx, 'site-restore', { tenantId, siteId, args: { siteId, backupId, previousStatus: site.status } });
    await recordAudit(ctx, { tenantId, action: 'restoreSite', targetType: 'Site', targetId: siteId, details: { backupId } });
    return { site, job };
  });
}

/** A backup id of another tenant answers like a missing backup. */
export const otherSiteBackup = () => notFound('backup');
