import crypto from 'node:crypto';
import type pg from 'pg';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Label values a client can choose are bounded: at most this many distinct operation names, then `__other`. */
const MAX_OPERATION_NAMES = 200;
const OPERATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;

/**
 * The process's Prometheus metrics, in a registry of its own (not prom-client's global one: tests run several apps
 * in one process). Served as text at GET /metrics.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly operationNames = new Set<string>();

  readonly graphqlDuration = new Histogram({
    name: 'graphql_request_duration_seconds',
    help: 'GraphQL requests over HTTP, from arrival to the last byte of the response (transaction commit included), by operation name.',
    labelNames: ['operation'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly graphqlErrors = new Counter({
    name: 'graphql_errors_total',
    help: 'Errors answered to GraphQL clients (HTTP and WebSocket), by extensions.code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly jobs = new Counter({
    name: 'jobs_total',
    help: 'Job attempts finished by this process, by queue and status (completed or failed).',
    labelNames: ['queue', 'status'] as const,
    registers: [this.registry],
  });

  readonly jobDuration = new Histogram({
    name: 'job_duration_seconds',
    help: 'Duration of job attempts, by queue and status.',
    labelNames: ['queue', 'status'] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });

  readonly websocketConnections = new Gauge({
    name: 'websocket_connections',
    help: 'Open graphql-ws connections.',
    registers: [this.registry],
  });

  readonly subscriptionEvents = new Counter({
    name: 'subscription_events_total',
    help: 'Subscription events delivered, by whether the operation was executed for it (own) or reused from a subscriber of the same operation as the same principal (shared).',
    labelNames: ['execution'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** db_pool_connections{state="in_use"|"idle"|"waiting"}, read from the request pool at each scrape. */
  watchPool(pool: pg.Pool) {
    new Gauge({
      name: 'db_pool_connections',
      help: 'Request connection pool: connections in use, idle, and clients waiting for one.',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        this.set({ state: 'in_use' }, pool.totalCount - pool.idleCount);
        this.set({ state: 'idle' }, pool.idleCount);
        this.set({ state: 'waiting' }, pool.waitingCount);
      },
    });
  }

  /** The label for an operation name sent by a client: kept when well-formed and among the first names seen. */
  operationLabel(name: string | null | undefined): string {
    if (!name) return '__anonymous';
    if (!OPERATION_NAME.test(name)) return '__other';
    if (this.operationNames.has(name)) return name;
    if (this.operationNames.size >= MAX_OPERATION_NAMES) return '__other';
    this.operationNames.add(name);
    return name;
  }

  countErrors(codes: Iterable<string>) {
    for (const code of codes) this.graphqlErrors.inc({ code: /^[A-Z_]{1,40}$/.test(code) ? code : 'OTHER' });
  }

  async text() {
    return this.registry.metrics();
  }

  get contentType() {
    return this.registry.contentType;
  }
}

/** Constant-time comparison of a presented bearer token with METRICS_TOKEN. */
export function metricsTokenMatches(header: string | undefined, token: string) {
  const presented = /^Bearer\s+(\S+)$/i.exec(header?.trim() ?? '')?.[1] ?? '';
  const a = crypto.createHash('sha256').update(presented).digest();
  const b = crypto.createHash('sha256').update(token).digest();
  return crypto.timingSafeEqual(a, b) && presented.length > 0;
}
