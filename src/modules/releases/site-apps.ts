import crypto from 'node:crypto';
import type pg from 'pg';
import type { AppBundle } from './app-format.ts';

/**
 * An app's migrations inside one site (issue 11 §4's engine): run as the site's own role with search_path set to the
 * site's schema. Which migrations a site has run, and the sha256 of each as it ran, are kept in the site's schema
 * itself (`tenantplane_app_migrations`), so a copy, a backup or a move of the site carries them. An install or an
 * update runs every pending migration and then the app's health check in ONE transaction, under a lock of that table:
 * PostgreSQL's DDL is transactional, so any failure leaves the site exactly as it was, data and schema — the backup
 * taken before an update is the second line, for what a transaction cannot undo.
 */
export const MIGRATIONS_TABLE = 'tenantplane_app_migrations';

export class AppMigrationFailed extends Error {
  constructor(
    message: string,
    readonly log: string[],
  ) {
    super(message);
  }
}

const sha = (text: string) => crypto.createHash('sha256').update(text).digest('hex');

export interface MigrationOutcome {
  /** The migrations run now, in order (empty: the site was at this version's migrations already). */
  applied: string[];
  log: string[];
}

/** `client`: connected as the site's role, search_path = the site's schema, no transaction open. */
export async function migrateApp(client: pg.ClientBase, app: AppBundle, say: (line: string) => void = () => undefined): Promise<MigrationOutcome> {
  const [outcome] = await migrateApps(client, [app], say);
  return outcome!;
}

/**
 * Several apps in ONE transaction (a site moving to a newer release): all of them are updated, or none is. Each
 * app's pending migrations, then its health check; any failure rolls every app back.
 */
export async function migrateApps(client: pg.ClientBase, apps: AppBundle[], say: (line: string) => void = () => undefined): Promise<MigrationOutcome[]> {
  const log: string[] = [];
  const note = (line: string) => {
    log.push(line);
    say(line);
  };
  await client.query('begin');
  try {
    await markTransaction(client);
    await client.query(`create table if not exists ${MIGRATIONS_TABLE} (
      app        text not null,
      migration  text not null,
      sha256     text not null,
      version    text not null,
      applied_at timestamptz not null default now(),
      primary key (app, migration)
    )`);
    // One install or update of a site at a time; a second waits, then sees what the first ran.
    await client.query(`lock table ${MIGRATIONS_TABLE} in exclusive mode`);
    const outcomes: MigrationOutcome[] = [];
    for (const app of apps) outcomes.push(await migrateInTransaction(client, app, note));
    await client.query('commit');
    return outcomes.map((o) => ({ ...o, log }));
  } catch (e) {
    await client.query('rollback').catch(() => undefined);
    if (e instanceof AppMigrationFailed) {
      note(`${apps.map((a) => a.manifest.name).join(', ')}: rolled back, the site is as it was`);
      throw new AppMigrationFailed(e.message, log);
    }
    throw e;
  }
}

async function migrateInTransaction(client: pg.ClientBase, app: AppBundle, note: (line: string) => void): Promise<MigrationOutcome> {
  const { name, version } = app.manifest;
  const fail = (why: string): never => {
    note(`ERROR ${why}`);
    throw new AppMigrationFailed(`${name} ${version}: ${why}`, []);
  };
  const done = (await client.query<{ migration: string; sha256: string }>(`select migration, sha256 from ${MIGRATIONS_TABLE} where app = $1 order by applied_at, migration`, [name])).rows;
  // What ran must be this version's first migrations, unchanged: a version never rewrites history.
  for (const [i, row] of done.entries()) {
    if (app.manifest.migrations[i] !== row.migration) fail(`the site ran ${row.migration}, which this version does not list in that place: it cannot be reached from the site's version`);
    if (sha(app.files[row.migration]!) !== row.sha256) fail(`${row.migration} was changed after the site ran it`);
  }
  const pending = app.manifest.migrations.slice(done.length);
  for (const file of pending) {
    const started = Date.now();
    try {
      await client.query(app.files[file]!);
    } catch (e) {
      fail(`${file} failed: ${sqlErrorText(e)}`);
    }
    await assertInTransaction(client, file, fail);
    await client.query(`insert into ${MIGRATIONS_TABLE} (app, migration, sha256, version) values ($1, $2, $3, $4)`, [name, file, sha(app.files[file]!), version]);
    note(`${name} ${version}: ${file} ok (${Date.now() - started} ms)`);
  }
  try {
    await client.query(app.manifest.healthCheck ?? 'select 1');
  } catch (e) {
    fail(`the health check failed: ${(e as Error).message}`);
  }
  note(`${name} ${version}: health check ok`);
  return { applied: pending, log: [] };
}

/**
 * Removes an app from a site, in one transaction: its uninstall script (the manifest's `uninstall`), then what the
 * site recorded of its migrations. An app without an uninstall script cannot be removed (its tables would stay).
 */
export async function uninstallApp(client: pg.ClientBase, app: AppBundle, say: (line: string) => void = () => undefined) {
  const { name, version } = app.manifest;
  if (!app.manifest.uninstall) throw new AppMigrationFailed(`${name} ${version} has no uninstall script: it cannot be removed`, []);
  await client.query('begin');
  try {
    await markTransaction(client);
    try {
      await client.query(app.files[app.manifest.uninstall]!);
    } catch (e) {
      throw new AppMigrationFailed(`${name} ${version}: ${app.manifest.uninstall} failed: ${sqlErrorText(e)}`, []);
    }
    await assertInTransaction(client, app.manifest.uninstall, (why) => {
      throw new AppMigrationFailed(`${name} ${version}: ${why}`, []);
    });
    await client.query(`delete from ${MIGRATIONS_TABLE} where app = $1`, [name]);
    await client.query('commit');
    say(`${name} ${version}: ${app.manifest.uninstall} ok, removed`);
  } catch (e) {
    await client.query('rollback').catch(() => undefined);
    throw e;
  }
}

/** A PostgreSQL error as the log shows it: its message and, when it has one, its SQLSTATE. */
export function sqlErrorText(e: unknown) {
  const err = e as { message?: string; code?: string };
  return `${err.message ?? String(e)}${err.code ? ` (SQLSTATE ${err.code})` : ''}`;
}

/** Marks the open transaction; the mark is gone if a migration ends it itself (COMMIT, ROLLBACK): see below. */
export async function markTransaction(client: pg.ClientBase) {
  await client.query(`select set_config('tenantplane.in_update', 'on', true)`);
}

/** A migration that ran COMMIT or ROLLBACK itself has ended the transaction the update depends on: refused. */
export async function assertInTransaction(client: pg.ClientBase, file: string, fail: (why: string) => never) {
  const r = await client.query<{ v: string | null }>(`select current_setting('tenantplane.in_update', true) as v`);
  if (r.rows[0]?.v !== 'on') fail(`${file} ends its transaction (COMMIT or ROLLBACK): a migration may not`);
}
