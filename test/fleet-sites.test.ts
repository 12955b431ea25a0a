import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { createTenant, signUp, type TestUser, rowUuid } from './support/client.ts';
import { poll } from './support/workers.ts';
import { startSecondPostgres, type SecondPostgres } from './support/second-postgres.ts';
import { addDatabaseServer, CREATE_CLUSTER, CREATE_STORAGE, STORAGE_FIELDS, fleetName, platformStaff, type RegisteredDatabaseServer } from './support/fleet.ts';
import { startEmbeddedS3, type EmbeddedS3 } from '../src/storage/embedded.ts';
import { Storage } from '../src/storage/s3.ts';
import { freeLocalPort } from '../src/db/embedded.ts';

/**
 * Issue 10 §4 with real parts: a cluster of two more embedded PostgreSQL servers and a second S3 endpoint (s3rver)
 * as its storage. Sites spread over the servers by room, a server in maintenance takes none, a full cluster is a
 * readable refusal, a DATABASE-isolated site gets a database of its own, and each site's login reaches its own place
 * only. The cluster's backups go to its own S3, not the deployment's, and restore from there.
 */
let app: TestApp;
let db: pg.Client;
let staff: TestUser, owner: TestUser;
let tenant: { id: string; slug: string };
let pgA: SecondPostgres, pgB: SecondPostgres;
let serverA: RegisteredDatabaseServer, serverB: RegisteredDatabaseServer;
let s3: EmbeddedS3;
let s3Dir: string;
let clusterName: string;
const bucket = `tp-east-${crypto.randomBytes(4).toString('hex')}`;
const clients: pg.Client[] = [];

const CREATE_SITE = `mutation($i: CreateSiteInput!) { createSite(input: $i) { password site { id } } }`;
const SITE = `query($id: ID!) { node(id: $id) { ... on Site { id status isolation clusterName connection { host port database user sslMode } } } }`;

async function healthySite(id: string) {
  return poll(
    async () => {
      const s = (await owner.gql.ok(SITE, { id })).node;
      if (s.status === 'FAILED') throw new Error('the site failed to provision');
      return s.status === 'HEALTHY' ? s : undefined;
    },
    60_000,
    'the site to be healthy',
  );
}

async function createSite(prefix: string, plan?: string) {
  const r = (await owner.gql.ok(CREATE_SITE, { i: { tenantId: tenant.id, name: `${prefix}-${process.pid}`, displayName: prefix, apps: ['notes'], cluster: clusterName, ...(plan ? { plan } : {}) } })).createSite;
  return { id: r.site.id as string, uuid: rowUuid(r.site.id), password: r.password as string };
}

async function serverOf(siteUuid: string) {
  const r = await db.query(`select database_server_id from app_public.sites where id = $1`, [siteUuid]);
  return r.rows[0].database_server_id as string | null;
}

/** The tenant application's connection: what site.connection says, with the password createSite showed. */
async function connectAsSite(conn: { host: string; port: number; database: string; user: string }, password: string, database = conn.database) {
  const c = new pg.Client({ host: conn.host, port: conn.port, database, user: conn.user, password });
  await c.connect();
  clients.push(c);
  return c;
}

async function connectionError(conn: { host: string; port: number; user: string }, password: string, database: string) {
  const c = new pg.Client({ host: conn.host, port: conn.port, database, user: conn.user, password });
  try {
    await c.connect();
    await c.end();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

beforeAll(async () => {
  s3Dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantplane-s3b-'));
  [app, pgA, pgB, s3] = await Promise.all([startTestApp(), startSecondPostgres(), startSecondPostgres(), freeLocalPort().then((port) => startEmbeddedS3(s3Dir, port, bucket))]);
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  staff = await platformStaff(app);
  owner = await signUp(app, 'fleet-owner');
  tenant = await createTenant(owner, 'fleet-sites');
  await db.query(`update app_public.tenants set plan_id = 'pro' where slug = $1`, [tenant.slug]);
  clusterName = fleetName('east');
  const cluster = (await staff.gql.ok(CREATE_CLUSTER, { i: { name: clusterName, title: 'East', region: 'eu-east', networks: ['127.0.0.0/8'] } })).createCluster;
  // The cluster's own S3, checked, before any of its sites exists (their file prefixes are made there).
  const storage = (await staff.gql.ok(CREATE_STORAGE, { i: { clusterId: cluster.id, endpoint: s3.endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', defaultBucket: bucket } })).createStorageConfig;
  await staff.gql.ok(`mutation($s: ID!) { checkStorageConfig(storageConfigId: $s) { id } }`, { s: storage.id });
  await poll(
    async () => {
      const s = (await staff.gql.ok(`query($id: ID!) { node(id: $id) { ... on StorageConfig { ${STORAGE_FIELDS} } } }`, { id: storage.id })).node;
      return s.checkStatus === 'PASSED' ? s : undefined;
    },
    30_000,
    'the storage check',
  );
  [serverA, serverB] = await Promise.all([
    addDatabaseServer(staff, pgA, { clusterId: cluster.id, capacity: 2 }),
    addDatabaseServer(staff, pgB, { clusterId: cluster.id, capacity: 2 }),
  ]);
}, 120_000);

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => undefined);
  await db?.end();
  await app?.stop();
  await Promise.all([pgA?.stop(), pgB?.stop(), s3?.stop()]);
  if (s3Dir) fs.rmSync(s3Dir, { recursive: true, force: true });
});

const sites: Record<string, { id: string; uuid: string; password: string }> = {};

describe('placement over two database servers', () => {
  it('two sites land on two servers (the one with the most room), each reachable only with its own credentials', async () => {
    sites.one = await createSite('one');
    const first = await serverOf(sites.one.uuid);
    sites.two = await createSite('two');
    const second = await serverOf(sites.two.uuid);
    expect(new Set([first, second])).toEqual(new Set([serverA.serverUuid, serverB.serverUuid]));

    const one = await healthySite(sites.one.id);
    const two = await healthySite(sites.two.id);
    expect(one.clusterName).toBe(clusterName);
    const ports = { [serverA.serverUuid]: pgA.port, [serverB.serverUuid]: pgB.port };
    expect(one.connection).toMatchObject({ host: '127.0.0.1', port: ports[first!], user: `site_${sites.one.uuid.replace(/-/g, '')}` });
    expect(two.connection.port).toBe(ports[second!]);

    // Each application writes and reads its own notes on its own server.
    const appOne = await connectAsSite(one.connection, sites.one.password);
    await appOne.query(`insert into notes (title) values ('on server one')`);
    expect((await appOne.query(`select title from notes`)).rows).toEqual([{ title: 'on server one' }]);
    const appTwo = await connectAsSite(two.connection, sites.two.password);
    expect((await appTwo.query(`select count(*)::int as n from notes`)).rows[0].n).toBe(0);

    // Site one's login does not exist on site two's server, and site two's password does not open site one.
    expect(await connectionError({ ...two.connection, user: one.connection.user }, sites.one.password, two.connection.database)).toMatch(/password authentication failed|does not exist/);
    expect(await connectionError(one.connection, sites.two.password, one.connection.database)).toMatch(/password authentication failed/);
    // Nor the server's other databases: the check closed them to PUBLIC.
    for (const database of ['postgres', 'template1']) {
      expect(await connectionError(one.connection, sites.one.password, database)).toMatch(new RegExp(`permission denied for database "${database}"`));
    }
  });

  it('a server in maintenance gets no new site; a full cluster is a readable QUOTA_EXCEEDED; back in service, it takes sites again', async () => {
    const setMaintenance = (serverId: string, maintenance: boolean) =>
      staff.gql.ok(`mutation($s: ID!, $m: Boolean!) { setServerMaintenance(serverId: $s, maintenance: $m) { status } }`, { s: serverId, m: maintenance });
    expect((await setMaintenance(serverA.serverId, true)).setServerMaintenance.status).toBe('MAINTENANCE');
    sites.three = await createSite('three');
    expect(await serverOf(sites.three.uuid)).toBe(serverB.serverUuid);
    // B is now full (capacity 2) and A is in maintenance: no room anywhere in the cluster.
    const refused = await owner.gql.request(CREATE_SITE, { i: { tenantId: tenant.id, name: `four-${process.pid}`, displayName: 'four', cluster: clusterName } });
    expect(refused.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
    expect(refused.errors?.[0]?.message).toMatch(new RegExp(`no database server of cluster "${clusterName}" has room`));
    // The refused site left nothing behind.
    expect((await db.query(`select count(*)::int as n from app_public.sites where name = $1`, [`four-${process.pid}`])).rows[0].n).toBe(0);

    await setMaintenance(serverA.serverId, false);
    sites.four = await createSite('four');
    expect(await serverOf(sites.four.uuid)).toBe(serverA.serverUuid);
    await healthySite(sites.three.id);
    await healthySite(sites.four.id);
  });

  it('a DATABASE-isolated site gets a database of its own, which only its login may connect to', async () => {
    // Room for it: A holds one and four; raise its capacity.
    await staff.gql.ok(`mutation($i: UpdateDatabaseServerInput!) { updateDatabaseServer(input: $i) { capacity } }`, { i: { serverId: serverA.id, capacity: 3 } });
    // A capacity is not a reconnection: the server stays checked and ACTIVE.
    expect((await db.query(`select check_status from app_public.database_servers where server_id = $1`, [serverA.serverUuid])).rows[0].check_status).toBe('PASSED');
    sites.own = await createSite('own', 'site-dedicated');
    const own = await healthySite(sites.own.id);
    const hex = sites.own.uuid.replace(/-/g, '');
    expect(own).toMatchObject({ isolation: 'DATABASE', connection: { port: pgA.port, database: `site_${hex}`, user: `site_${hex}` } });
    const databases = await pgA.query(`select datname, has_database_privilege('public', datname, 'CONNECT') as public_connect from pg_database where datname = $1`, [`site_${hex}`]);
    expect(databases.rows).toEqual([{ datname: `site_${hex}`, public_connect: false }]);

    const appOwn = await connectAsSite(own.connection, sites.own.password);
    await appOwn.query(`insert into notes (title) values ('in my own database')`);
    expect((await appOwn.query(`select current_database() as d, current_schema() as s`)).rows[0]).toEqual({ d: `site_${hex}`, s: `site_${hex}` });
    // Not the server's shared sites database, where the SCHEMA-isolated sites live.
    const four = (await owner.gql.ok(SITE, { id: sites.four.id })).node;
    expect(await connectionError(own.connection, sites.own.password, four.connection.database)).toMatch(/permission denied for database/);
    // And a SCHEMA site's login does not reach the dedicated database.
    expect(await connectionError(four.connection, sites.four.password, own.connection.database)).toMatch(/permission denied for database/);
  });
});

describe("the cluster's own storage", () => {
  it("backs up to the cluster's S3 (recorded on the backup), not the deployment's, and restores from it", async () => {
    const site = (await owner.gql.ok(SITE, { id: sites.one.id })).node;
    const backup = (await owner.gql.ok(`mutation($s: ID!) { backupSite(siteId: $s) { backup { id } job { id } } }`, { s: sites.one.id })).backupSite.backup;
    await poll(
      async () => {
        const b = (await owner.gql.ok(`query($id: ID!) { node(id: $id) { ... on Backup { status error } } }`, { id: backup.id })).node;
        if (b.status === 'FAILED') throw new Error(`backup failed: ${b.error}`);
        return b.status === 'SUCCESS' ? b : undefined;
      },
      60_000,
      'the backup',
    );
    const row = (await db.query(`select b.object_key, b.bucket, s.endpoint from app_public.backups b join app_public.storage_configs s on s.id = b.storage_config_id where b.id = $1`, [rowUuid(backup.id)])).rows[0];
    expect(row).toMatchObject({ bucket, endpoint: s3.endpoint });
    const east = new Storage({ endpoint: s3.endpoint, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', bucket });
    const keys = await east.list(row.object_key);
    expect(keys.map((k) => k.key)).toContain(`${row.object_key}manifest.json`);
    // The site's file prefix was made there too.
    expect(await east.list(`tenants/${decodeGlobalID(tenant.id).id}/sites/${sites.one.uuid}/files/`)).toHaveLength(1);

    // Lose the data, restore from the cluster's storage, and the application sees it again.
    const appOne = await connectAsSite(site.connection, sites.one.password);
    await appOne.query(`delete from notes`);
    await owner.gql.ok(`mutation($s: ID!, $b: ID!) { restoreSite(siteId: $s, backupId: $b) { job { id } } }`, { s: sites.one.id, b: backup.id });
    await poll(async () => ((await owner.gql.ok(SITE, { id: sites.one.id })).node.status === 'HEALTHY' ? true : undefined), 60_000, 'the restore');
    const fresh = await connectAsSite(site.connection, sites.one.password);
    expect((await fresh.query(`select title from notes`)).rows).toEqual([{ title: 'on server one' }]);
  });
});
