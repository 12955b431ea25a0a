import crypto from 'node:crypto';
import pg from 'pg';
import pino from 'pino';
import { inject } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { startApp, type RunningApp } from '../../src/app.ts';
import { withDatabase } from './global-setup.ts';
import { managedSitesDatabase } from '../../src/modules/fleet/managed.ts';

export interface TestApp extends RunningApp {
  /** Privileged URL of this file's own database (for SQL-level tests and setup). */
  databaseUrl: string;
  /** Privileged URL of the sites database of the managed database server (where SCHEMA-isolated sites live). */
  sitesDatabaseUrl: string;
}

/** Clones the migrated template into a database of this test file's own and starts the API on it (random port). */
export async function startTestApp(env: Record<string, string> = {}, opts: { log?: pino.Logger } = {}): Promise<TestApp> {
  const adminUrl = inject('adminUrl');
  const template = inject('templateDb');
  const name = `tp_test_${template.replace('tp_template_', '')}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name} template ${template}`);
  await admin.end();
  const databaseUrl = withDatabase(adminUrl, name);
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_SIZE: '5',
    // Cheap argon2 in tests: the cost is a parameter, the algorithm is the same.
    ARGON2_MEMORY_KIB: '4096',
    ARGON2_TIME_COST: '1',
    LOG_LEVEL: 'silent',
    JOBS_SUPERVISE_SECONDS: '2',
    S3_ENDPOINT: inject('s3Endpoint'),
    S3_ACCESS_KEY_ID: process.env.S3_ACCESS_KEY_ID ?? 'S3RVER',
    S3_SECRET_ACCESS_KEY: process.env.S3_SECRET_ACCESS_KEY ?? 'S3RVER',
    S3_BUCKET: `tp-test-${crypto.randomBytes(6).toString('hex')}`,
    ...env,
  });
  const app = await startApp(config, { migrate: false, log: opts.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) });
  return { ...app, databaseUrl, sitesDatabaseUrl: withDatabase(databaseUrl, managedSitesDatabase(databaseUrl)) };
}
