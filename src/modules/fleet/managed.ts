import dns from 'node:dns/promises';
import net from 'node:net';
import pg from 'pg';
import type { Storage } from '../../storage/s3.ts';
import { ident } from '../sites/apps.ts';

/** The sites database of the deployment's own PostgreSQL: SITES_DATABASE, else `<control-plane database>_sites`. */
export function managedSitesDatabase(databaseUrl: string, configured?: string) {
  if (configured) return configured;
  const control = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, '')) || 'postgres';
  return `${control.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 57)}_sites`;
}

/**
 * Creates a database unless it exists (CREATE DATABASE has no IF NOT EXISTS and cannot run in a transaction; two
 * processes racing both succeed), closed to PUBLIC: only the roles granted CONNECT (site login roles) get in.
 */
export async function ensureDatabase(admin: pg.ClientConfig, name: string, owner?: string) {
  const c = new pg.Client(admin);
  await c.connect();
  try {
    const exists = await c.query(`select 1 from pg_database where datname = $1`, [name]);
    if (!exists.rowCount) {
      await c.query(`create database ${ident(name)}${owner ? ` owner ${ident(owner)}` : ''}`).catch((e: { code?: string }) => {
        if (e.code !== '42P04' && e.code !== '23505') throw e;
      });
    }
    await c.query(`revoke all on database ${ident(name)} from public`);
  } finally {
    await c.end();
  }
}

/** In a sites database nobody but a site's own role may use anything: PUBLIC loses the public schema. */
async function closeSitesDatabase(admin: pg.ClientConfig) {
  const c = new pg.Client(admin);
  await c.connect();
  try {
    await c.query(`revoke all on schema public from public`);
  } finally {
    await c.end();
  }
}

async function ipOf(host: string) {
  if (net.isIP(host)) return host;
  if (host === 'localhost') return '127.0.0.1';
  return (await dns.lookup(host).catch(() => ({ address: '127.0.0.1' }))).address;
}

/**
 * At every start: the deployment's own PostgreSQL is the managed database server of the default cluster (address and
 * admin login from DATABASE_URL or the embedded server; no password is stored, it is the configuration's), and its
 * own S3 the managed storage of the default cluster unless an operator gave that cluster another one. The control-plane
 * database is closed to PUBLIC, so a site's login role on this server cannot connect to it.
 */
export async function registerManagedEndpoints(
  ownerPool: pg.Pool,
  opts: { databaseUrl: string; sitesDatabase: string; appRole: string; storage: Storage; storageEndpoint: string; storageRegion: string; accessKeyId: string },
) {
  const u = new URL(opts.databaseUrl);
  const host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(u.port || 5432);
  const adminUser = decodeURIComponent(u.username) || 'postgres';
  const control = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const ip = await ipOf(host);
  const c = await ownerPool.connect();
  try {
    // Several processes start at once (HTTP_PROCESSES, workers): one at a time, or concurrent GRANTs on one database
    // fail with "tuple concurrently updated".
    await c.query(`select pg_advisory_lock(hashtextextended('tenantplane:managed-endpoints', 0))`);
    await ensureDatabase({ connectionString: opts.databaseUrl }, opts.sitesDatabase);
    const sitesUrl = new URL(opts.databaseUrl);
    sitesUrl.pathname = `/${opts.sitesDatabase}`;
    await closeSitesDatabase({ connectionString: sitesUrl.toString() });
    await c.query('begin');
    if (control) {
      await c.query(`revoke connect on database ${ident(control)} from public`);
      await c.query(`grant connect on database ${ident(control)} to ${ident(opts.appRole)}`);
    }
    const version = (await c.query<{ v: string }>(`select current_setting('server_version') as v`)).rows[0]!.v;
    const cluster = (await c.query<{ id: string }>(`select id from app_public.clusters where is_default`)).rows[0];
    if (!cluster) throw new Error('no default cluster: run the migrations');
    const existing = await c.query<{ server_id: string }>(`select server_id from app_public.database_servers where managed`);
    if (existing.rows[0]) {
      await c.query(
        `update app_public.database_servers set host = $2, port = $3, admin_user = $4, sites_database = $5, version = $6,
                check_status = 'PASSED', check_error = null, checked_at = now(), updated_at = now() where server_id = $1`,
        [existing.rows[0].server_id, host, port, adminUser, opts.sitesDatabase, version],
      );
      await c.query(`update app_public.servers set ip = $2, updated_at = now() where id = $1`, [existing.rows[0].server_id, ip]);
    } else {
      const server = await c.query<{ id: string }>(
        `insert into app_public.servers (cluster_id, name, hostname, ip, type, status) values ($1, 'managed-postgres', $2, $3, 'DATABASE', 'ACTIVE') returning id`,
        [cluster.id, /^[a-z0-9.-]+$/.test(host) ? host : 'localhost', ip],
      );
      await c.query(
        `insert into app_public.database_servers (server_id, host, port, admin_user, sites_database, managed, check_status, checked_at, version)
         values ($1, $2, $3, $4, $5, true, 'PASSED', now(), $6)`,
        [server.rows[0]!.id, host, port, adminUser, opts.sitesDatabase, version],
      );
    }
    await c.query(
      `insert into app_public.storage_configs (cluster_id, endpoint, region, access_key_id, default_bucket, managed, check_status, checked_at)
       values ($1, $2, $3, $4, $5, true, 'PASSED', now())
       on conflict (cluster_id) do update set endpoint = excluded.endpoint, region = excluded.region, access_key_id = excluded.access_key_id,
              default_bucket = excluded.default_bucket, updated_at = now()
        where app_public.storage_configs.managed`,
      [cluster.id, opts.storageEndpoint, opts.storageRegion, opts.accessKeyId, opts.storage.bucket],
    );
    await c.query('commit');
  } catch (e) {
    await c.query('rollback').catch(() => undefined);
    throw e;
  } finally {
    await c.query(`select pg_advisory_unlock(hashtextextended('tenantplane:managed-endpoints', 0))`).catch(() => undefined);
    c.release();
  }
}
