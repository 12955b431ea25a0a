import os from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import type { Job } from 'pg-boss';
import type { Logger } from 'pino';
import type { WorkerServices } from '../../services.ts';
import type { DbContext, Tx } from '../../db/database.ts';
import type { JobRunner, MaintenanceQueueDefinition, QueueDefinition, TenantQueueDefinition } from '../../jobs/queue.ts';
import { MAINTENANCE_QUEUES, TENANT_QUEUES, type TenantJobEnvelope, type TenantQueueName } from '../../jobs/queues.ts';
import { describeFailure } from '../../faults.ts';

/** Thrown at a checkpoint when the job was cancelled; the run then ends CANCELLED. */
export class JobCancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

/** Thrown at a checkpoint when this worker is shutting down (SIGTERM) or lost the job: it goes back to the queue. */
export class WorkerStopping extends Error {
  constructor(reason = 'interrupted at a checkpoint by a worker shutdown') {
    super(reason);
  }
}

/** A failure no retry can fix (bad input, illegal state): the job ends FAILED at once. */
export class PermanentJobError extends Error {}

/** A payload the runner will not act on (forged, or naming what its acting user cannot reach). */
export class RefusedJob extends Error {}

/** The identity of one tracked job, as verified against its `jobs` row. */
export interface TrackedJob<A> extends TenantJobEnvelope {
  args: A;
}

/**
 * One attempt of a tracked job, as its handler sees it: progress that only rises, steps and log lines, checkpoints
 * that honour cancellation, pg-boss's abort signal and shutdown. Every database write goes through the RLS context
 * of the member who asked for the job, narrowed to the job's tenant, and each update NOTIFYs subscribers (trigger on
 * app_public.jobs).
 */
export class JobRun<A = Record<string, string>> {
  readonly ctx: DbContext;
  private progressValue = 0;

  constructor(
    readonly services: WorkerServices,
    readonly job: TrackedJob<A>,
    readonly attempt: number,
    readonly maxAttempts: number,
    readonly signal: AbortSignal,
  ) {
    this.ctx = { userId: job.userId, tenant: job.tenantId, requestId: job.requestId };
  }

  get tenantId() {
    return this.job.tenantId;
  }

  get args() {
    return this.job.args;
  }

  private where() {
    return { tenantId: this.job.tenantId, id: this.job.jobId };
  }

  withDb<T>(fn: (tx: Tx) => Promise<T>) {
    return this.services.db.withContext(this.ctx, fn);
  }

  /** Marks the attempt RUNNING; false when the job is already finished (a duplicate delivery) or gone. */
  async begin(): Promise<boolean> {
    return this.withDb(async (tx) => {
      const job = await tx.job.findUnique({ where: { tenantId_id: this.where() } });
      if (!job || job.status === 'COMPLETED' || job.status === 'FAILED' || job.status === 'CANCELLED') return false;
      this.progressValue = job.progress;
      await tx.job.updateMany({
        where: this.where(),
        data: {
          status: 'RUNNING',
          attempts: this.attempt,
          startedAt: job.startedAt ?? new Date(),
          updatedAt: new Date(),
          // Which worker holds the attempt: operators (and the crash tests) find it by host and pid.
          logs: { push: `attempt ${this.attempt} of ${this.maxAttempts} started on ${os.hostname()} (pid ${process.pid})` },
        },
      });
      return true;
    });
  }

  /** Reports progress (never lower than before) and the current step; also a checkpoint. */
  async progress(percent: number, step: string, log?: string) {
    this.progressValue = Math.max(this.progressValue, Math.min(100, Math.round(percent)));
    await this.withDb((tx) =>
      tx.job.updateMany({
        where: this.where(),
        data: { progress: this.progressValue, step, updatedAt: new Date(), ...(log ? { logs: { push: log } } : {}) },
      }),
    );
    const delay = this.services.config.jobStepDelayMs;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    await this.checkpoint();
  }

  async log(line: string) {
    await this.withDb((tx) => tx.job.updateMany({ where: this.where(), data: { logs: { push: line }, updatedAt: new Date() } }));
  }

  /** Stops here when someone cancelled the job, when pg-boss took it back (abort signal), or on shutdown. */
  async checkpoint() {
    if (this.signal.aborted) throw new WorkerStopping('interrupted at a checkpoint: pg-boss took the job back (its claim expired or the worker is stopping)');
    if (this.services.jobs.stopping) throw new WorkerStopping();
    const job = await this.withDb((tx) => tx.job.findUnique({ where: { tenantId_id: this.where() }, select: { cancelRequestedAt: true } }));
    if (job?.cancelRequestedAt) throw new JobCancelled();
  }

  async complete(result: Record<string, unknown> = {}) {
    await this.finish('COMPLETED', { progress: 100, result: result as object, error: null, step: 'done' });
  }

  async fail(error: string) {
    await this.finish('FAILED', { error, logs: { push: `failed: ${error}` } });
  }

  async cancelled() {
    await this.finish('CANCELLED', { step: 'cancelled', logs: { push: 'cancelled' } });
  }

  /** A failed attempt that pg-boss will retry: back to PENDING with the reason in the log. */
  async retrying(error: string) {
    await this.withDb((tx) =>
      tx.job.updateMany({ where: this.where(), data: { status: 'PENDING', updatedAt: new Date(), logs: { push: `attempt ${this.attempt} failed: ${error}; retrying` } } }),
    );
  }

  private async finish(status: 'COMPLETED' | 'FAILED' | 'CANCELLED', data: Record<string, unknown>) {
    await this.withDb((tx) => tx.job.updateMany({ where: this.where(), data: { status, completedAt: new Date(), updatedAt: new Date(), ...data } }));
  }
}

const Envelope = z.object({ tenantId: z.uuid(), userId: z.uuid(), jobId: z.uuid(), requestId: z.string().max(200) });
const ENVELOPE_KEYS = new Set(Object.keys(Envelope.shape));

/**
 * Records a refusal: a warning in the log and, when the payload names a real tenant, a FAILURE entry in that
 * tenant's audit log (written as the owner: nobody acting may be trusted here).
 */
async function refuse(services: WorkerServices, log: Logger, queue: string, job: Job<unknown>, reason: string) {
  log.warn({ reason }, 'job refused');
  const tenantId = (job.data as { tenantId?: unknown } | null)?.tenantId;
  if (typeof tenantId === 'string' && z.uuid().safeParse(tenantId).success) {
    await services.ownerPool.query(
      `insert into app_public.audit_events (tenant_id, actor_id, action, target_type, target_id, outcome, details, user_agent)
       select t.id, null, 'jobRefused', 'QueueJob', $2, 'FAILURE', $3::jsonb, 'tenantplane-worker' from app_public.tenants t where t.id = $1`,
      [tenantId, job.id, JSON.stringify({ queue, reason })],
    );
  }
  return { refused: reason };
}

/**
 * Trusts ids only: the payload must name a `jobs` row the acting user can see (so: of a tenant they still belong
 * to), of this queue, requested by that user, with exactly these arguments. The arguments the handler gets are
 * the row's, validated by the queue's schema.
 */
async function verifyTrackedJob(services: WorkerServices, queue: TenantQueueName, data: unknown): Promise<TrackedJob<any>> {
  const envelope = Envelope.safeParse(data);
  if (!envelope.success) throw new RefusedJob('the payload does not name a tenant, a user and a job');
  const { tenantId, userId, jobId, requestId } = envelope.data;
  const row = await services.db.withContext({ userId, tenant: tenantId, requestId }, (tx) =>
    tx.job.findUnique({ where: { tenantId_id: { tenantId, id: jobId } }, select: { type: true, requestedBy: true, args: true } }),
  );
  if (!row) {
    // The user left the tenant (or was removed) after asking: their own job row fails, visibly to the tenant's admins.
    const orphan = await services.ownerPool.query(
      `update app_public.jobs set status = 'FAILED', error = 'the member who asked for this job can no longer act for the tenant', completed_at = now(), updated_at = now()
        where tenant_id = $1 and id = $2 and type = $3 and requested_by = $4 and status in ('PENDING', 'RUNNING')`,
      [tenantId, jobId, queue, userId],
    );
    throw new RefusedJob(orphan.rowCount ? 'the requester can no longer act for this tenant' : 'the payload names a job its user cannot see');
  }
  if (row.type !== queue) throw new RefusedJob(`the payload names a ${row.type} job, not ${queue}`);
  if (row.requestedBy !== userId) throw new RefusedJob('the payload names a job another user asked for');
  const payloadArgs = Object.fromEntries(Object.entries(data as Record<string, unknown>).filter(([k]) => !ENVELOPE_KEYS.has(k)));
  if (!isDeepStrictEqual(payloadArgs, row.args)) throw new RefusedJob('the payload does not match the arguments of the job it names');
  const args = TENANT_QUEUES[queue].args.safeParse(row.args);
  if (!args.success) throw new RefusedJob('the job row holds arguments this queue does not take');
  return { tenantId, userId, jobId, requestId, args: args.data };
}

type BossJob = Job<unknown> & { retryCount: number; retryLimit: number };

/**
 * A tracked job: verify, RUNNING, then COMPLETED / CANCELLED / FAILED, or back to PENDING and rethrown so that
 * pg-boss retries a transient failure (and a shutdown or lost claim hands it to another worker).
 */
async function runTrackedJob(services: WorkerServices, def: TenantQueueDefinition<any>, job: BossJob, log: Logger) {
  let tracked: TrackedJob<any>;
  try {
    tracked = await verifyTrackedJob(services, def.name, job.data);
  } catch (e) {
    if (e instanceof RefusedJob) return refuse(services, log, def.name, job, e.message);
    throw e;
  }
  const retryLimit = job.retryLimit ?? def.retryLimit;
  const run = new JobRun(services, tracked, job.retryCount + 1, retryLimit + 1, job.signal ?? new AbortController().signal);
  if (!(await run.begin())) return { skipped: true };
  try {
    const result = (await def.run(run)) ?? {};
    await run.complete(result);
    return result;
  } catch (e) {
    if (e instanceof JobCancelled) {
      await def.onCancelled?.(run);
      await run.cancelled();
      return { cancelled: true };
    }
    const message = describeFailure(e); // a connection fault in words: "object storage is unreachable (…)"
    if (e instanceof WorkerStopping && job.retryCount < retryLimit) {
      // Not a failure of the work: pg-boss retries it on a worker that is not stopping (an attempt is used).
      await run.retrying(message);
      throw e;
    }
    if (e instanceof PermanentJobError || job.retryCount >= retryLimit) {
      await def.onFailed?.(run, message);
      await run.fail(message);
      return { failed: message };
    }
    await run.retrying(message);
    throw e;
  }
}

/** A maintenance job: its payload must have its queue's shape; the handler checks the rest against the database. */
async function runMaintenanceJob(services: WorkerServices, def: MaintenanceQueueDefinition<any>, job: BossJob, log: Logger) {
  const data = MAINTENANCE_QUEUES[def.name as keyof typeof MAINTENANCE_QUEUES].safeParse(job.data ?? {});
  if (!data.success) return refuse(services, log, def.name, job, 'the payload does not have this queue’s shape');
  try {
    return await def.run(services, data.data, { id: job.id, signal: job.signal ?? new AbortController().signal, log });
  } catch (e) {
    if (e instanceof RefusedJob) return refuse(services, log, def.name, job, e.message);
    throw e;
  }
}

/** The one runner every queue's jobs go through (src/jobs/queue.ts Jobs.work). */
export const runJob: JobRunner = (services, queue: QueueDefinition, job, log) =>
  queue.kind === 'tenant' ? runTrackedJob(services, queue, job, log) : runMaintenanceJob(services, queue, job, log);
