import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startTestApp, type TestApp } from './support/app.ts';
import { createTenant, signUp, type TestUser, rowUuid } from './support/client.ts';
import { poll } from './support/workers.ts';
import { startSecondPostgres, type SecondPostgres } from './support/second-postgres.ts';
import { addDatabaseServer, CREATE_CLUSTER, CREATE_STORAGE, STORAGE_FIELDS, fleetName, platformStaff, type RegisteredDatabaseServer } from './support/fleet.ts';
import { startEmbeddedS3, type EmbeddedS3 } from '../src/storage/embedded.ts';
import { freeLocalPort } from '../src/db/embedded.ts';

/**
 * moveSite (issue 10 §2 and §4) with real parts: two more PostgreSQL servers in one cluster. A site moves from one
 * server to the other with its data identical and its password still working, to a database of its own and back,
 * and through changeSitePlan; a move that fails halfway leaves the site where it was, working; the old copy is kept
 * for the grace period and dropped after it.
 */
let app: TestApp;
let db: pg.Client;
let staff: TestUser, outsider: TestUser;
let tenant: { id: string; slug: string };
let pgA: SecondPostgres, pgB: SecondPostgres;
let serverA: RegisteredDatabaseServer, serverB: RegisteredDatabaseServer;
let s3: EmbeddedS3;
let s3Dir: string;
const bucket = `tp-move-${crypto.randomBytes(4).toString('hex')}`;
const clients: pg.Client[] = [];

const SITE = `query($id: ID!) { node(id: $id) { ... on Site { id status isolation plan { title isolation } connection { host port database user } } } }`;
const MOVE = `mutation($s: ID!, $i: MoveSiteInput!) { moveSite(siteId: $s, input: $i) { site { status } job { id } } }`;
const JOB = `query($id: ID!) { node(id: $id) { ... on Job { status progress step logs error result } } }`;

let site: { id: string; uuid: string; hex: string; password: string };

async function connect(conn: { host: string; port: number; database: string; user: string }, database = conn.database) {
  const c = new pg.Client({ host: conn.host, port: conn.port, database, user: conn.user, password: site.password });
  await c.connect();
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

async function connectionError(conn: { host: string; port: number; database: string; user: string }, database = conn.database) {
  try {
    const c = await connect(conn, database);
    await c.end();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

async function siteNode() {
  return (await staff.gql.ok(SITE, { id: site.id })).node;
}

/** Waits for a job to end; returns it (with the steps it reported along the way). */
async function finished(jobId: string) {
  const steps = new Set<string>();
  const job = await poll(
    async () => {
      const j = (await staff.gql.ok(JOB, { id: jobId })).node;
      if (j.step) steps.add(j.step);
      return j.status === 'COMPLETED' || j.status === 'FAILED' ? j : undefined;
    },
    90_000,
    'the move to end',
  );
  return { ...job, steps };
}

/** What the site's application sees: every note, and the next id the sequence gives. */
async function contents(c: pg.Client) {
  const rows = await c.query(`select md5(string_agg(n::text, '|' order by id)) as sum, count(*)::int as n from notes n`);
  return rows.rows[0] as { sum: string; n: number };
}

const homeOn = async (server: SecondPostgres) => ({
  schema: (await server.query(`select count(*)::int as n from pg_namespace where nspname = $1`, [`site_${site.hex}`], 'tenantplane_sites').catch(() => ({ rows: [{ n: -1 }] }))).rows[0].n,
  database: (await server.query(`select count(*)::int as n from pg_database where datname = $1`, [`site_${site.hex}`])).rows[0].n,
  roles: (await server.query(`select count(*)::int as n from pg_roles where rolname in ($1, $2)`, [`site_${site.hex}`, `site_${site.hex}_owner`])).rows[0].n,
});

beforeAll(async () => {
  s3Dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantplane-s3m-'));
  [app, pgA, pgB, s3] = await Promise.all([
    startTestApp({ SITE_MOVE_GRACE_SECONDS: '3600' }),
    startSecondPostgres(),
    startSecondPostgres(),
    freeLocalPort().then((port) => startEmbeddedS3(s3Dir, port, bucket)),
  ]);
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  // Platform staff who also own the tenant: a server move needs both sites:operate and platform.fleet:write.
  staff = await platformStaff(app);
  outsider = await signUp(app, 'move-outsider');
  tenant = await createTenant(staff, 'moving');
  const clusterName = fleetName('move');
  const cluster = (await staff.gql.ok(CREATE_CLUSTER, { i: { name: clusterName, title: 'Move', region: 'eu-move', networks: ['127.0.0.0/8'] } })).createCluster;
  const storage = (await staff.gql.ok(CREATE_STORAGE, { i: { clusterId: cluster.id, endpoint: s3.endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', defaultBucket: bucket } })).createStorageConfig;
  await staff.gql.ok(`mutation($s: ID!) { checkStorageConfig(storageConfigId: $s) { id } }`, { s: storage.id });
  await poll(
    async () => ((await staff.gql.ok(`query($id: ID!) { node(id: $id) { ... on StorageConfig { ${STORAGE_FIELDS} } } }`, { id: storage.id })).node.checkStatus === 'PASSED' ? true : undefined),
    30_000,
    'the storage check',
  );
  // A takes the site (B is added after it is placed).
  serverA = await addDatabaseServer(staff, pgA, { clusterId: cluster.id, capacity: 5 });
  const created = (
    await staff.gql.ok(`mutation($i: CreateSiteInput!) { createSite(input: $i) { password site { id } } }`, {
      i: { tenantId: tenant.id, name: `mover-${process.pid}`, displayName: 'mover', apps: ['notes'], cluster: clusterName },
    })
  ).createSite;
  const uuid = rowUuid(created.site.id);
  site = { id: created.site.id, uuid, hex: uuid.replace(/-/g, ''), password: created.password };
  await poll(async () => ((await siteNode()).status === 'HEALTHY' ? true : undefined), 60_000, 'the site to be healthy');
  serverB = await addDatabaseServer(staff, pgB, { clusterId: cluster.id, capacity: 5 });
}, 180_000);

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => undefined);
  await db?.end();
  await app?.stop();
  await Promise.all([pgA?.stop().catch(() => undefined), pgB?.stop(), s3?.stop()]);
  if (s3Dir) fs.rmSync(s3Dir, { recursive: true, force: true });
});

let before: { sum: string; n: number };

describe('moveSite between database servers', () => {
  it('is refused to a tenant member without platform.fleet:write, to another tenant, and for a site already there', async () => {
    const member = await createTenant(outsider, 'not-staff');
    const own = (await outsider.gql.ok(`mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } } }`, { i: { tenantId: member.id, name: `own-${process.pid}`, displayName: 'own' } })).createSite.site;
    const forbidden = await outsider.gql.request(MOVE, { s: own.id, i: { server: serverB.serverId } });
    expect(forbidden.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(forbidden.errors?.[0]?.message).toMatch(/platform\.fleet:write/);
    // Another tenant's site answers like a missing one, whatever the target.
    const hostile = await outsider.gql.request(MOVE, { s: site.id, i: { isolation: 'DATABASE' } });
    expect(hostile.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const already = await staff.gql.request(MOVE, { s: site.id, i: { server: serverA.serverId, isolation: 'SCHEMA' } });
    expect(already.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input' });
    // Neither the request role nor a tenant sees where old copies are.
    await db.query('begin');
    try {
      await db.query(`set local role tenantplane_app`);
      expect((await db.query(`select 1 from app_private.site_old_copies`).catch((e) => e)).code).toBe('42501');
    } finally {
      await db.query('rollback');
    }
  });

  it('moves the data identically; the same credentials work on the new server, the old one lets the login in no more', async () => {
    const from = (await siteNode()).connection;
    expect(from.port).toBe(pgA.port);
    const writer = await connect(from);
    await writer.query(`insert into notes (title, body) select 'note ' || g, repeat(md5(g::text), g % 7) from generate_series(1, 500) g`);
    await writer.query(`delete from notes where id % 10 = 0`);
    before = await contents(writer);

    const moved = (await staff.gql.ok(MOVE, { s: site.id, i: { server: serverB.serverId } })).moveSite;
    expect(moved.site.status).toBe('MOVING');
    const job = await finished(moved.job.id);
    expect(job.error).toBeNull();
    expect(job.status).toBe('COMPLETED');
    expect(job.progress).toBe(100);
    expect(job.logs.join('\n')).toMatch(/verified: \d+ tables and sequences have the same row counts, checksums and values/);
    // Its session on the old server was ended when the move began.
    expect(await writer.query('select 1').then(() => null, (e) => e.message)).not.toBeNull();

    const after = await siteNode();
    expect(after.status).toBe('HEALTHY');
    expect(after.connection).toMatchObject({ port: pgB.port, user: from.user, database: from.database });
    const reader = await connect(after.connection);
    expect(await contents(reader)).toEqual(before);
    // The sequence moved with the rows: the next note gets the next id.
    const max = Number((await reader.query(`select max(id) as m from notes`)).rows[0].m);
    expect(Number((await reader.query(`insert into notes (title) values ('after the move') returning id`)).rows[0].id)).toBeGreaterThan(max);
    expect(await connectionError(from)).toMatch(/not permitted to log in/);
    // The old copy waits out its grace period on A.
    expect(await homeOn(pgA)).toMatchObject({ schema: 1, roles: 2 });
  });

  it('keeps the old copy for the grace period, then drops it with its roles', async () => {
    await app.services.jobs.send('site-drop-old-copies', {});
    await new Promise((r) => setTimeout(r, 1500));
    expect(await homeOn(pgA)).toMatchObject({ schema: 1, roles: 2 });
    await db.query(`update app_private.site_old_copies set drop_after = now() where site_id = $1`, [site.uuid]);
    await app.services.jobs.send('site-drop-old-copies', {});
    await poll(async () => ((await homeOn(pgA)).schema === 0 ? true : undefined), 20_000, 'the old copy to be dropped');
    expect(await homeOn(pgA)).toEqual({ schema: 0, database: 0, roles: 0 });
    expect(await homeOn(pgB)).toMatchObject({ schema: 1, roles: 2 });
    expect((await db.query(`select count(*)::int as n from app_private.site_old_copies where site_id = $1`, [site.uuid])).rows[0].n).toBe(0);
  });
});

describe('moveSite between isolation levels', () => {
  it('to a database of its own and back, same data and credentials each time; the old database is closed to its login', async () => {
    const schemaHome = (await siteNode()).connection;
    const expected = await contents(await connect(schemaHome));

    const toOwn = (await staff.gql.ok(MOVE, { s: site.id, i: { isolation: 'DATABASE' } })).moveSite;
    expect((await finished(toOwn.job.id)).status).toBe('COMPLETED');
    const own = await siteNode();
    expect(own).toMatchObject({ status: 'HEALTHY', isolation: 'DATABASE', connection: { port: pgB.port, database: `site_${site.hex}` } });
    const inOwn = await connect(own.connection);
    expect(await contents(inOwn)).toEqual(expected);
    expect((await inOwn.query(`select current_database() as d, current_user as u`)).rows[0]).toEqual({ d: `site_${site.hex}`, u: `site_${site.hex}_owner` });
    expect(await connectionError(own.connection, schemaHome.database)).toMatch(/permission denied for database/);

    const back = (await staff.gql.ok(MOVE, { s: site.id, i: { isolation: 'SCHEMA' } })).moveSite;
    expect((await finished(back.job.id)).status).toBe('COMPLETED');
    const again = await siteNode();
    expect(again).toMatchObject({ status: 'HEALTHY', isolation: 'SCHEMA', connection: schemaHome });
    expect(await contents(await connect(again.connection))).toEqual(expected);
    expect(await connectionError(again.connection, `site_${site.hex}`)).toMatch(/permission denied for database|does not exist/);
  });

  it('changeSitePlan to a plan of the other isolation level moves the site there, audited', async () => {
    const expected = await contents(await connect((await siteNode()).connection));
    const changed = (await staff.gql.ok(`mutation($s: ID!, $p: String!) { changeSitePlan(siteId: $s, plan: $p) { site { status plan { isolation } } job { id type } } }`, { s: site.id, p: 'site-dedicated' })).changeSitePlan;
    expect(changed).toMatchObject({ site: { status: 'MOVING', plan: { isolation: 'DATABASE' } }, job: { type: 'site-move' } });
    expect((await finished(changed.job.id)).status).toBe('COMPLETED');
    const now = await siteNode();
    expect(now).toMatchObject({ isolation: 'DATABASE', plan: { isolation: 'DATABASE' }, connection: { database: `site_${site.hex}` } });
    expect(await contents(await connect(now.connection))).toEqual(expected);
    const audit = await db.query(`select details from app_public.audit_events where tenant_id = $1 and action = 'changeSitePlan' and outcome = 'SUCCESS'`, [decodeGlobalID(tenant.id).id]);
    expect(audit.rows.at(-1).details).toEqual({ from: 'site-free', to: 'site-dedicated' });
  });
});

describe('a move that fails', () => {
  it('halfway (the restore on the target fails): the site stays where it was, intact and working; the target keeps nothing', async () => {
    const here = await siteNode();
    const expected = await contents(await connect(here.connection));
    // On A's sites database, every CREATE INDEX of a move's restore fails, after its rows were loaded.
    await pgA.query(
      `create function fail_move_index() returns event_trigger language plpgsql as $$
       begin if current_setting('search_path') like '%move_%' then raise exception 'no space left on device (simulated)'; end if; end $$`,
      [],
      'tenantplane_sites',
    );
    await pgA.query(`create event trigger fail_move_index on ddl_command_end when tag in ('CREATE INDEX', 'ALTER TABLE') execute function fail_move_index()`, [], 'tenantplane_sites');
    try {
      const moved = (await staff.gql.ok(MOVE, { s: site.id, i: { server: serverA.serverId, isolation: 'SCHEMA' } })).moveSite;
      const job = await finished(moved.job.id);
      expect(job.status).toBe('FAILED');
      expect(job.error).toMatch(/no space left on device \(simulated\)/);
      expect(job.logs.join('\n')).toMatch(/archived \d+ tables/);
    } finally {
      await pgA.query(`drop event trigger fail_move_index`, [], 'tenantplane_sites');
    }
    const after = await siteNode();
    expect(after).toMatchObject({ status: 'HEALTHY', isolation: here.isolation, connection: here.connection });
    const c = await connect(after.connection);
    expect(await contents(c)).toEqual(expected);
    await c.query(`insert into notes (title) values ('written after a failed move')`);
    // Nothing of the site is left on A: no schema, no half-restored schema, no roles.
    expect(await homeOn(pgA)).toEqual({ schema: 0, database: 0, roles: 0 });
    expect((await pgA.query(`select count(*)::int as n from pg_namespace where nspname like 'move_%'`, [], 'tenantplane_sites')).rows[0].n).toBe(0);
    expect((await db.query(`select count(*)::int as n from app_private.site_old_copies where site_id = $1 and database_server_id = $2`, [site.uuid, serverA.serverUuid])).rows[0].n).toBe(0);
  });

  it('at once (the target server is down): the site is let in again where it was, intact', async () => {
    const here = await siteNode();
    const expected = await contents(await connect(here.connection));
    // The target server goes down after the request checked it: the job pauses the site, archives it, then cannot
    // reach the target.
    await pgA.stop();
    const moved = (await staff.gql.ok(MOVE, { s: site.id, i: { server: serverA.serverId } })).moveSite;
    const job = await finished(moved.job.id);
    expect(job.status).toBe('FAILED');
    // It had paused the site (the log says so) before it failed, and says why it failed.
    expect(job.logs.join('\n')).toMatch(/is refused until the move ends/);
    expect(job.error).toMatch(/ECONNREFUSED|connect/);
    const after = await siteNode();
    expect(after).toMatchObject({ status: 'HEALTHY', isolation: here.isolation, connection: here.connection });
    const c = await connect(after.connection);
    expect(await contents(c)).toEqual(expected);
    await c.query(`insert into notes (title) values ('still writable')`);
    // Its archive for the move is gone from the cluster's storage.
    expect((await db.query(`select database_server_id from app_public.sites where id = $1`, [site.uuid])).rows[0].database_server_id).toBe(serverB.serverUuid);
  });
});
