import type { Context } from '../../graphql/context.ts';
import { conflict, forbidden, notFound, translateDatabaseError } from '../../graphql/errors.ts';
import type { TenantJobArgs, TenantQueueName } from '../../jobs/queues.ts';
import { requireOwnOrAny } from '../access/permissions.ts';
import { audited, recordAudit } from '../audit/service.ts';

/**
 * Asks for a tenant job through the one narrow path, app.enqueue_job (sql/0014): it checks the queue and the
 * caller's role, takes the acting user from the transaction's context, and writes the tracked `jobs` row and the
 * pg-boss job together, in the request's transaction — a rolled-back mutation leaves neither.
 */
export async function enqueueJob<Q extends TenantQueueName>(
  ctx: Context,
  queue: Q,
  opts: { tenantId: string; siteId?: string | null; args: TenantJobArgs<Q> },
): Promise<string> {
  const rows = await ctx.db
    .$queryRaw<{ id: string }[]>`select app.enqueue_job(${queue}, ${opts.tenantId}::uuid, ${opts.siteId ?? null}::uuid, ${JSON.stringify(opts.args)}::jsonb) as id`
    .catch((e) => translateDatabaseError(e));
  return rows[0]!.id;
}

/** enqueueJob, then the job row itself, for mutations that answer with it. */
export async function enqueueTrackedJob<Q extends TenantQueueName>(
  ctx: Context,
  queue: Q,
  opts: { tenantId: string; siteId?: string | null; args: TenantJobArgs<Q> },
) {
  const id = await enqueueJob(ctx, queue, opts);
  return ctx.db.job.findUniqueOrThrow({ where: { tenantId_id: { tenantId: opts.tenantId, id } } });
}

/** Asks a job to stop: its handler stops at the next checkpoint and ends CANCELLED. */
export function cancelJob(ctx: Context, tenantId: string, jobId: string) {
  return audited(ctx, { tenantId, action: 'cancelJob', targetType: 'Job', targetId: jobId }, async () => {
    const job = await ctx.db.job.findUnique({ where: { tenantId_id: { tenantId, id: jobId } } });
    if (!job) throw notFound('job');
    await requireOwnOrAny(ctx, tenantId, job.requestedBy === ctx.userId, 'jobs:write', 'jobs:manage');
    if (job.status === 'COMPLETED' || job.status === 'FAILED' || job.status === 'CANCELLED') {
      throw conflict(`the job is already ${job.status}`);
    }
    await ctx.db.job.updateMany({ where: { tenantId, id: jobId }, data: { cancelRequestedAt: new Date(), updatedAt: new Date() } });
    await recordAudit(ctx, { tenantId, action: 'cancelJob', targetType: 'Job', targetId: jobId });
    return jobId;
  });
}
