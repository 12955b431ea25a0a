import { PgBoss, fromPrisma, type Job } from 'pg-boss';
import type { Logger } from 'pino';
import type { Tx } from '../db/database.ts';
import type { Services } from '../services.ts';
import type { Config } from '../config.ts';

/** Every job payload carries who asked and for which tenant; handlers re-enter the same RLS context. */
export interface JobPayload {
  tenantId: string;
  userId: string | null;
  requestId: string;
}

export interface QueueDefinition<D extends JobPayload | Record<string, never> = JobPayload> {
  name: string;
  retryLimit: number;
  retryDelay: number;
  retryBackoff: boolean;
  expireInSeconds: number;
  handle(services: Services, data: D, job: { id: string; retryCount: number; retryLimit: number }): Promise<unknown>;
  /** Cron schedule (pg-boss schedule, UTC) for maintenance queues that run on their own. */
  cron?: string | ((config: Config) => string);
  /** Long jobs send heartbeats: a worker that dies (SIGKILL) has its job retried by another after this long. */
  heartbeatSeconds?: number;
}

export const DEAD_LETTER_QUEUE = 'dead-letter';

/** pg-boss in the same database (schema `pgboss`). Queues are created explicitly at start-up, loudly. */
export class Jobs {
  readonly boss: PgBoss;
  /** Set on SIGTERM: tracked jobs stop at their next checkpoint and are handed back to the queue. */
  stopping = false;

  constructor(
    url: string,
    private readonly config: Config,
    private readonly queues: QueueDefinition<any>[],
    private readonly log: Logger,
  ) {
    const superviseSeconds = config.jobsSuperviseSeconds;
    this.boss = new PgBoss({
      connectionString: url,
      schema: 'pgboss',
      max: 4,
      application_name: 'tenantplane-jobs',
      superviseIntervalSeconds: superviseSeconds,
      monitorIntervalSeconds: superviseSeconds,
    });
    this.boss.on('error', (err) => this.log.error({ err }, 'pg-boss error'));
  }

  async start() {
    await this.boss.start();
    // Requests enqueue inside their own transaction, as the app role (send with `db: fromPrisma(tx)`): it may insert
    // jobs (and read back their ids), nothing more. pg-boss creates its schema at start, after our migrations.
    await this.boss.getDb().executeSql(
      `grant usage on schema pgboss to ${this.config.database.appRole}; grant select, insert on all tables in schema pgboss to ${this.config.database.appRole}; grant execute on all functions in schema pgboss to ${this.config.database.appRole}`,
    );
    // Jobs that exhaust their retries outside the tracked-job bookkeeping land here for an operator to inspect.
    if (!(await this.boss.getQueue(DEAD_LETTER_QUEUE))) await this.boss.createQueue(DEAD_LETTER_QUEUE, { retentionSeconds: 30 * 86400 });
    for (const q of this.queues) {
      const options = {
        deadLetter: DEAD_LETTER_QUEUE,
        retryLimit: q.retryLimit,
        retryDelay: q.retryDelay,
        retryBackoff: q.retryBackoff,
        expireInSeconds: q.expireInSeconds,
        ...(q.heartbeatSeconds ? { heartbeatSeconds: q.heartbeatSeconds } : {}),
      };
      const existing = await this.boss.getQueue(q.name);
      if (existing) await this.boss.updateQueue(q.name, options);
      else await this.boss.createQueue(q.name, options);
      if (q.cron) await this.boss.schedule(q.name, typeof q.cron === 'function' ? q.cron(this.config) : q.cron, {}, { tz: 'UTC' });
      this.log.debug({ queue: q.name }, 'queue ready');
    }
  }

  /** Starts a worker per queue in this process. */
  async work(services: Services) {
    for (const q of this.queues) {
      await this.boss.work(q.name, { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: 0.5 }, async (jobs: Job<any>[]) => {
        for (const job of jobs as Array<Job<any> & { retryCount: number; retryLimit: number }>) {
          // The enqueuing request's id is carried in the payload: every line of the job's log carries it too.
          const log = this.log.child({ queue: q.name, jobId: job.id, requestId: job.data?.requestId });
          const started = performance.now();
          const finished = (status: 'completed' | 'failed') => {
            const seconds = (performance.now() - started) / 1000;
            services.metrics?.jobs.inc({ queue: q.name, status });
            services.metrics?.jobDuration.observe({ queue: q.name, status }, seconds);
            return Math.round(seconds * 1000);
          };
          try {
            await q.handle(services, job.data, { id: job.id, retryCount: job.retryCount ?? 0, retryLimit: job.retryLimit ?? q.retryLimit });
            log.info({ durationMs: finished('completed'), attempt: (job.retryCount ?? 0) + 1 }, 'job completed');
          } catch (err) {
            log.warn({ err, durationMs: finished('failed'), attempt: (job.retryCount ?? 0) + 1 }, 'job attempt failed');
            throw err;
          }
        }
      });
    }
  }

  /** Enqueues inside the caller's transaction: the job exists if and only if that transaction commits. */
  async send<D extends JobPayload>(tx: Tx, queue: string, data: D) {
    return this.boss.send(queue, data as object, { db: fromPrisma(tx as never) });
  }

  /** Graceful: running jobs reach their next checkpoint (and go back to the queue) or finish, then pg-boss stops. */
  async stop() {
    this.stopping = true;
    await this.boss.stop({ graceful: true, timeout: 15_000 }).catch(() => undefined);
  }
}
