import type { Context } from '../../graphql/context.ts';
import { conflict, forbidden, notFound } from '../../graphql/errors.ts';
import type { JobPayload } from '../../jobs/queue.ts';
import { requireTenantRole } from '../tenants/access.ts';
import { audited, recordAudit } from '../audit/service.ts';

export interface TrackedJobPayload extends JobPayload {
  jobId: string;
}

/**
 * Creates the tenant-visible job row and enqueues its pg-boss job, both in the request's transaction: a
 * rolled-back mutation leaves neither, a committed one exactly one of each.
 */
export async function enqueueTrackedJob<D extends Record<string, unknown>>(
  ctx: Context,
  opts: { tenantId: string; queue: string; siteId?: string | null; maxAttempts: number; data: D },
) {
  const job = await ctx.db.job.create({
    data: { tenantId: opts.tenantId, type: opts.queue, siteId: opts.siteId ?? null, requestedBy: ctx.userId, maxAttempts: opts.maxAttempts },
  });
  await ctx.services.jobs.send<TrackedJobPayload & D>(ctx.db, opts.queue, {
    ...opts.data,
    tenantId: opts.tenantId,
    userId: ctx.userId,
    requestId: ctx.requestId,
    jobId: job.id,
  });
  return job;
}

/** Asks a job to stop: its handler stops at the next checkpoint and ends CANCELLED. */
export function cancelJob(ctx: Context, tenantId: string, jobId: string) {
  return audited(ctx, { tenantId, action: 'cancelJob', targetType: 'Job', targetId: jobId }, async () => {
    const job = await ctx.db.job.findUnique({ where: { tenantId_id: { tenantId, id: jobId } } });
    if (!job) throw notFound('job');
    const role = await requireTenantRole(ctx, tenantId, 'MEMBER');
    if (job.requestedBy !== ctx.userId && role === 'MEMBER') throw forbidden('members can only cancel the jobs they started');
    if (job.status === 'COMPLETED' || job.status === 'FAILED' || job.status === 'CANCELLED') {
      throw conflict(`the job is already ${job.status}`);
    }
    await ctx.db.job.updateMany({ where: { tenantId, id: jobId }, data: { cancelRequestedAt: new Date(), updatedAt: new Date() } });
    await recordAudit(ctx, { tenantId, action: 'cancelJob', targetType: 'Job', targetId: jobId });
    return jobId;
  });
}
