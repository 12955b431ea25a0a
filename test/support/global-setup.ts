import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { freeLocalPort, startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { migrate } from '../../src/db/migrate.ts';
import { startEmbeddedS3, type EmbeddedS3 } from '../../src/storage/embedded.ts';

/**
 * Starts one PostgreSQL for the whole run (embedded, or DATABASE_URL when set), migrates a template database
 * once, and hands its URL to the test files, which each clone it (CREATE DATABASE … TEMPLATE).
 */
export default async function setup(project: TestProject) {
  let embedded: EmbeddedDatabase | undefined;
  let adminUrl = process.env.DATABASE_URL;
  let dir: string | undefined;
  const dirs: string[] = [];
  if (!adminUrl) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantplane-test-'));
    embedded = await startEmbeddedPostgres(dir, await freeLocalPort());
    adminUrl = embedded.url;
  }
  const template = `tp_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${template}`);
  await admin.query(`create database ${template}`);
  await admin.end();
  await migrate(withDatabase(adminUrl, template));
  // One S3 endpoint for the run (embedded s3rver, or S3_ENDPOINT); each test file gets a bucket of its own.
  let s3: EmbeddedS3 | undefined;
  let s3Endpoint = process.env.S3_ENDPOINT;
  if (!s3Endpoint) {
    const s3Dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantplane-s3-'));
    s3 = await startEmbeddedS3(s3Dir, 0, 'tp-test-default');
    s3Endpoint = s3.endpoint;
    dirs.push(s3Dir);
  }
  project.provide('s3Endpoint', s3Endpoint);
  project.provide('adminUrl', adminUrl);
  project.provide('templateDb', template);

  return async () => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    const { rows } = await c.query(`select datname from pg_database where datname like 'tp_test_${process.pid}_%' or datname = $1`, [template]);
    for (const r of rows) await c.query(`drop database if exists ${r.datname} with (force)`).catch(() => undefined);
    await c.end();
    await embedded?.stop();
    await s3?.stop();
    for (const d of [dir, ...dirs]) if (d) fs.rmSync(d, { recursive: true, force: true });
  };
}

export function withDatabase(url: string, database: string) {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    templateDb: string;
    s3Endpoint: string;
  }
}
