import type { Services } from '../../services.ts';
import type { DbContext, Tx } from '../../db/database.ts';
import type { TrackedJobPayload } from './service.ts';

/** Thrown at a checkpoint when the job was cancelled; the run then ends CANCELLED. */
export class JobCancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

/** Thrown at a checkpoint when this worker is shutting down (SIGTERM): the job goes back to the queue. */
export class WorkerStopping extends Error {
  constructor() {
    super('the worker is shutting down');
  }
}

/** A failure no retry can fix (bad input, illegal state): the job ends FAILED at once. */
export class PermanentJobError extends Error {}

/**
 * One attempt of a tracked job, as its handler sees it: progress that only rises, steps and log lines, checkpoints
 * that honour cancellation. Every write goes through the same RLS context as the request that asked for the job,
 * and each update NOTIFYs subscribers (trigger on app_public.jobs).
 */
export class JobRun {
  readonly ctx: DbContext;
  private progressValue = 0;

  constructor(
    readonly services: Services,
    readonly data: TrackedJobPayload,
    readonly attempt: number,
    readonly maxAttempts: number,
  ) {
    this.ctx = { userId: data.userId, requestId: data.requestId };
  }

  private where() {
    return { tenantId: this.data.tenantId, id: this.data.jobId };
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
          logs: { push: `attempt ${this.attempt} of ${this.maxAttempts} started` },
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

  /** Stops here when someone cancelled the job, or when this worker is shutting down. */
  async checkpoint() {
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

/**
 * Runs a tracked job's body with the bookkeeping every handler needs: RUNNING, then COMPLETED / CANCELLED /
 * FAILED, or back to PENDING and rethrown so pg-boss retries a transient failure.
 */
export async function runTracked(
  services: Services,
  data: TrackedJobPayload,
  meta: { retryCount: number; retryLimit: number },
  body: (run: JobRun) => Promise<Record<string, unknown> | void>,
  hooks: { onFailed?: (run: JobRun, error: string) => Promise<void>; onCancelled?: (run: JobRun) => Promise<void> } = {},
) {
  const run = new JobRun(services, data, meta.retryCount + 1, meta.retryLimit + 1);
  if (!(await run.begin())) return { skipped: true };
  try {
    const result = (await body(run)) ?? {};
    await run.complete(result);
    return result;
  } catch (e) {
    if (e instanceof JobCancelled) {
      await hooks.onCancelled?.(run);
      await run.cancelled();
      return { cancelled: true };
    }
    const message = e instanceof Error ? e.message : String(e);
    if (e instanceof WorkerStopping && meta.retryCount < meta.retryLimit) {
      // Not a failure of the work: pg-boss retries it at once on a worker that is not stopping (an attempt is used).
      await run.retrying('interrupted at a checkpoint by a worker shutdown');
      throw e;
    }
    if (e instanceof PermanentJobError || meta.retryCount >= meta.retryLimit) {
      await hooks.onFailed?.(run, message);
      await run.fail(message);
      return { failed: message };
    }
    await run.retrying(message);
    throw e;
  }
}
