import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildBuiltinRepositories } from '../src/modules/releases/builtin.ts';
import { fetchApp, type AppSourceRef } from '../src/modules/releases/git.ts';
import { packRelease, unpackRelease, RELEASE_LAYER } from '../src/modules/releases/package.ts';
import { checkRegistry, pullBlob, pullManifest, pushBlob, putManifest, OCI_EMPTY_CONFIG, OCI_MANIFEST } from '../src/modules/releases/registry.ts';
import { trialMigrations, TrialFailed } from '../src/modules/releases/trial.ts';
import { buildCandidate, BuildFailed } from '../src/modules/releases/build.ts';
import type { AppBundle } from '../src/modules/releases/app-format.ts';
import { startRegistry, type TestRegistry } from './support/registry.ts';
import { freeLocalPort } from '../src/db/embedded.ts';
import { withDatabase } from './support/global-setup.ts';

/**
 * Issue 11 §1–§2, the parts under the API: apps read from real git repositories (the built-in ones and repositories
 * made here), their manifests checked in words, a release packed deterministically, and pushed to / pulled from the
 * real distribution registry (Debian's docker-registry) with basic auth — an altered blob refused at pull.
 */
let tmp: string;
let registry: TestRegistry;
let builtin: Record<string, string>;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-app-sources-'));
  [registry, builtin] = await Promise.all([startRegistry(), buildBuiltinRepositories(path.join(tmp, 'builtin'))]);
}, 30_000);

afterAll(async () => {
  await registry?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A repository on disk with one commit per `versions` entry (files by path), each tagged. */
function repository(name: string, versions: Array<{ tag: string; files: Record<string, string> }>, branch = 'main') {
  const dir = path.join(tmp, name);
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args], { env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
  fs.mkdirSync(dir, { recursive: true });
  git('init', '--quiet', `--initial-branch=${branch}`);
  for (const v of versions) {
    for (const [file, text] of Object.entries(v.files)) {
      fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), text);
    }
    git('add', '-A');
    git('commit', '--quiet', '-m', v.tag);
    git('tag', v.tag);
  }
  return { url: `file://${dir}`, git: (...args: string[]) => git(...args).toString().trim() };
}

const manifest = (m: Record<string, unknown>) => JSON.stringify({ name: 'todo', version: '1.0.0', description: 'Todos', migrations: ['m/0001.sql'], ...m });
const ref = (repositoryUrl: string, version: string, extra: Partial<AppSourceRef> = {}): AppSourceRef => ({ repositoryUrl, branch: 'main', version, path: '.', ...extra });

describe('app sources', () => {
  it('the built-in notes and crm are git repositories with v1.0.0 and v2.0.0, the same commits on every build', async () => {
    const v1 = await fetchApp(ref(builtin.notes!, 'v1.0.0'));
    const v2 = await fetchApp(ref(builtin.notes!, 'v2.0.0'));
    expect(v1.manifest).toMatchObject({ name: 'notes', version: '1.0.0', migrations: ['migrations/0001_notes.sql'], jobs: [] });
    expect(v2.manifest.migrations).toEqual(['migrations/0001_notes.sql', 'migrations/0002_tags_table_and_pins.sql']);
    expect(v2.manifest.jobs).toEqual([{ name: 'archive-stale', schedule: '0 3 * * *', sql: 'jobs/archive-stale.sql', priority: 0 }]);
    expect(v2.files['migrations/0001_notes.sql']).toBe(v1.files['migrations/0001_notes.sql']);
    expect(v2.files['migrations/0002_tags_table_and_pins.sql']).toContain('insert into note_tags');
    const crm = await fetchApp(ref(builtin.crm!, 'v2.0.0'));
    expect(crm.manifest.version).toBe('2.0.0');
    const again = await buildBuiltinRepositories(path.join(tmp, 'builtin-again'));
    expect((await fetchApp(ref(again.notes!, 'v2.0.0'))).commit).toBe(v2.commit);
  });

  it('reads an app from a folder of a repository, at a tag or a commit on its branch', async () => {
    const repo = repository('monorepo', [
      { tag: 'v1.0.0', files: { 'apps/todo/tenantplane-app.json': manifest({}), 'apps/todo/m/0001.sql': 'create table todos (id int);' } },
      { tag: 'v1.1.0', files: { 'apps/todo/tenantplane-app.json': manifest({ version: '1.1.0', migrations: ['m/0001.sql', 'm/0002.sql'] }), 'apps/todo/m/0002.sql': 'alter table todos add done boolean;' } },
    ]);
    const byTag = await fetchApp(ref(repo.url, 'v1.1.0', { path: 'apps/todo' }));
    expect(Object.keys(byTag.files)).toEqual(['m/0001.sql', 'm/0002.sql']);
    const first = repo.git('rev-parse', 'v1.0.0');
    const byCommit = await fetchApp(ref(repo.url, first, { path: 'apps/todo' }));
    expect(byCommit).toMatchObject({ commit: first, manifest: { version: '1.0.0' } });
  });

  it('refuses, in words: a bad manifest, a missing file, a tag that lies, a version off the branch, a repository that is not there', async () => {
    const bad = repository('bad', [
      { tag: 'v1.0.0', files: { 'tenantplane-app.json': manifest({ name: 'Todo App' }) } },
      { tag: 'v1.0.1', files: { 'tenantplane-app.json': manifest({ version: '1.0.1', migrations: ['../etc/passwd.sql'] }) } },
      { tag: 'v1.0.2', files: { 'tenantplane-app.json': manifest({ version: '1.0.2', migrations: ['m/0009.sql'] }) } },
      { tag: 'v2.0.0', files: { 'tenantplane-app.json': manifest({ version: '1.9.0' }) } },
      { tag: 'v3.0.0', files: { 'tenantplane-app.json': manifest({ version: '3.0.0', jobs: [{ name: 'j', schedule: 'every day', sql: 'm/0001.sql' }] }) } },
    ]);
    await expect(fetchApp(ref(bad.url, 'v1.0.0'))).rejects.toThrow('tenantplane-app.json: name: name is kebab-case: lowercase letters and digits, single dashes');
    await expect(fetchApp(ref(bad.url, 'v1.0.1'))).rejects.toThrow(/migrations\.0: a relative path to a \.sql file inside the app folder/);
    await expect(fetchApp(ref(bad.url, 'v1.0.2'))).rejects.toThrow('m/0009.sql is missing at v1.0.2');
    await expect(fetchApp(ref(bad.url, 'v2.0.0'))).rejects.toThrow('the tag v2.0.0 holds version 1.9.0 of todo');
    await expect(fetchApp(ref(bad.url, 'v3.0.0'))).rejects.toThrow(/schedule is a five-field cron expression/);
    await expect(fetchApp(ref(bad.url, 'v9.9.9'))).rejects.toThrow(`${bad.url} has no tag or commit "v9.9.9"`);
    bad.git('checkout', '--quiet', '-b', 'experiment');
    fs.writeFileSync(path.join(tmp, 'bad', 'tenantplane-app.json'), manifest({ version: '4.0.0' }));
    bad.git('commit', '--quiet', '-am', 'experiment');
    bad.git('tag', 'v4.0.0');
    await expect(fetchApp(ref(bad.url, 'v4.0.0'))).rejects.toThrow(/version v4\.0\.0 \([0-9a-f]{12}\) is not on branch main/);
    await expect(fetchApp(ref(`file://${tmp}/nowhere`, 'v1.0.0'))).rejects.toThrow(/could not fetch branch main of file:\/\/.*nowhere/);
    await expect(fetchApp(ref(bad.url, 'v1.0.0', { branch: 'release' }))).rejects.toThrow(/could not fetch branch release/);
  });
});

describe('release artifacts in the registry', () => {
  it('packs deterministically, pushes as an OCI artifact, pulls back verified; an altered blob is refused', async () => {
    const notes = await fetchApp(ref(builtin.notes!, 'v2.0.0'));
    const contents = { group: { id: 'g1', title: 'Group' }, apps: [{ source: ref(builtin.notes!, 'v2.0.0'), app: notes }] };
    const a = await packRelease(contents);
    const b = await packRelease(contents);
    expect(b.digest).toBe(a.digest);
    const files = await unpackRelease(a.bytes);
    expect(Object.keys(files)).toEqual(['release.json', 'notes/tenantplane-app.json', 'notes/jobs/archive-stale.sql', 'notes/migrations/0001_notes.sql', 'notes/migrations/0002_tags_table_and_pins.sql', 'notes/uninstall.sql']);

    await checkRegistry(registry);
    await expect(checkRegistry({ ...registry, password: 'wrong' })).rejects.toThrow(`the registry at ${registry.url} refused the username or password`);
    const closed = `http://127.0.0.1:${await freeLocalPort()}`;
    await expect(checkRegistry({ ...registry, url: closed })).rejects.toThrow(`the registry at ${closed} is unreachable: ECONNREFUSED`);

    const repo = 'tenantplane/group';
    const config = new Uint8Array(Buffer.from('{}'));
    const configDigest = await pushBlob(registry, repo, config);
    const layerDigest = await pushBlob(registry, repo, a.bytes);
    expect(layerDigest).toBe(a.digest);
    expect(await pushBlob(registry, repo, a.bytes)).toBe(a.digest); // already there: not sent again
    const manifestDigest = await putManifest(registry, repo, 'candidate-1', {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.tenantplane.release.v1',
      config: { mediaType: OCI_EMPTY_CONFIG, digest: configDigest, size: config.length },
      layers: [{ mediaType: RELEASE_LAYER, digest: layerDigest, size: a.bytes.length }],
    });
    const pulled = await pullManifest(registry, repo, manifestDigest);
    expect(pulled.layers?.[0]?.digest).toBe(layerDigest);
    expect(Buffer.from(await pullBlob(registry, repo, layerDigest)).equals(Buffer.from(a.bytes))).toBe(true);

    // Someone with access to the registry's disk changes the artifact: the pull notices.
    const hex = layerDigest.slice('sha256:'.length);
    const data = path.join(registry.storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const altered = Buffer.from(fs.readFileSync(data));
    altered[600] = altered[600]! ^ 0xff;
    fs.writeFileSync(data, altered);
    await expect(pullBlob(registry, repo, layerDigest)).rejects.toThrow(`the artifact pulled from ${repo} does not match its digest ${layerDigest}: refused`);
  });
});

describe('the trial run of a release: every migration in a scratch schema, as a role that owns nothing else', () => {
  const database = `tp_trial_${process.pid}`;
  let admin: pg.ClientConfig;
  beforeAll(async () => {
    const c = new pg.Client({ connectionString: inject('adminUrl') });
    await c.connect();
    await c.query(`drop database if exists ${database}`);
    await c.query(`create database ${database}`);
    await c.end();
    admin = { connectionString: withDatabase(inject('adminUrl'), database) };
    // Another site's schema with data, as a site would have it.
    const a = new pg.Client(admin);
    await a.connect();
    await a.query(`create role victim_owner nologin; create schema victim authorization victim_owner; create table victim.secrets (v text); insert into victim.secrets values ('x')`);
    await a.end();
  });
  afterAll(async () => {
    const c = new pg.Client({ connectionString: inject('adminUrl') });
    await c.connect();
    await c.query(`drop database if exists ${database} with (force)`);
    await c.query(`drop role if exists victim_owner`);
    await c.end();
  });
  const app = (name: string, migrations: Record<string, string>, healthCheck?: string): AppBundle => ({
    manifest: { name, version: '1.0.0', description: name, migrations: Object.keys(migrations), jobs: [], ...(healthCheck ? { healthCheck } : {}) },
    files: migrations,
  });
  const leftovers = async () => {
    const a = new pg.Client(admin);
    await a.connect();
    const r = await a.query(`select (select count(*) from pg_roles where rolname like 'build\\_%')::int as roles, (select count(*) from pg_namespace where nspname like 'build\\_%')::int as schemas`);
    await a.end();
    return r.rows[0];
  };

  it('builds a candidate end to end: fetched, tried, packed, pushed, pulled back and verified, with progress', async () => {
    const steps: Array<[string, number]> = [];
    const spec = {
      group: { id: 'group-1', title: 'Built-ins' },
      apps: [ref(builtin.notes!, 'v1.0.0'), ref(builtin.crm!, 'v1.0.0')],
      registry,
      repository: 'tenantplane/built-ins',
      tag: 'c1',
      trialDatabase: admin,
    };
    const built = await buildCandidate(spec, (step, progress) => void steps.push([step, progress]));
    expect(built.apps.map((a) => `${a.name}@${a.version}`)).toEqual(['notes@1.0.0', 'crm@1.0.0']);
    expect(built.imageName).toBe(`${new URL(registry.url).host}/tenantplane/built-ins`);
    expect(await pullManifest(registry, 'tenantplane/built-ins', built.manifestDigest)).toMatchObject({ layers: [{ digest: built.layerDigest }] });
    expect(steps.at(-1)).toEqual(['pulling it back to verify', 100]);
    expect(steps.map(([, p]) => p)).toEqual([...steps.map(([, p]) => p)].sort((a, b) => a - b));
    expect(built.log.some((l) => /^notes 1\.0\.0: migrations\/0001_notes\.sql ok \(\d+ ms\)$/.test(l))).toBe(true);
    expect(built.log.at(-1)).toBe(`verified ${built.manifestDigest}: every byte matches`);
    // The same apps at the same commits: the same artifact.
    expect((await buildCandidate({ ...spec, tag: 'c2' })).layerDigest).toBe(built.layerDigest);

    // A version whose migration fails, and a registry that refuses the password: the build fails in words, with its log.
    const repo = repository('failing-app', [
      { tag: 'v1.0.0', files: { 'tenantplane-app.json': manifest({}), 'm/0001.sql': 'create table todos (id int primary key);' } },
      { tag: 'v3.0.0', files: { 'tenantplane-app.json': manifest({ version: '3.0.0', migrations: ['m/0001.sql', 'm/0003.sql'] }), 'm/0003.sql': 'alter table todos add column id int;' } },
    ]);
    const broken = await buildCandidate({ ...spec, apps: [ref(repo.url, 'v3.0.0')], tag: 'c3' }).catch((e: unknown) => e);
    expect(broken).toBeInstanceOf(BuildFailed);
    expect((broken as BuildFailed).message).toBe('todo 3.0.0: m/0003.sql failed: column "id" of relation "todos" already exists');
    expect((broken as BuildFailed).log.some((l) => l.startsWith('todo 3.0.0: m/0001.sql ok'))).toBe(true);
    const refused = await buildCandidate({ ...spec, registry: { ...registry, password: 'wrong' }, tag: 'c4' }).catch((e: unknown) => e);
    expect((refused as BuildFailed).message).toBe(`the registry at ${registry.url} refused the username or password`);
    expect(await leftovers()).toEqual({ roles: 0, schemas: 0 });
  });

  it('runs the built-in apps from empty, both versions, and leaves nothing behind', async () => {
    const apps = await Promise.all([fetchApp(ref(builtin.notes!, 'v2.0.0')), fetchApp(ref(builtin.crm!, 'v2.0.0'))]);
    const log = await trialMigrations(admin, apps);
    expect(log.filter((l) => / ok \(\d+ ms\)$/.test(l))).toHaveLength(4);
    expect(log).toContain('notes 2.0.0: health check ok');
    expect(await leftovers()).toEqual({ roles: 0, schemas: 0 });
  });

  it('fails the build, with the error in the log, on a failing migration or a statement outside the schema', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['broken', 'create tabel oops (id int);', /syntax error at or near "tabel"/],
      ['thief', 'create table loot as select * from victim.secrets;', /permission denied for schema victim/],
      ['squatter', 'create table public.squat (id int);', /permission denied for schema public/],
      ['climber', 'reset role; set role postgres; create table public.squat (id int);', /permission denied to set role "postgres"/],
      ['extender', 'create extension if not exists pgcrypto;', /permission denied to create extension|must be owner|permission denied/],
      ['roler', "create role sneaky login password 'x';", /permission denied to create role/],
    ];
    for (const [name, sql, error] of cases) {
      const failed = await trialMigrations(admin, [app(name, { 'm/0001.sql': sql })]).then(
        () => null,
        (e: unknown) => e,
      );
      expect(failed, name).toBeInstanceOf(TrialFailed);
      expect((failed as TrialFailed).message, name).toMatch(error);
      expect((failed as TrialFailed).log.at(-1), name).toMatch(new RegExp(`^${name} 1\\.0\\.0: m/0001\\.sql: ERROR .*\\(SQLSTATE [0-9A-Z]{5}\\)$`));
    }
    const unhealthy = await trialMigrations(admin, [app('sick', { 'm/0001.sql': 'create table t (id int);' }, 'select * from missing')]).catch((e: unknown) => e);
    expect((unhealthy as TrialFailed).message).toMatch(/sick 1\.0\.0: the health check failed after its migrations: relation "missing" does not exist/);
    // The victim's data is untouched, and no scratch role or schema remains.
    const a = new pg.Client(admin);
    await a.connect();
    expect((await a.query('select v from victim.secrets')).rows).toEqual([{ v: 'x' }]);
    expect((await a.query(`select count(*)::int as n from pg_tables where schemaname = 'public'`)).rows[0].n).toBe(0);
    await a.end();
    expect(await leftovers()).toEqual({ roles: 0, schemas: 0 });
  });
});
