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

/** Long-lived services shared by every request, built once at start-up (src/app.ts). */
export interface Services {
  config: Config;
  db: Database;
  /**
   * Privileged connection (the migration/owner role) for the few maintenance tasks that cannot run as the app role:
   * creating and dropping site schemas and roles, purges, backup COPY streams. Never reachable from a resolver.
   */
  ownerPool: pg.Pool;
  tokens: AccessTokens;
  passwords: PasswordHasher;
  authenticator: Authenticator;
  events: EventHub;
  storage: Storage;
  jobs: Jobs;
  log: Logger;
  /** Prometheus metrics served at GET /metrics. */
  metrics: Metrics;
}
