import crypto from 'node:crypto';
import pg from 'pg';
import type { AppBundle } from './app-format.ts';
import { ident } from '../sites/apps.ts';
import { assertInTransaction, markTransaction, sqlErrorText } from './site-apps.ts';

/**
 * A deploy candidate's trial run (issue 11 §2): every migration of every app of the release, from empty, in a scratch
 * schema of a real database server, as a scratch LOGIN role that owns that schema and nothing else — connected as
 * itself, so no RESET ROLE or SET ROLE can climb back to the admin that made it. A statement that reaches outside the
 * schema (another site's schema, public, the catalogue's protected tables, CREATE EXTENSION, a new role) is refused by
 * PostgreSQL's own privileges, and the build fails with its error in the log; then each app's health check must run.
 * The schema and the role are dropped whatever happens.
 */
export class TrialFailed extends Error {
  constructor(
    message: string,
    readonly log: string[],
  ) {
    super(message);
  }
}

const STATEMENT_TIMEOUT_MS = 60_000;

/** `admin`: a client config of the server's sites database as its admin (FleetConnections.clientConfig). */
export async function trialMigrations(admin: pg.ClientConfig, apps: AppBundle[], log: (line: string) => void = () => undefined): Promise<string[]> {
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    log(line);
  };
  const hex = crypto.randomBytes(8).toString('hex');
  const schema = `build_${hex}`;
  const role = `build_${hex}`;
  const password = crypto.randomBytes(24).toString('base64url');
  const owner = new pg.Client(admin);
  await owner.connect();
  try {
    await owner.query(`create role ${ident(role)} login password '${password}' nosuperuser nocreatedb nocreaterole noinherit nobypassrls connection limit 2`);
    await owner.query(`alter role ${ident(role)} set statement_timeout = ${STATEMENT_TIMEOUT_MS}`);
    await owner.query(`create schema ${ident(schema)} authorization ${ident(role)}`);
    const database = (await owner.query<{ db: string }>('select current_database() as db')).rows[0]!.db;
    await owner.query(`grant connect on database ${ident(database)} to ${ident(role)}`);
    say(`scratch schema ${schema} on ${database}, as role ${role} (owns that schema only)`);
    const trial = new pg.Client(asRole(admin, role, password));
    await trial.connect();
    try {
      await trial.query(`set search_path = ${ident(schema)}`);
      for (const app of apps) {
        const { name, version } = app.manifest;
        for (const file of app.manifest.migrations) {
          const started = Date.now();
          try {
            await trial.query('begin');
            await markTransaction(trial);
            await trial.query(app.files[file]!);
            await assertInTransaction(trial, file, (why) => {
              throw new Error(why);
            });
            await trial.query('commit');
          } catch (e) {
            await trial.query('rollback').catch(() => undefined);
            say(`${name} ${version}: ${file}: ERROR ${sqlErrorText(e)}`);
            throw new TrialFailed(`${name} ${version}: ${file} failed: ${(e as Error).message ?? String(e)}`, lines);
          }
          say(`${name} ${version}: ${file} ok (${Date.now() - started} ms)`);
        }
      }
      for (const app of apps) {
        const { name, version } = app.manifest;
        const check = app.manifest.healthCheck ?? 'select 1';
        try {
          await trial.query(check);
        } catch (e) {
          say(`${name} ${version}: health check: ERROR ${(e as Error).message}`);
          throw new TrialFailed(`${name} ${version}: the health check failed after its migrations: ${(e as Error).message}`, lines);
        }
        say(`${name} ${version}: health check ok`);
      }
    } finally {
      await trial.end().catch(() => undefined);
    }
    // Belt and braces: nothing the role owns lives outside its schema.
    const stray = await owner.query<{ what: string }>(
      `select c.relname || ' in ' || n.nspname as what from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relowner = (select oid from pg_roles where rolname = $1) and n.nspname not in ($2, 'pg_toast')
       union all
       select p.proname || ' in ' || n.nspname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where p.proowner = (select oid from pg_roles where rolname = $1) and n.nspname <> $2`,
      [role, schema],
    );
    if (stray.rows.length) {
      say(`objects outside the schema: ${stray.rows.map((r) => r.what).join(', ')}`);
      throw new TrialFailed(`the migrations created objects outside the site's schema: ${stray.rows.map((r) => r.what).join(', ')}`, lines);
    }
    return lines;
  } finally {
    // The role's sessions end with it (its client is closed above); objects first, then the role.
    await owner.query(`drop schema if exists ${ident(schema)} cascade`).catch(() => undefined);
    await owner.query(`drop owned by ${ident(role)}`).catch(() => undefined);
    await owner.query(`drop role if exists ${ident(role)}`).catch(() => undefined);
    await owner.end().catch(() => undefined);
  }
}

/** The admin's connection settings, logged in as `role` instead. */
function asRole(admin: pg.ClientConfig, role: string, password: string): pg.ClientConfig {
  if (admin.connectionString) {
    const u = new URL(admin.connectionString);
    u.username = role;
    u.password = password;
    return { ...admin, connectionString: u.toString() };
  }
  return { ...admin, user: role, password };
}
