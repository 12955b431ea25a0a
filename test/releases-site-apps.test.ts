import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildBuiltinRepositories } from '../src/modules/releases/builtin.ts';
import { fetchApp, type FetchedApp } from '../src/modules/releases/git.ts';
import { AppMigrationFailed, MIGRATIONS_TABLE, migrateApp } from '../src/modules/releases/site-apps.ts';
import { trialMigrations, TrialFailed } from '../src/modules/releases/trial.ts';
import { withDatabase } from './support/global-setup.ts';

/**
 * Issue 11 §4–§5, the engine under the jobs: the built-in notes app installed at 1.0.0 in a site's schema as the site's
 * own role, data written, updated to 2.0.0 (the data migrated), then a 3.0.0 whose migration fails — the site stays
 * exactly at 2.0.0 with its data — and versions that rewrite history or end the transaction, refused.
 */
const database = `tp_site_apps_${process.pid}`;
let admin: pg.Client;
let site: pg.Client;
let tmp: string;
let v1: FetchedApp;
let v2: FetchedApp;
const role = `site_${crypto.randomBytes(6).toString('hex')}`;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-site-apps-'));
  const repos = await buildBuiltinRepositories(tmp);
  const ref = (version: string) => ({ repositoryUrl: repos.notes!, branch: 'main', version, path: '.' });
  [v1, v2] = await Promise.all([fetchApp(ref('v1.0.0')), fetchApp(ref('v2.0.0'))]);
  const c = new pg.Client({ connectionString: inject('adminUrl') });
  await c.connect();
  await c.query(`drop database if exists ${database}`);
  await c.query(`create database ${database}`);
  await c.end();
  admin = new pg.Client({ connectionString: withDatabase(inject('adminUrl'), database) });
  await admin.connect();
  // A site as provisioning makes one: its own login role owning its own schema.
  const password = crypto.randomBytes(18).toString('base64url');
  await admin.query(`create role ${role} login password '${password}' nosuperuser nocreatedb nocreaterole noinherit`);
  await admin.query(`create schema ${role} authorization ${role}`);
  const u = new URL(withDatabase(inject('adminUrl'), database));
  u.username = role;
  u.password = password;
  site = new pg.Client({ connectionString: u.toString() });
  await site.connect();
  await site.query(`set search_path = ${role}`);
});

afterAll(async () => {
  await site?.end();
  await admin?.end();
  const c = new pg.Client({ connectionString: inject('adminUrl') });
  await c.connect();
  await c.query(`drop database if exists ${database} with (force)`);
  await c.query(`drop role if exists ${role}`);
  await c.end();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Everything a site's data and schema are, to compare before and after. */
async function snapshot() {
  const tables = (await site.query(`select table_name, string_agg(column_name, ',' order by column_name) as columns from information_schema.columns where table_schema = $1 group by 1 order by 1`, [role])).rows;
  const notes = (await site.query(`select id, title, pinned from notes order by id`)).rows;
  const tags = (await site.query(`select note_id, tag from note_tags order by 1, 2`)).rows;
  const ran = (await site.query(`select app, migration, version from ${MIGRATIONS_TABLE} order by applied_at, migration`)).rows;
  return { tables, notes, tags, ran };
}

/** A version after 2.0.0: notes' own migrations plus `extra` (path → SQL). */
function later(version: string, extra: Record<string, string>): FetchedApp {
  return { ...v2, manifest: { ...v2.manifest, version, migrations: [...v2.manifest.migrations, ...Object.keys(extra)] }, files: { ...v2.files, ...extra } };
}

describe('an app in a site: install, update, and an update that fails', () => {
  it('installs 1.0.0, keeps the data through 2.0.0 (tags moved into their table), and runs nothing twice', async () => {
    expect((await migrateApp(site, v1)).applied).toEqual(['migrations/0001_notes.sql']);
    await site.query(`insert into notes (title, tags) values ('groceries', '{food, errands}'), ('ideas', '{}'), ('trip', '{travel}')`);
    const updated = await migrateApp(site, v2);
    expect(updated.applied).toEqual(['migrations/0002_tags_table_and_pins.sql']);
    expect(updated.log.at(-1)).toBe('notes 2.0.0: health check ok');
    const after = await snapshot();
    expect(after.notes).toEqual([
      { id: '1', title: 'groceries', pinned: false },
      { id: '2', title: 'ideas', pinned: false },
      { id: '3', title: 'trip', pinned: false },
    ]);
    expect(after.tags).toEqual([
      { note_id: '1', tag: 'errands' },
      { note_id: '1', tag: 'food' },
      { note_id: '3', tag: 'travel' },
    ]);
    expect(after.tables.find((t) => t.table_name === 'notes')?.columns).toBe('archived_at,body,created_at,id,pinned,title');
    expect((await migrateApp(site, v2)).applied).toEqual([]);
  });

  it('a 3.0.0 whose migration fails leaves the site exactly at 2.0.0, data and schema', async () => {
    const before = await snapshot();
    const v3 = later('3.0.0', {
      'migrations/0003_labels.sql': `create table labels (id int primary key); insert into labels values (1); update notes set pinned = true;`,
      'migrations/0004_broken.sql': `alter table notes add column title text;`,
    });
    const failed = await migrateApp(site, v3).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(AppMigrationFailed);
    expect((failed as AppMigrationFailed).message).toBe('notes 3.0.0: migrations/0004_broken.sql failed: column "title" of relation "notes" already exists (SQLSTATE 42701)');
    const [ran, error, rolledBack] = (failed as AppMigrationFailed).log;
    expect(ran).toMatch(/^notes 3\.0\.0: migrations\/0003_labels\.sql ok \(\d+ ms\)$/);
    expect([error, rolledBack]).toEqual(['ERROR migrations/0004_broken.sql failed: column "title" of relation "notes" already exists (SQLSTATE 42701)', 'notes: rolled back, the site is as it was']);
    expect(await snapshot()).toEqual(before);

    // A health check that fails after good migrations: rolled back too.
    const unhealthy = { ...later('3.0.1', { 'migrations/0003_drop.sql': 'drop table note_tags;' }) };
    await expect(migrateApp(site, unhealthy)).rejects.toThrow(/notes 3\.0\.1: the health check failed: relation "note_tags" does not exist/);
    expect(await snapshot()).toEqual(before);
  });

  it('refuses a version that rewrote a migration the site ran, or skips one, or ends the transaction itself', async () => {
    const before = await snapshot();
    const rewritten = { ...v2, manifest: { ...v2.manifest, version: '2.0.1' }, files: { ...v2.files, 'migrations/0001_notes.sql': `${v2.files['migrations/0001_notes.sql']}\n-- edited` } };
    await expect(migrateApp(site, rewritten)).rejects.toThrow('notes 2.0.1: migrations/0001_notes.sql was changed after the site ran it');
    const reordered = { ...v2, manifest: { ...v2.manifest, version: '2.1.0', migrations: ['migrations/0001_notes.sql', 'migrations/0009_other.sql'] }, files: { ...v2.files, 'migrations/0009_other.sql': 'select 1;' } };
    await expect(migrateApp(site, reordered)).rejects.toThrow(/notes 2\.1\.0: the site ran migrations\/0002_tags_table_and_pins\.sql, which this version does not list in that place/);
    const committing = later('3.1.0', { 'migrations/0003_commit.sql': 'create table half (id int); commit; create table other_half (id int);' });
    await expect(migrateApp(site, committing)).rejects.toThrow('notes 3.1.0: migrations/0003_commit.sql ends its transaction (COMMIT or ROLLBACK): a migration may not');
    // The build refuses such a migration before any site sees it.
    const trial = await trialMigrations({ connectionString: withDatabase(inject('adminUrl'), database) }, [committing]).catch((e: unknown) => e);
    expect(trial).toBeInstanceOf(TrialFailed);
    expect((trial as TrialFailed).message).toBe('notes 3.1.0: migrations/0003_commit.sql failed: migrations/0003_commit.sql ends its transaction (COMMIT or ROLLBACK): a migration may not');
    // What the COMMIT let through (before it, and the statements after it, which ran outside any transaction) stays:
    // that is what the update's backup is restored for. A site only ever gets migrations a build has tried, and the
    // build refuses this one (above).
    expect((await site.query(`select count(*)::int as n from information_schema.tables where table_schema = $1 and table_name in ('half', 'other_half')`, [role])).rows[0].n).toBe(2);
    await site.query('drop table half; drop table other_half');
    expect(await snapshot()).toEqual(before);
  });
});
