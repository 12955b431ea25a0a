import crypto from 'node:crypto';
import pg from 'pg';
import type { WorkerServices } from '../../services.ts';
import { ensureDatabase } from '../fleet/managed.ts';
import { ident, siteRoleName, siteSchemaName } from './apps.ts';

/**
 * Where a site lives on the fleet and the roles it has there. Every site has, on its database server:
 * - an owner role `site_<hex>_owner` (NOLOGIN) that owns its schema and everything in it;
 * - a login role `site_<hex>` (LOGIN, NOINHERIT, its plan's connection limit and statement timeout) that is a member
 *   of the owner role and becomes it at login (`ALTER ROLE … SET role`): the tenant's application connects as it;
 * - its schema `site_<hex>`: in the server's sites database (SCHEMA isolation), or in a database `site_<hex>` of its
 *   own (DATABASE isolation). CONNECT on that database is granted to the site's login role only.
 */
export interface SiteHome {
  serverId: string;
  /** The database holding the site's schema. */
  database: string;
  isolation: 'SCHEMA' | 'DATABASE';
  schema: string;
  ownerRole: string;
  loginRole: string;
}

export interface SitePlacement {
  id: string;
  databaseServerId: string | null;
  isolation: 'SCHEMA' | 'DATABASE';
  databaseName: string | null;
}

export function siteLoginRole(siteId: string) {
  return siteSchemaName(siteId);
}

export function siteDatabaseName(siteId: string) {
  return siteSchemaName(siteId);
}

/** The home of a placed site (throws for a site that has no database server yet). */
export async function siteHome(services: WorkerServices, site: SitePlacement, override?: Partial<Pick<SiteHome, 'serverId' | 'isolation'>>): Promise<SiteHome> {
  const serverId = override?.serverId ?? site.databaseServerId;
  if (!serverId) throw new Error('the site is not placed on a database server');
  const isolation = override?.isolation ?? site.isolation;
  const endpoint = await services.fleet.server(serverId);
  return {
    serverId,
    isolation,
    database: isolation === 'DATABASE' ? siteDatabaseName(site.id) : endpoint.sitesDatabase,
    schema: siteSchemaName(site.id),
    ownerRole: siteRoleName(site.id),
    loginRole: siteLoginRole(site.id),
  };
}

/** An admin pool on the database holding the site's schema. */
export function homePool(services: WorkerServices, home: SiteHome) {
  return services.fleet.pool(home.serverId, home.database);
}

/** Runs fn in one transaction on a pool. */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('begin');
    const r = await fn(c);
    await c.query('commit');
    return r;
  } catch (e) {
    await c.query('rollback').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

/**
 * A SCRAM-SHA-256 verifier of a password (RFC 5802 / 7677, as PostgreSQL stores it): ALTER ROLE … PASSWORD is given
 * the verifier, never the password, so no server log or pg_stat_statements ever sees the password itself.
 */
export function scramVerifier(password: string, iterations = 4096) {
  const salt = crypto.randomBytes(16);
  const salted = crypto.pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = crypto.createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = crypto.createHash('sha256').update(clientKey).digest();
  const serverKey = crypto.createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

export interface SiteLimits {
  connectionLimit: number;
  statementTimeoutMs: number;
}

/**
 * What the site's login may do: its plan's limits, and whether the site is over its storage limit (then it reads,
 * deletes and truncates, and writes nothing, until a measure finds it back under: src/modules/sites/usage.ts).
 */
export interface SiteAccess extends SiteLimits {
  overStorageLimit?: boolean;
}

/** A site row's access: its plan's limits and its over-limit flag. */
export function siteAccess(site: { plan: SiteLimits; overStorageLimit: boolean }): SiteAccess {
  return { connectionLimit: site.plan.connectionLimit, statementTimeoutMs: site.plan.statementTimeoutMs, overStorageLimit: site.overStorageLimit };
}

/** Creates the site's owner and login roles on the server (idempotent) and applies its plan's limits. */
export async function ensureSiteRoles(c: pg.ClientBase, home: SiteHome, access: SiteAccess) {
  await c.query(`select pg_advisory_xact_lock(hashtextextended($1, 0))`, [home.ownerRole]);
  const owner = await c.query(`select 1 from pg_roles where rolname = $1`, [home.ownerRole]);
  if (!owner.rowCount) await c.query(`create role ${ident(home.ownerRole)} nologin nosuperuser nocreatedb nocreaterole noinherit nobypassrls`);
  const login = await c.query(`select 1 from pg_roles where rolname = $1`, [home.loginRole]);
  if (!login.rowCount) await c.query(`create role ${ident(home.loginRole)} login nosuperuser nocreatedb nocreaterole noinherit nobypassrls`);
  if (!access.overStorageLimit) await c.query(`grant ${ident(home.ownerRole)} to ${ident(home.loginRole)}`);
  await applySiteLimits(c, home, access);
}

/** Connection limit, statement timeout, and the session defaults that put a login straight into its own schema. */
export async function applySiteLimits(c: pg.ClientBase, home: SiteHome, access: SiteAccess) {
  const login = ident(home.loginRole);
  await c.query(`alter role ${login} connection limit ${Math.trunc(access.connectionLimit)}`);
  await c.query(`alter role ${login} set statement_timeout = ${Math.trunc(access.statementTimeoutMs)}`);
  await c.query(`alter role ${login} set search_path = ${ident(home.schema)}`);
  if (access.overStorageLimit) await c.query(`alter role ${login} reset role`);
  else await c.query(`alter role ${login} set role = ${ident(home.ownerRole)}`);
}

/**
 * Over its storage limit, a site's login leaves its owner role: it keeps USAGE on its schema and SELECT, DELETE and
 * TRUNCATE on its tables (SELECT on its sequences), granted directly, so the application can read and make room but
 * not write; its open sessions (which became the owner at login) are ended. Back under, it becomes the owner again
 * and the direct grants go. Privileges, not a setting the application could undo. Idempotent, on the site's database.
 */
export async function setSiteWriteAccess(services: WorkerServices, home: SiteHome, overStorageLimit: boolean) {
  const pool = await homePool(services, home);
  const login = ident(home.loginRole);
  const owner = ident(home.ownerRole);
  const schema = ident(home.schema);
  await inTransaction(pool, async (c) => {
    await c.query(`select pg_advisory_xact_lock(hashtextextended($1, 0))`, [home.ownerRole]);
    if (overStorageLimit) {
      await c.query(`revoke ${owner} from ${login}`);
      await c.query(`alter role ${login} reset role`);
      // As the owner of the tables: only the owner (or a member) may grant on them.
      await c.query(`set local role ${owner}`);
      await c.query(`grant usage on schema ${schema} to ${login}`);
      await c.query(`grant select, delete, truncate on all tables in schema ${schema} to ${login}`);
      await c.query(`grant select on all sequences in schema ${schema} to ${login}`);
      await c.query(`reset role`);
    } else {
      await c.query(`set local role ${owner}`);
      await c.query(`revoke all on all tables in schema ${schema} from ${login}`);
      await c.query(`revoke all on all sequences in schema ${schema} from ${login}`);
      await c.query(`revoke all on schema ${schema} from ${login}`);
      await c.query(`reset role`);
      await c.query(`grant ${owner} to ${login}`);
      await c.query(`alter role ${login} set role = ${owner}`);
    }
  });
  if (overStorageLimit) await endLoginSessions(pool, home);
}

/** Ends every session of the site's login on its server (pg_stat_activity is server-wide); how many it ended. */
export async function endLoginSessions(c: pg.ClientBase | pg.Pool, home: Pick<SiteHome, 'loginRole'>) {
  const r = await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`, [home.loginRole]);
  return r.rowCount ?? 0;
}

export async function setLoginPassword(c: pg.ClientBase, home: SiteHome, password: string) {
  await c.query(`alter role ${ident(home.loginRole)} password ${c.escapeLiteral(scramVerifier(password))}`);
}

/**
 * Creates what the site needs on its server, idempotently: roles, its own database (DATABASE isolation) closed to
 * PUBLIC and open to its login role, and its schema owned by its owner role.
 */
export async function ensureSiteHome(services: WorkerServices, home: SiteHome, access: SiteAccess) {
  const sitesPool = await services.fleet.pool(home.serverId);
  await inTransaction(sitesPool, (c) => ensureSiteRoles(c, home, access));
  if (home.isolation === 'DATABASE') {
    const endpoint = await services.fleet.server(home.serverId);
    await ensureDatabase(await services.fleet.clientConfig(endpoint, endpoint.sitesDatabase), home.database, home.ownerRole);
  }
  const pool = await homePool(services, home);
  await inTransaction(pool, async (c) => {
    await c.query(`select pg_advisory_xact_lock(hashtextextended($1, 0))`, [home.schema]);
    await c.query(`grant connect on database ${ident(home.database)} to ${ident(home.loginRole)}`);
    if (home.isolation === 'DATABASE') await c.query(`revoke all on schema public from public`);
    await c.query(`create schema if not exists ${ident(home.schema)} authorization ${ident(home.ownerRole)}`);
    await c.query(`revoke all on schema ${ident(home.schema)} from public`);
  });
}

/** Removes the site from a server: its schema (or database), and its roles once nothing of it is left there. */
export async function dropSiteHome(services: WorkerServices, home: SiteHome, opts: { keepRoles?: boolean } = {}) {
  const endpoint = await services.fleet.server(home.serverId);
  const admin = await services.fleet.clientConfig(endpoint, endpoint.sitesDatabase);
  const c = new pg.Client(admin);
  await c.connect();
  try {
    // Its sessions end first (a connected login role cannot be dropped, nor its database).
    if (!opts.keepRoles) await endLoginSessions(c, home);
    if (home.isolation === 'DATABASE') await c.query(`drop database if exists ${ident(home.database)} with (force)`);
    else await c.query(`drop schema if exists ${ident(home.schema)} cascade`);
    // A move between isolation levels on one server keeps the roles: the new home uses them.
    for (const role of opts.keepRoles ? [] : [home.loginRole, home.ownerRole]) {
      const exists = await c.query(`select 1 from pg_roles where rolname = $1`, [role]);
      if (!exists.rowCount) continue;
      // Privileges it holds elsewhere on this server (CONNECT on the sites database) go with it.
      await c.query(`drop owned by ${ident(role)}`).catch(() => undefined);
      await c.query(`drop role if exists ${ident(role)}`);
    }
  } finally {
    await c.end();
  }
}
