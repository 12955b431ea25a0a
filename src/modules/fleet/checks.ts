import crypto from 'node:crypto';
import pg from 'pg';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { maintenanceQueue, type MaintenanceJob } from '../../jobs/queue.ts';
import type { WorkerServices } from '../../services.ts';
import { unreachable } from '../../faults.ts';
import { getSecret } from '../../secrets/store.ts';
import { Storage } from '../../storage/s3.ts';
import { RefusedJob } from '../jobs/run.ts';
import { ident } from '../sites/apps.ts';
import { asOwner } from '../sites/provisioning.ts';

/**
 * Fleet checks (issue 10 §1): maintenance jobs run by a worker as the owner role, asked for by platform staff through
 * app.request_fleet_check (sql/0027). Each records PASSED or FAILED with a reason a person can act on, and when
 * (check_status, check_error, checked_at); a database server's passed check activates it (PENDING → ACTIVE, a move
 * only maintenance code may make). What is checked is re-read from the database by id: the payload carries ids only.
 */

/** The oldest PostgreSQL a database server may run (MERGE, the public schema's PG 15 defaults, security_invoker views…). */
export const MIN_POSTGRES_MAJOR = 15;
const CONNECT_TIMEOUT_MS = 10_000;
const CHECK_TIMEOUT_MS = 30_000;

/** node-postgres' `ssl` for a libpq-style sslmode ('prefer' tries TLS first, then without). */
export function pgSsl(mode: string, host: string): pg.ClientConfig['ssl'] {
  if (mode === 'disable') return false;
  if (mode === 'verify-full') return { rejectUnauthorized: true, servername: host };
  return { rejectUnauthorized: false };
}

/** A failure in words: a server's own message as it is, a connection fault as what and where. */
export function reason(e: unknown, where: string): string {
  const u = unreachable(e);
  if (u) return `could not connect to ${where}: ${u.detail.replace(/ at \S+$/, '')}`;
  const err = e as { message?: unknown; code?: unknown; name?: unknown; $metadata?: unknown };
  if (err && err.$metadata && typeof err.name === 'string') return `${err.name}: ${String(err.message ?? '')}`.trim();
  const message = typeof err?.message === 'string' && err.message ? err.message : String(e);
  return message.replace(/\s+/g, ' ').trim().slice(0, 500);
}

async function withTimeout<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([fn(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

interface DatabaseServerRow {
  server_id: string;
  name: string;
  host: string;
  port: number;
  admin_user: string;
  sites_database: string;
  ssl_mode: string;
  managed: boolean;
}

/**
 * The admin password of a database server: its sealed secret (app_private.secrets, kind database-server-password);
 * for the deployment's own (managed) server without one, the owner URL's password.
 */
async function adminPassword(services: WorkerServices, row: DatabaseServerRow): Promise<string | null> {
  const stored = await getSecret(services.ownerPool, services.secrets, 'database-server-password', row.server_id);
  if (stored !== null || !row.managed) return stored;
  const url = (services.ownerPool as unknown as { options?: { connectionString?: string } }).options?.connectionString;
  return url ? decodeURIComponent(new URL(url).password) : null;
}

async function connect(row: DatabaseServerRow, password: string, database: string): Promise<pg.Client> {
  const attempt = async (ssl: pg.ClientConfig['ssl']) => {
    const client = new pg.Client({
      host: row.host,
      port: row.port,
      user: row.admin_user,
      password,
      database,
      ssl,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: CHECK_TIMEOUT_MS,
      application_name: 'tenantplane-check',
    });
    client.on('error', () => undefined); // a connection lost mid-check fails the next query, not the process
    try {
      await client.connect();
      return client;
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
  };
  if (row.ssl_mode !== 'prefer') return attempt(pgSsl(row.ssl_mode, row.host));
  try {
    return await attempt(pgSsl('require', row.host));
  } catch (e) {
    if (/does not support SSL/i.test(String((e as Error)?.message))) return attempt(false);
    throw e;
  }
}

/**
 * A fleet server is dedicated to sites: every database on it that PUBLIC may connect to (`postgres`, `template1`, any
 * other) loses that, so a site's login reaches its own database and nothing else; each site database grants CONNECT
 * to its own login only. Returns the databases still open to PUBLIC (the admin login could not revoke it).
 */
async function closeDatabasesToPublic(client: pg.Client): Promise<string[]> {
  const open = async () =>
    (await client.query<{ datname: string }>(`select datname from pg_database where datallowconn and has_database_privilege('public', datname, 'CONNECT') order by datname`)).rows.map((r) => r.datname);
  for (const name of await open()) await client.query(`revoke connect, temporary on database ${ident(name)} from public`);
  return open();
}

export interface DatabaseCheckResult {
  passed: boolean;
  error: string | null;
  version: string | null;
  createdSitesDatabase: boolean;
}

/**
 * Connects as the admin login (to the sites database, or to `postgres` while it does not exist yet), requires
 * PostgreSQL ≥ 15 and a login that may create roles and databases, and creates the sites database when missing
 * (with no CONNECT for PUBLIC: each site's role is granted its own), and closes the server's other databases to PUBLIC
 * (closeDatabasesToPublic). Never throws for what it finds: a failure is the
 * result.
 */
export async function checkPostgres(row: DatabaseServerRow, password: string | null): Promise<DatabaseCheckResult> {
  const where = `${row.host}:${row.port}`;
  const result: DatabaseCheckResult = { passed: false, error: null, version: null, createdSitesDatabase: false };
  if (password === null) return { ...result, error: 'no admin password is stored for this server: set one with updateDatabaseServer' };
  let client: pg.Client | undefined;
  try {
    try {
      client = await connect(row, password, row.sites_database);
    } catch (e) {
      // 3D000: the sites database does not exist yet; the maintenance database will do to create it.
      if ((e as { code?: string }).code !== '3D000') throw e;
      client = await connect(row, password, 'postgres');
    }
    const { rows } = await client.query<{ num: number; version: string; super: boolean; createrole: boolean; createdb: boolean; db: string }>(
      `select current_setting('server_version_num')::int as num, current_setting('server_version') as version, current_database() as db,
              r.rolsuper as super, r.rolcreaterole as createrole, r.rolcreatedb as createdb
         from pg_roles r where r.rolname = current_user`,
    );
    const info = rows[0]!;
    result.version = info.version;
    const major = Math.floor(info.num / 10000);
    if (major < MIN_POSTGRES_MAJOR) return { ...result, error: `PostgreSQL ${major} is older than ${MIN_POSTGRES_MAJOR}` };
    if (!info.super && !(info.createrole && info.createdb)) {
      return { ...result, error: `the login ${row.admin_user} may not create roles and databases: it needs SUPERUSER, or CREATEROLE and CREATEDB` };
    }
    if (info.db !== row.sites_database) {
      const exists = await client.query(`select 1 from pg_database where datname = $1`, [row.sites_database]);
      if (!exists.rowCount) {
        try {
          await client.query(`create database ${ident(row.sites_database)}`);
          await client.query(`revoke all on database ${ident(row.sites_database)} from public`);
          result.createdSitesDatabase = true;
        } catch (e) {
          if ((e as { code?: string }).code !== '42P04') throw e; // created meanwhile by a concurrent check
        }
      }
      await client.end().catch(() => undefined);
      client = await connect(row, password, row.sites_database);
      await client.query('select 1');
    }
    if (!row.managed) {
      const open = await closeDatabasesToPublic(client);
      if (open.length) {
        return { ...result, error: `PUBLIC may connect to ${open.map((d) => `"${d}"`).join(', ')} and ${row.admin_user} may not revoke it: a site's login would reach it. Revoke CONNECT on it from PUBLIC, or register a superuser` };
      }
    }
    return { ...result, passed: true };
  } catch (e) {
    return { ...result, error: reason(e, where) };
  } finally {
    await client?.end().catch(() => undefined);
  }
}

/**
 * `database-server-check`: checks the server as it is configured now and records the outcome, unless its connection
 * settings changed meanwhile (then that change's own check decides). PASSED makes a PENDING server ACTIVE.
 */
export const databaseServerCheckQueue = maintenanceQueue({
  name: 'database-server-check',
  retryLimit: 1,
  retryDelay: 5,
  retryBackoff: false,
  expireInSeconds: 120,
  async run(services, data, job) {
    const { rows } = await services.ownerPool.query<DatabaseServerRow>(
      `select d.server_id::text, s.name, d.host, d.port, d.admin_user, d.sites_database, d.ssl_mode, d.managed
         from app_public.database_servers d join app_public.servers s on s.id = d.server_id where d.server_id = $1`,
      [data.serverId],
    );
    const row = rows[0];
    if (!row) throw new RefusedJob('no such database server');
    const result = await checkPostgres(row, await adminPassword(services, row).catch(() => null));
    const activated = await recordDatabaseCheck(services, row, result);
    job.log.info({ server: row.name, passed: result.passed, error: result.error, version: result.version, activated }, 'database server checked');
    return { passed: result.passed, error: result.error, version: result.version, activated, createdSitesDatabase: result.createdSitesDatabase };
  },
});

async function recordDatabaseCheck(services: WorkerServices, row: DatabaseServerRow, result: DatabaseCheckResult) {
  return asOwner(services.ownerPool, async (c) => {
    const updated = await c.query(
      `update app_public.database_servers
          set check_status = $2, check_error = $3, checked_at = now(), version = coalesce($4, version), updated_at = now()
        where server_id = $1 and host = $5 and port = $6 and admin_user = $7 and ssl_mode = $8`,
      [row.server_id, result.passed ? 'PASSED' : 'FAILED', result.error, result.version, row.host, row.port, row.admin_user, row.ssl_mode],
    );
    if (!updated.rowCount || !result.passed) return false;
    const activated = await c.query(`update app_public.servers set status = 'ACTIVE', updated_at = now() where id = $1 and status = 'PENDING'`, [row.server_id]);
    return Boolean(activated.rowCount);
  });
}

interface StorageRow {
  id: string;
  endpoint: string;
  region: string;
  access_key_id: string;
  default_bucket: string;
  managed: boolean;
}

/**
 * Writes a probe object of random bytes under `tenantplane-checks/` in the bucket, reads it back and compares the
 * bytes, deletes it and makes sure it is gone. Never throws for what it finds: a failure is the result.
 */
export async function probeStorage(storage: Storage, where: string): Promise<{ passed: boolean; error: string | null }> {
  const key = `tenantplane-checks/${crypto.randomUUID()}`;
  const body = crypto.randomBytes(4096);
  let step = 'writing a probe object';
  try {
    await withTimeout(CHECK_TIMEOUT_MS, 'the storage check', async () => {
      await storage.client.send(new PutObjectCommand({ Bucket: storage.bucket, Key: key, Body: body, ContentLength: body.length }));
      step = 'reading the probe object back';
      const back = await storage.read(key, body.length * 2);
      if (!back.equals(body)) throw new Error(`the object read back differs from what was written (${back.length} bytes, ${body.length} written)`);
      step = 'deleting the probe object';
      await storage.delete(key);
      if ((await storage.size(key)) !== null) throw new Error('the probe object is still there after its deletion');
    });
    return { passed: true, error: null };
  } catch (e) {
    return { passed: false, error: `${step} in bucket ${storage.bucket} failed: ${reason(e, where)}` };
  } finally {
    if (step !== 'writing a probe object') await storage.delete(key).catch(() => undefined);
  }
}

/** `storage-check`: probes the storage configuration with its own keys (the deployment's own storage for a managed one without a stored key). */
export const storageCheckQueue = maintenanceQueue({
  name: 'storage-check',
  retryLimit: 1,
  retryDelay: 5,
  retryBackoff: false,
  expireInSeconds: 120,
  async run(services, data, job) {
    const { rows } = await services.ownerPool.query<StorageRow>(
      `select id::text, endpoint, region, access_key_id, default_bucket, managed from app_public.storage_configs where id = $1`,
      [data.storageConfigId],
    );
    const row = rows[0];
    if (!row) throw new RefusedJob('no such storage configuration');
    const result = await checkStorage(services, row);
    await services.ownerPool.query(
      `update app_public.storage_configs set check_status = $2, check_error = $3, checked_at = now(), updated_at = now()
        where id = $1 and endpoint = $4 and region = $5 and access_key_id = $6 and default_bucket = $7`,
      [row.id, result.passed ? 'PASSED' : 'FAILED', result.error, row.endpoint, row.region, row.access_key_id, row.default_bucket],
    );
    job.log.info({ storageConfigId: row.id, passed: result.passed, error: result.error }, 'storage checked');
    return result;
  },
});

async function checkStorage(services: WorkerServices, row: StorageRow): Promise<{ passed: boolean; error: string | null }> {
  let secret: string | null;
  try {
    secret = await getSecret(services.ownerPool, services.secrets, 'storage-secret-key', row.id);
  } catch (e) {
    return { passed: false, error: `the stored secret key cannot be opened: ${(e as Error).message}` };
  }
  if (secret === null && !row.managed) return { passed: false, error: 'no secret access key is stored for this configuration: set one with updateStorageConfig' };
  const storage =
    secret === null
      ? services.storage
      : new Storage({ endpoint: row.endpoint, region: row.region, accessKeyId: row.access_key_id, secretAccessKey: secret, bucket: row.default_bucket });
  try {
    return await probeStorage(storage, row.endpoint);
  } finally {
    if (storage !== services.storage) storage.client.destroy();
  }
}

/** `server-activate`: a PENDING proxy or app server becomes ACTIVE (inventory only: nothing to connect to). */
export const serverActivateQueue = maintenanceQueue({
  name: 'server-activate',
  retryLimit: 2,
  retryDelay: 5,
  retryBackoff: true,
  expireInSeconds: 60,
  async run(services, data, job: MaintenanceJob) {
    const r = await services.ownerPool.query(
      `update app_public.servers set status = 'ACTIVE', updated_at = now() where id = $1 and status = 'PENDING' and type in ('PROXY', 'APP') returning name`,
      [data.serverId],
    );
    job.log.info({ serverId: data.serverId, activated: Boolean(r.rowCount) }, 'server activation');
    return { activated: Boolean(r.rowCount) };
  },
});
