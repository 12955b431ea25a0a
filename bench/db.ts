import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freeLocalPort, startEmbeddedPostgres } from '../src/db/embedded.ts';

export interface BenchDatabase {
  /** Privileged URL of the fresh benchmark database. */
  url: string;
  /** Another fresh database on the same server (dropped by its own stop()); a copy of `template` when given. */
  another(suffix: string, template?: BenchDatabase): Promise<BenchDatabase>;
  /** The database's name. */
  name: string;
  stop(): Promise<void>;
}

/** `tp_bench_<pid><suffix>` on the server of adminUrl, created fresh; stop() drops it unless BENCH_KEEP_DB=1. */
async function freshDatabase(adminUrl: string, suffix: string, stopServer: () => Promise<void>, template?: string): Promise<BenchDatabase> {
  const name = `tp_bench_${process.pid}${suffix}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.query(`create database ${name}${template ? ` template ${template}` : ''}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    another: (s, t) => freshDatabase(adminUrl, s, async () => {}, t?.name),
    async stop() {
      if (process.env.BENCH_KEEP_DB !== '1') {
        const c = new pg.Client({ connectionString: adminUrl });
        await c.connect();
        await c.query(`drop database if exists ${name} with (force)`).catch(() => undefined);
        await c.end();
      }
      await stopServer();
    },
  };
}

/**
 * A fresh database `tp_bench_<pid>`: on BENCH_DATABASE_URL / DATABASE_URL's server when set (dropped at the end),
 * else on an embedded PostgreSQL 18 in a temporary directory (removed at the end).
 */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  let adminUrl = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
  let stopServer = async () => {};
  if (!adminUrl) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantplane-bench-'));
    const embedded = await startEmbeddedPostgres(dir, await freeLocalPort());
    adminUrl = embedded.url;
    stopServer = async () => {
      await embedded.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    };
  }
  return freshDatabase(adminUrl, '', stopServer);
}
