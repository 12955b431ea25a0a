import { AsyncLocalStorage } from 'node:async_hooks';
import crypto from 'node:crypto';
import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client.ts';

export type { PrismaClient };
/** The Prisma client of one open transaction, already switched to the app role with its context set. */
export type Tx = Omit<PrismaClient, '$connect' | '$disconnect' | '$on' | '$transaction' | '$extends'>;

/** The per-transaction context the RLS policies read (see sql/0001, sql/0003). */
export interface DbContext {
  userId?: string | null;
  /** X-Tenant narrowing: a tenant id or slug. */
  tenant?: string | null;
  requestId?: string;
  /** The API key authenticating the request (app.api_key_id; '' otherwise, so a pooled connection never carries one). */
  apiKeyId?: string | null;
  /**
   * Record platform staff's support access (X-Tenant naming a tenant they are not a member of) in that tenant's
   * audit log: set for each HTTP request and subscription start, not for the re-reads of subscription events.
   */
  recordSupportAccess?: boolean;
}

/** Only a request naming a tenant can be a support access; app.record_support_access decides whether it is one. */
const supportAccess = (ctx: DbContext) => Boolean(ctx.recordSupportAccess && ctx.tenant);

export interface RequestTransaction {
  tx: Tx;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

const ROLLBACK = Symbol('rollback');

/** Prisma's adapter starts a transaction with a (possibly named) query whose text is exactly BEGIN. */
function isBegin(q: unknown) {
  const text = typeof q === 'string' ? q : q && typeof q === 'object' && 'text' in q ? (q as { text: unknown }).text : undefined;
  return text === 'BEGIN';
}

export interface DatabaseOptions {
  poolSize: number;
  /** The NOBYPASSRLS role every transaction switches to. */
  appRole: string;
  statementTimeoutMs?: number;
  /** How many distinct SQL texts may become named prepared statements (0: none). */
  preparedStatements?: number;
}

/**
 * Names SQL texts so that node-postgres prepares each once per connection and PostgreSQL can reuse its plan:
 * without a name every statement is parsed and planned again (planning alone was ~1 ms of a documents page).
 * Prisma's SQL varies with the GraphQL selection, which clients choose, so only the first `max` distinct texts get
 * a name — that bounds the prepared statements (and their memory) each server connection can accumulate.
 */
export function preparedStatementNames(max: number): (query: { sql: string }) => string {
  const names = new Map<string, string>();
  return ({ sql }) => {
    let name = names.get(sql);
    if (name === undefined && names.size < max) {
      name = `tp_${crypto.createHash('sha1').update(sql).digest('base64url')}`;
      names.set(sql, name);
    }
    return name as string; // undefined: an unnamed statement, parsed and planned each time
  };
}

/** How long a request waits for a new connection (or a free one) before failing with SERVICE_UNAVAILABLE. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * A connection that dies must never take the process down. node-postgres emits 'error' on the client: the pool
 * listens while the client is idle, but nobody does while it is checked out (a session terminated mid-transaction,
 * between two statements; seen as "Unhandled 'error' event" 57P01 ending the API). Every client of `pool` gets a
 * listener of its own; the work on that client fails at its next statement (SERVICE_UNAVAILABLE for a request) and
 * the pool discards the connection when it is released, so the next checkout gets a fresh one.
 */
export function survivePoolFaults(pool: pg.Pool, onLost: (err: Error) => void = () => undefined) {
  pool.on('error', () => undefined); // the idle client's error, already heard by its own listener below
  pool.on('connect', (client) => client.on('error', onLost));
  return pool;
}

/**
 * Owns the connection pool and the only way to run queries: inside a transaction that first switches to the
 * app role (NOBYPASSRLS) and sets app.* with is_local = true, so nothing leaks to the next user of a connection.
 */
export class Database {
  readonly pool: pg.Pool;
  readonly prisma: PrismaClient;
  /** Statements sent by this process (round trips); tests read it to prove a request costs a constant number of them. */
  statements = 0;
  /** Sees every query as sent to the server (the benchmarks capture a request's SQL with it). */
  observer?: (query: unknown) => void;

  readonly appRole: string;
  readonly statementTimeoutMs: number;

  constructor(url: string, options: DatabaseOptions) {
    this.appRole = options.appRole;
    this.statementTimeoutMs = options.statementTimeoutMs ?? 15000;
    this.pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize,
      application_name: 'tenantplane',
      // A server that does not answer (a black-holed host) fails the request instead of hanging it.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
    });
    survivePoolFaults(this.pool);
    this.pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (...args: unknown[]) => {
        this.statements++;
        const pending = this.opening.getStore();
        if (pending && !pending.sent && isBegin(args[0])) {
          // The transaction Database is opening: BEGIN and the context go in one round trip (simple protocol).
          pending.sent = true;
          args = [`BEGIN; ${this.contextSql(client, pending.ctx)}`];
        }
        this.observer?.(args[0]);
        return query(...args);
      };
    });
    const prepared = options.preparedStatements ?? 0;
    const adapter = new PrismaPg(this.pool, prepared > 0 ? { statementNameGenerator: preparedStatementNames(prepared) } : undefined);
    this.prisma = new PrismaClient({ adapter });
  }

  /** Set while Database starts one of its transactions, so the pool client can send the context along with BEGIN. */
  private readonly opening = new AsyncLocalStorage<{ ctx: DbContext; sent: boolean }>();

  /** The context statement with its values as literals (the simple protocol takes no parameters). */
  private contextSql(client: pg.PoolClient, ctx: DbContext) {
    const lit = (v: string) => client.escapeLiteral(v);
    return `select set_config('role', ${lit(this.appRole)}, true), set_config('app.user_id', ${lit(ctx.userId ?? '')}, true),
      set_config('app.tenant_id', ${lit(ctx.tenant ?? '')}, true), set_config('app.request_id', ${lit(ctx.requestId ?? '')}, true),
      set_config('app.api_key_id', ${lit(ctx.apiKeyId ?? '')}, true),
      set_config('statement_timeout', ${lit(String(this.statementTimeoutMs))}, true)${supportAccess(ctx) ? '; select app.record_support_access()' : ''}`;
  }

  /**
   * Starts a Prisma transaction under ctx. The role switch and app.* settings normally ride with BEGIN (see the
   * pool's query wrapper: one round trip instead of two); if BEGIN did not pass through it, one statement sets them.
   */
  private transaction<T>(ctx: DbContext, fn: (tx: Tx) => Promise<T>, timeout: number): Promise<T> {
    const pending = { ctx, sent: false };
    return this.opening.run(pending, () =>
      this.prisma.$transaction(
        async (tx) => {
          if (!pending.sent) await this.enter(tx, ctx);
          pending.sent = true; // nothing later in this transaction is a BEGIN of ours
          return fn(tx);
        },
        { maxWait: 10_000, timeout },
      ),
    );
  }

  /** One statement: switch role and set the whole context (supabase/storage's habit). */
  private async enter(tx: Tx, ctx: DbContext) {
    await tx.$executeRaw`select set_config('role', ${this.appRole}, true),
      set_config('app.user_id', ${ctx.userId ?? ''}, true),
      set_config('app.tenant_id', ${ctx.tenant ?? ''}, true),
      set_config('app.request_id', ${ctx.requestId ?? ''}, true),
      set_config('app.api_key_id', ${ctx.apiKeyId ?? ''}, true),
      set_config('statement_timeout', ${String(this.statementTimeoutMs)}, true)`;
    if (supportAccess(ctx)) await tx.$executeRaw`select app.record_support_access()`;
  }

  /** Runs fn in its own transaction under ctx: committed when fn resolves, rolled back when it throws. */
  withContext<T>(ctx: DbContext, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.transaction(ctx, fn, 60_000);
  }

  /**
   * Opens a transaction that stays open until commit() or rollback(): one per GraphQL request or
   * subscription event, so every resolver of that request shares it.
   */
  async open(ctx: DbContext): Promise<RequestTransaction> {
    let decide!: (commit: boolean) => void;
    const decision = new Promise<boolean>((resolve) => (decide = resolve));
    let ready!: (tx: Tx) => void;
    const txReady = new Promise<Tx>((resolve) => (ready = resolve));
    const finished = this.transaction(
      ctx,
      async (tx) => {
        ready(tx);
        if (!(await decision)) throw ROLLBACK;
      },
      120_000,
    ).then(
        () => undefined,
        (e) => {
          if (e !== ROLLBACK) throw e;
        },
      );
    const tx = await Promise.race([txReady, finished.then(() => Promise.reject(new Error('transaction ended before it was ready')))]);
    return {
      tx,
      commit: async () => {
        decide(true);
        await finished;
      },
      rollback: async () => {
        decide(false);
        await finished.catch(() => undefined);
      },
    };
  }

  async close() {
    await this.prisma.$disconnect();
    await this.pool.end().catch(() => undefined);
  }
}

/**
 * Refuses to serve when the request role could bypass RLS (superuser or BYPASSRLS), whatever the URL's user is.
 */
export async function assertAppRoleIsolated(db: Database) {
  const rows = await db.withContext({}, (tx) =>
    tx.$queryRaw<{ role: string; super: boolean; bypass: boolean }[]>`
      select current_user as role, r.rolsuper as super, r.rolbypassrls as bypass from pg_roles r where r.rolname = current_user`,
  );
  const r = rows[0];
  if (!r || r.super || r.bypass || r.role !== db.appRole) {
    throw new Error(`refusing to serve: request role ${r?.role} can bypass row-level security (superuser=${r?.super}, bypassrls=${r?.bypass})`);
  }
}
