import { PgBoss, type Job } from 'pg-boss';
import type { Logger } from 'pino';
import type { WorkerServices } from '../services.ts';
import type { Config } from '../config.ts';
import { describeFailure, unreachable } from '../faults.ts';
import type { JobRun } from '../modules/jobs/run.ts';
import { MAINTENANCE_QUEUES, type MaintenancePayload, type MaintenanceQueueName, type TenantJobArgs, type TenantQueueName } from './queues.ts';

/** pg-boss's retry and expiry options of a queue, applied at start-up. */
export interface QueueOptions {
  retryLimit: number;
  retryDelay: number;
  retryBackoff: boolean;
  expireInSeconds: number;
  /** Long jobs send heartbeats: a worker that dies (SIGKILL) has its job retried by another after this long. */
  heartbeatSeconds?: number;
}

/**
 * A queue a tenant member asks for (src/jobs/queues.ts TENANT_QUEUES): tracked by a `jobs` row, run by the one
 * runner (src/modules/jobs/run.ts) as the member who asked, inside that tenant, with the arguments of the row.
 */
export interface TenantQueueDefinition<Q extends TenantQueueName = TenantQueueName> extends QueueOptions {
  kind: 'tenant';
  name: Q;
  run(run: JobRun<TenantJobArgs<Q>>): Promise<Record<string, unknown> | void>;
  /** After the last attempt failed (or a permanent failure): put what the job was changing back in order. */
  onFailed?(run: JobRun<TenantJobArgs<Q>>, error: string): Promise<void>;
  onCancelled?(run: JobRun<TenantJobArgs<Q>>): Promise<void>;
}

/** What a maintenance handler gets besides its payload. */
export interface MaintenanceJob {
  id: string;
  signal: AbortSignal;
  log: Logger;
}

/** A queue only the database (triggers) and cron enqueue; its handler runs as the owner and checks its payload. */
export interface MaintenanceQueueDefinition<Q extends MaintenanceQueueName = MaintenanceQueueName> extends QueueOptions {
  kind: 'maintenance';
  name: Q;
  /** Cron schedule (pg-boss schedule, UTC). */
  cron?: string | ((config: Config) => string);
  run(services: WorkerServices, data: MaintenancePayload<Q>, job: MaintenanceJob): Promise<unknown>;
}

export type QueueDefinition = TenantQueueDefinition<any> | MaintenanceQueueDefinition<any>;

export const tenantQueue = <Q extends TenantQueueName>(def: Omit<TenantQueueDefinition<Q>, 'kind'>): TenantQueueDefinition<Q> => ({ kind: 'tenant', ...def });
export const maintenanceQueue = <Q extends MaintenanceQueueName>(def: Omit<MaintenanceQueueDefinition<Q>, 'kind'>): MaintenanceQueueDefinition<Q> => ({
  kind: 'maintenance',
  ...def,
});

export const DEAD_LETTER_QUEUE = 'dead-letter';

/** Runs one pg-boss job of a queue (src/modules/jobs/run.ts): verification, bookkeeping, retries. */
export type JobRunner = (services: WorkerServices, queue: QueueDefinition, job: Job<unknown> & { retryCount: number; retryLimit: number }, log: Logger) => Promise<unknown>;

/**
 * pg-boss in the same database. Its schema is created by sql/0014 (pg-boss starts with migrate: false); the request
 * role has no privilege on it. Queues are created explicitly at start-up, loudly.
 */
export class Jobs {
  readonly #boss: PgBoss;
  /** Set on SIGTERM: tracked jobs stop at their next checkpoint and are handed back to the queue. */
  stopping = false;

  constructor(
    url: string,
    private readonly config: Config,
    private readonly queues: QueueDefinition[],
    private readonly log: Logger,
  ) {
    const superviseSeconds = config.jobsSuperviseSeconds;
    this.#boss = new PgBoss({
      connectionString: url,
      schema: 'pgboss',
      migrate: false,
      max: 4,
      application_name: 'tenantplane-jobs',
      superviseIntervalSeconds: superviseSeconds,
      monitorIntervalSeconds: superviseSeconds,
    });
    this.#boss.on('error', (err) => this.onBossError(err));
  }

  /** Last time a connection fault of pg-boss was logged: during an outage it reports one per queue per poll. */
  #lastFaultLog = 0;
  #faultsSince = 0;

  private onBossError(err: unknown) {
    if (!unreachable(err)) {
      this.log.error({ err }, 'pg-boss error');
      return;
    }
    // The database is away: pg-boss keeps polling and recovers by itself; say so once every 10 s, in words.
    this.#faultsSince++;
    const now = Date.now();
    if (now - this.#lastFaultLog < 10_000) return;
    this.log.warn({ reason: describeFailure(err), faults: this.#faultsSince }, 'job queue waiting for the database');
    this.#lastFaultLog = now;
    this.#faultsSince = 0;
  }

  async start() {
    await this.#boss.start();
    // Jobs that exhaust their retries outside the tracked-job bookkeeping land here for an operator to inspect.
    if (!(await this.#boss.getQueue(DEAD_LETTER_QUEUE))) await this.#boss.createQueue(DEAD_LETTER_QUEUE, { retentionSeconds: 30 * 86400 });
    for (const q of this.queues) {
      const options = {
        deadLetter: DEAD_LETTER_QUEUE,
        retryLimit: q.retryLimit,
        retryDelay: q.retryDelay,
        retryBackoff: q.retryBackoff,
        expireInSeconds: q.expireInSeconds,
        ...(q.heartbeatSeconds ? { heartbeatSeconds: q.heartbeatSeconds } : {}),
      };
      const existing = await this.#boss.getQueue(q.name);
      if (existing) await this.#boss.updateQueue(q.name, options);
      else await this.#boss.createQueue(q.name, options);
      if (q.kind === 'maintenance' && q.cron) await this.#boss.schedule(q.name, typeof q.cron === 'function' ? q.cron(this.config) : q.cron, {}, { tz: 'UTC' });
      this.log.debug({ queue: q.name }, 'queue ready');
    }
  }

  /** Starts a worker per queue in this process; every job goes through `runner`. */
  async work(services: WorkerServices, runner: JobRunner) {
    for (const q of this.queues) {
      await this.#boss.work(q.name, { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: 0.5 }, async (jobs: Job<unknown>[]) => {
        let output: unknown;
        for (const job of jobs as Array<Job<unknown> & { retryCount: number; retryLimit: number }>) {
          // The enqueuing request's id is carried in the payload: every line of the job's log carries it too.
          const requestId = (job.data as { requestId?: unknown } | null)?.requestId;
          const log = this.log.child({ queue: q.name, jobId: job.id, ...(typeof requestId === 'string' ? { requestId } : {}) });
          const started = performance.now();
          const finished = (status: 'completed' | 'failed') => {
            const seconds = (performance.now() - started) / 1000;
            services.metrics?.jobs.inc({ queue: q.name, status });
            services.metrics?.jobDuration.observe({ queue: q.name, status }, seconds);
            return Math.round(seconds * 1000);
          };
          try {
            output = await runner(services, q, job, log);
            log.info({ durationMs: finished('completed'), attempt: (job.retryCount ?? 0) + 1 }, 'job completed');
          } catch (err) {
            log.warn({ err, durationMs: finished('failed'), attempt: (job.retryCount ?? 0) + 1 }, 'job attempt failed');
            throw err;
          }
        }
        // One job per batch: what the handler returned becomes the pg-boss job's output (a refusal says why).
        return output;
      });
    }
  }

  /** Enqueues a maintenance job from worker code (tests and operators use it too); typed by the queue's payload. */
  async send<Q extends MaintenanceQueueName>(queue: Q, data: MaintenancePayload<Q>) {
    MAINTENANCE_QUEUES[queue].parse(data);
    return this.#boss.send(queue, data as object);
  }

  /** Graceful: running jobs reach their next checkpoint (and go back to the queue) or finish, then pg-boss stops. */
  async stop() {
    this.stopping = true;
    await this.#boss.stop({ graceful: true, timeout: 15_000 }).catch(() => undefined);
  }
}
