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
}

export interface RequestTransaction {
  tx: Tx;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

const ROLLBACK = Symbol('rollback');

/**
 * Owns the connection pool and the only way to run queries: inside a transaction that first switches to the
 * app role (NOBYPASSRLS) and sets app.* with is_local = true, so nothing leaks to the next user of a connection.
 */
export class Database {
  readonly pool: pg.Pool;
  readonly prisma: PrismaClient;
  /** Statements sent by this process; tests read it to prove a request costs a constant number of them. */
  statements = 0;

  constructor(
    url: string,
    poolSize: number,
    readonly appRole: string,
    readonly statementTimeoutMs = 15000,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: poolSize, application_name: 'tenantplane' });
    // An idle connection dropped by the server (restart, failover, shutdown) must not crash the process.
    this.pool.on('error', () => undefined);
    this.pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (...args: unknown[]) => {
        this.statements++;
        return query(...args);
      };
    });
    this.prisma = new PrismaClient({ adapter: new PrismaPg(this.pool) });
  }

  /** One statement: switch role and set the whole context (supabase/storage's habit). */
  private async enter(tx: Tx, ctx: DbContext) {
    await tx.$executeRaw`select set_config('role', ${this.appRole}, true),
      set_config('app.user_id', ${ctx.userId ?? ''}, true),
      set_config('app.tenant_id', ${ctx.tenant ?? ''}, true),
      set_config('app.request_id', ${ctx.requestId ?? ''}, true),
      set_config('statement_timeout', ${String(this.statementTimeoutMs)}, true)`;
  }

  /** Runs fn in its own transaction under ctx: committed when fn resolves, rolled back when it throws. */
  withContext<T>(ctx: DbContext, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(
      async (tx) => {
        await this.enter(tx, ctx);
        return fn(tx);
      },
      { maxWait: 10_000, timeout: 60_000 },
    );
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
    const finished = this.prisma
      .$transaction(
        async (tx) => {
          await this.enter(tx, ctx);
          ready(tx);
          if (!(await decision)) throw ROLLBACK;
        },
        { maxWait: 10_000, timeout: 120_000 },
      )
      .then(
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
