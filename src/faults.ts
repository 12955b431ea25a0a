/**
 * Connection faults of the two servers the API depends on, PostgreSQL and object storage (S3): recognised however
 * node-postgres, Prisma's adapter, Prisma or the AWS SDK wrapped them, so that a request can answer a retryable
 * SERVICE_UNAVAILABLE (src/graphql/server.ts) and a job can say in words what was unreachable (describeFailure).
 */

export type Dependency = 'database' | 'storage';

export interface Unreachable {
  /** What could not be reached. */
  what: Dependency;
  /** Why, in words (no stack, no secret): e.g. "connection refused at 127.0.0.1:5432". */
  detail: string;
}

/** Set on an error thrown by (or streamed from) the S3 client: src/storage/s3.ts marks them. */
const FROM_STORAGE = Symbol.for('tenantplane.fromStorage');

/** Marks an error as the object storage client's (the same object is rethrown: its class and fields are kept). */
export function markStorageError<E>(e: E): E {
  if (e && typeof e === 'object' && !Object.isFrozen(e)) {
    try {
      Object.defineProperty(e, FROM_STORAGE, { value: true, enumerable: false });
    } catch {
      /* a non-extensible error stays unmarked */
    }
  }
  return e;
}

/** Socket-level failures (Node's codes), the same for any server. */
const SOCKET_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'connection closed while writing',
  ETIMEDOUT: 'connection timed out',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'connection closed',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
};

/** PostgreSQL SQLSTATEs of a lost or refused session (class 08 is "connection exception"). */
function sqlStateDetail(code: string): string | undefined {
  if (code === '57P01') return 'the server terminated the session: an administrator, a restart or a failover';
  if (code === '57P02') return 'the server crashed';
  if (code === '57P03') return 'the server is starting up, shutting down or in recovery';
  if (code === '57P05') return 'the session was idle too long';
  if (/^08[0-9A-Z]{3}$/.test(code)) return `connection failure, SQLSTATE ${code}`;
  return undefined;
}

/** Prisma's own error codes for an unreachable or vanished server. */
const PRISMA_CODES: Record<string, string> = {
  P1001: 'the server cannot be reached',
  P1002: 'the server did not answer in time',
  P1017: 'the server closed the connection',
};

/** Prisma's adapter (convertDriverError) names socket failures by kind. */
const ADAPTER_KINDS: Record<string, string> = {
  DatabaseNotReachable: 'the server cannot be reached',
  ConnectionClosed: 'the connection was closed',
  SocketTimeout: 'the connection timed out',
};

/** node-postgres and pg-pool say these in words only (no code). */
const PG_MESSAGES: Array<[RegExp, string]> = [
  [/Connection terminated due to connection timeout/i, 'the connection timed out'],
  [/timeout exceeded when trying to connect/i, 'no connection could be made in time'],
  [/Connection terminated/i, 'the connection was closed'],
  [/has encountered a connection error and is not queryable/i, 'the connection was lost'],
  [/terminating connection due to/i, 'the server terminated the session'],
  [/Unable to start a transaction in the given time/i, 'no connection became free in time'],
  [/socket hang up/i, 'connection closed'],
];

const where = (e: { address?: unknown; port?: unknown; hostname?: unknown; host?: unknown }) => {
  const host = e.address ?? e.hostname ?? e.host;
  return typeof host === 'string' ? ` at ${host}${e.port ? `:${e.port}` : ''}` : '';
};

/** One error object's own verdict from its codes, without looking at its causes. */
function ownCode(e: any): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code && SOCKET_CODES[code]) return `${SOCKET_CODES[code]}${where(e)}`;
  if (code && PRISMA_CODES[code]) return PRISMA_CODES[code];
  const state = typeof e.originalCode === 'string' ? e.originalCode : code;
  if (state) {
    const d = sqlStateDetail(state);
    if (d) return d;
  }
  if (typeof e.kind === 'string' && ADAPTER_KINDS[e.kind]) return `${ADAPTER_KINDS[e.kind]}${where(e)}`;
  if (e.name === 'TimeoutError' && e.$metadata) return 'the request timed out';
  return undefined;
}

/** Failures node-postgres reports in words only; consulted after every code of the chain. */
function ownMessage(e: any): string | undefined {
  const message = typeof e?.message === 'string' ? e.message : '';
  for (const [pattern, detail] of PG_MESSAGES) if (pattern.test(message)) return detail;
  return undefined;
}

/** The error and what it wraps: GraphQL's originalError, Prisma's driverAdapterError, `cause`, AggregateError's errors. */
function* chain(e: unknown, seen = new Set<unknown>(), depth = 0): Generator<any> {
  if (typeof e !== 'object' || e === null || seen.has(e) || depth > 8) return;
  seen.add(e);
  yield e;
  const err = e as any;
  for (const next of [err.originalError, err.meta?.driverAdapterError, err.cause, ...(Array.isArray(err.errors) ? err.errors : [])]) {
    yield* chain(next, seen, depth + 1);
  }
}

/**
 * What could not be reached, when `e` is a connection fault of PostgreSQL or object storage; undefined for any other
 * error. An error the S3 client threw (markStorageError) names storage; every other connection fault is the
 * database's (the API talks to nothing else on its request and job paths).
 */
export function unreachable(e: unknown): Unreachable | undefined {
  let storage = false;
  let detail: string | undefined;
  let worded: string | undefined;
  for (const err of chain(e)) {
    if (err[FROM_STORAGE]) storage = true;
    detail ??= ownCode(err);
    worded ??= ownMessage(err);
  }
  detail ??= worded;
  return detail ? { what: storage ? 'storage' : 'database', detail } : undefined;
}

const NAMES: Record<Dependency, string> = { database: 'the database', storage: 'object storage' };

/** The client-facing sentence of a SERVICE_UNAVAILABLE answer. */
export function unavailableMessage(what: Dependency) {
  return `${NAMES[what]} is unreachable, try again`;
}

/**
 * A failure's reason in words, for a job's error and log: "the database is unreachable (connection refused at
 * 127.0.0.1:5432)" or "object storage is unreachable (…)" for connection faults; any other error's message as is.
 */
export function describeFailure(e: unknown): string {
  const u = unreachable(e);
  if (u) return `${NAMES[u.what]} is unreachable (${u.detail})`;
  return e instanceof Error ? e.message : String(e);
}
