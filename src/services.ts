import type { Config } from './config.ts';
import type { Database } from './db/database.ts';
import type { AccessTokens } from './auth/tokens.ts';
import type { PasswordHasher } from './auth/passwords.ts';
import type { Authenticator } from './auth/context.ts';
import type { EventHub } from './graphql/events.ts';
import type { Logger } from 'pino';
import type pg from 'pg';
import type { Storage } from './storage/s3.ts';
import type { Jobs } from './jobs/queue.ts';
import type { Metrics } from './observability/metrics.ts';
import type { SecretBox } from './secrets/envelope.ts';

/**
 * What request code (resolvers, the services they call, subscriptions) may use. Every database access goes
 * through `db`, as the NOBYPASSRLS request role inside a transaction with the caller's context; jobs are enqueued
 * through SQL (app.enqueue_job). There is deliberately no privileged pool and no pg-boss handle here.
 */
export interface RequestServices {
  config: Config;
  db: Database;
  tokens: AccessTokens;
  passwords: PasswordHasher;
  authenticator: Authenticator;
  events: EventHub;
  storage: Storage;
  log: Logger;
  /** Prometheus metrics served at GET /metrics. */
  metrics: Metrics;
  /**
   * Secrets at rest (src/secrets/): seals what a request generated (a site password) before it is stored through
   * app.put_site_secret / app.put_fleet_secret (src/secrets/store.ts). Requests can seal, never read stored values back.
   */
  secrets: SecretBox;
}

/** What job handlers get on top: the owner pool and pg-boss. Built in src/app.ts, never handed to a resolver. */
export interface WorkerServices extends RequestServices {
  /**
   * Privileged connection (the migration/owner role) for the few maintenance tasks that cannot run as the app role:
   * creating and dropping site schemas and roles, purges, backup COPY streams.
   */
  ownerPool: pg.Pool;
  jobs: Jobs;
}

/** The request-only view of the services: a new object, so the worker-only ones are not reachable at run time either. */
export function requestServices(s: WorkerServices): RequestServices {
  const { config, db, tokens, passwords, authenticator, events, storage, log, metrics, secrets } = s;
  return { config, db, tokens, passwords, authenticator, events, storage, log, metrics, secrets };
}
