import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { inject } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startTestApp, type TestApp } from './support/app.ts';
import { signUp, type TestUser } from './support/client.ts';
import { poll } from './support/workers.ts';
import { startSecondPostgres, type SecondPostgres } from './support/second-postgres.ts';
import { CREATE_CLUSTER, CREATE_DATABASE_SERVER, CREATE_STORAGE, DATABASE_SERVER_FIELDS, STORAGE_FIELDS, fleetName, platformStaff } from './support/fleet.ts';
import { Storage } from '../src/storage/s3.ts';
import { freeLocalPort } from '../src/db/embedded.ts';

/**
 * Issue 10 §1/§4, the fleet's check jobs against real servers: a second embedded PostgreSQL registered as a database
 * server (wrong password, unreachable, a login that may not create roles — each fails readably; the right one passes,
 * records the version, creates the sites database and activates the server) and the test S3 endpoint as a storage
 * configuration (probe written, read back and deleted; a missing bucket and a closed port fail readably).
 */
let app: TestApp;
let db: pg.Client;
let staff: TestUser;
let pg2: SecondPostgres;
let clusterId: string;

const PASSWORD_SENTINEL = `wrong-${crypto.randomBytes(6).toString('hex')}`;

beforeAll(async () => {
  [app, pg2] = await Promise.all([startTestApp(), startSecondPostgres()]);
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  staff = await platformStaff(app);
  const c = await staff.gql.ok(CREATE_CLUSTER, { i: { name: fleetName('checks'), title: 'Checks', networks: ['127.0.0.0/8', '10.0.0.0/8'] } });
  clusterId = c.createCluster.id;
  // A login that may log in but not create roles or databases.
  await pg2.query(`create role weakling login password 'weak-password'`);
  // The first check closes every database to PUBLIC (a site's login must reach none): the weakling is let in by name.
  await pg2.query(`grant connect on database postgres to weakling`);
}, 60_000);
afterAll(async () => {
  await db?.end();
  await app?.stop();
  await pg2?.stop();
});

const uuid = (globalId: string) => decodeGlobalID(globalId).id;
const DATABASE_SERVER = `query($id: ID!) { node(id: $id) { ... on DatabaseServer { ${DATABASE_SERVER_FIELDS} } } }`;

async function databaseServer(extra: Record<string, unknown>) {
  const r = await staff.gql.ok(CREATE_DATABASE_SERVER, {
    i: {
      clusterId,
      name: fleetName('pg'),
      hostname: 'db2.fleet.example.com',
      ip: '127.0.0.1',
      privateIp: '127.0.0.1',
      host: pg2.host,
      port: pg2.port,
      adminUser: pg2.user,
      adminPassword: pg2.password,
      ...extra,
    },
  });
  return r.createDatabaseServer;
}

/** Waits for the check job to record its verdict. */
async function checked(id: string) {
  return poll(
    async () => {
      const r = await staff.gql.ok(DATABASE_SERVER, { id });
      return ['PASSED', 'FAILED'].includes(r.node.checkStatus) ? r.node : undefined;
    },
    30_000,
    'the database server check',
  );
}

describe('database servers', () => {
  it('a wrong password fails its check readably; the right one passes, records the version, creates the sites database and activates it', async () => {
    const created = await databaseServer({ adminPassword: PASSWORD_SENTINEL, sitesDatabase: 'fleet_sites' });
    expect(created).toMatchObject({ host: '127.0.0.1', port: pg2.port, adminUser: pg2.user, sitesDatabase: 'fleet_sites', sslMode: 'DISABLE', capacity: 100, managed: false, checkStatus: 'UNCHECKED', server: { status: 'PENDING', type: 'DATABASE' } });

    const asked = await staff.gql.ok(`mutation($s: ID!) { activateServer(serverId: $s) { status database { checkStatus } } }`, { s: created.server.id });
    expect(asked.activateServer).toEqual({ status: 'PENDING', database: { checkStatus: 'CHECKING' } });
    const failed = await checked(created.id);
    expect(failed).toMatchObject({ checkStatus: 'FAILED', server: { status: 'PENDING' } });
    expect(failed.checkError).toMatch(new RegExp(`password authentication failed for user "${pg2.user}"`));
    expect(failed.checkedAt).toBeTruthy();

    // Rotating the password makes it UNCHECKED; the check passes, and the server becomes ACTIVE.
    const rotated = await staff.gql.ok(`mutation($i: UpdateDatabaseServerInput!) { updateDatabaseServer(input: $i) { checkStatus checkError } }`, {
      i: { serverId: created.id, adminPassword: pg2.password },
    });
    expect(rotated.updateDatabaseServer).toEqual({ checkStatus: 'UNCHECKED', checkError: null });
    await staff.gql.ok(`mutation($s: ID!) { checkDatabaseServer(serverId: $s) { checkStatus } }`, { s: created.server.id });
    const passed = await checked(created.id);
    expect(passed).toMatchObject({ checkStatus: 'PASSED', checkError: null, server: { status: 'ACTIVE' } });
    expect(passed.version).toMatch(/^1[5-9]|^[2-9][0-9]/);
    const sites = await pg2.query(`select datname, has_database_privilege('public', datname, 'CONNECT') as public_connect from pg_database where datname = 'fleet_sites'`);
    expect(sites.rows).toEqual([{ datname: 'fleet_sites', public_connect: false }]);

    // Once ACTIVE it goes into maintenance and back like any server.
    const m = await staff.gql.ok(`mutation($s: ID!) { setServerMaintenance(serverId: $s, maintenance: true) { status } }`, { s: created.id });
    expect(m.setServerMaintenance.status).toBe('MAINTENANCE');
  });

  it('an unreachable server and a login that may not create roles and databases fail readably', async () => {
    const closed = await freeLocalPort();
    const unreachable = await databaseServer({ port: closed });
    await staff.gql.ok(`mutation($s: ID!) { activateServer(serverId: $s) { id } }`, { s: unreachable.id });
    const weak = await databaseServer({ adminUser: 'weakling', adminPassword: 'weak-password' });
    await staff.gql.ok(`mutation($s: ID!) { activateServer(serverId: $s) { id } }`, { s: weak.id });
    expect((await checked(unreachable.id)).checkError).toBe(`could not connect to 127.0.0.1:${closed}: connection refused`);
    const w = await checked(weak.id);
    expect(w.checkError).toBe('the login weakling may not create roles and databases: it needs SUPERUSER, or CREATEROLE and CREATEDB');
    expect(w.server.status).toBe('PENDING');
    expect(w.version).toMatch(/^\d+/);
  });

  it('the password is write-only: sealed at rest, in no field, no audit entry and no job payload', async () => {
    const s = await databaseServer({ adminPassword: PASSWORD_SENTINEL });
    await staff.gql.ok(`mutation($s: ID!) { activateServer(serverId: $s) { id } }`, { s: s.id });
    await checked(s.id);
    const { rows } = await db.query(`select sealed from app_private.secrets where kind = 'database-server-password' and ref = $1`, [uuid(s.id)]);
    expect(rows).toHaveLength(1);
    expect(rows[0].sealed).not.toContain(PASSWORD_SENTINEL);
    const everywhere = await db.query(
      `select (select count(*)::int from app_public.platform_audit_events where details::text like '%' || $1 || '%') as audit,
              (select count(*)::int from pgboss.job where data::text like '%' || $1 || '%') as jobs,
              (select count(*)::int from app_public.database_servers d where row_to_json(d)::text like '%' || $1 || '%') as rows`,
      [PASSWORD_SENTINEL],
    );
    expect(everywhere.rows[0]).toEqual({ audit: 0, jobs: 0, rows: 0 });
    const type = await staff.gql.ok(`{ __type(name: "DatabaseServer") { fields { name } } }`);
    expect(type.__type.fields.map((f: any) => f.name).filter((n: string) => /password|secret/i.test(n))).toEqual([]);
    // Removed from the fleet, the server takes its sealed password with it (sql/0032).
    await db.query(`delete from app_public.database_servers where server_id = $1`, [uuid(s.id)]);
    await db.query(`delete from app_public.servers where id = $1`, [uuid(s.id)]);
    expect((await db.query(`select count(*)::int as n from app_private.secrets where kind = 'database-server-password' and ref = $1`, [uuid(s.id)])).rows[0].n).toBe(0);
  });

  it('malformed connection settings are refused naming their field', async () => {
    for (const [field, bad] of [
      ['port', { port: 70000 }],
      ['host', { host: 'bad host!' }],
      ['adminUser', { adminUser: '1bad' }],
      ['adminPassword', { adminPassword: '' }],
      ['sitesDatabase', { sitesDatabase: 'Sites-DB' }],
      ['capacity', { capacity: -1 }],
      ['hostname', { hostname: 'db2' }],
      ['privateIp', { privateIp: '192.168.1.1' }],
    ] as const) {
      const r = await staff.gql.request(CREATE_DATABASE_SERVER, {
        i: { clusterId, name: fleetName('pg'), hostname: 'db3.fleet.example.com', ip: '127.0.0.1', adminUser: 'postgres', adminPassword: 'x', ...bad },
      });
      expect(r.errors?.[0]?.extensions, `${field}: ${JSON.stringify(r.errors)}`).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
    // Nothing half-made: a refused database server leaves no server row behind.
    const { rows } = await db.query(`select count(*)::int as n from app_public.servers s where s.type = 'DATABASE' and not exists (select 1 from app_public.database_servers d where d.server_id = s.id)`);
    expect(rows[0].n).toBe(0);
  });
});

describe('storage configurations', () => {
  const endpoint = inject('s3Endpoint');
  const bucket = `tp-fleet-${crypto.randomBytes(5).toString('hex')}`;
  let storageId: string;
  beforeAll(async () => {
    const s = new Storage({ endpoint, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', bucket });
    await s.ensureBucket();
  });

  async function storageChecked(id: string) {
    return poll(
      async () => {
        const r = await staff.gql.ok(`query($id: ID!) { node(id: $id) { ... on StorageConfig { ${STORAGE_FIELDS} } } }`, { id });
        return ['PASSED', 'FAILED'].includes(r.node.checkStatus) ? r.node : undefined;
      },
      30_000,
      'the storage check',
    );
  }

  it('passes against the test S3 endpoint: the probe object is written, read back and deleted', async () => {
    const r = await staff.gql.ok(CREATE_STORAGE, { i: { clusterId, endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', defaultBucket: bucket } });
    storageId = r.createStorageConfig.id;
    expect(r.createStorageConfig).toMatchObject({ endpoint, region: 'us-east-1', accessKeyId: 'S3RVER', defaultBucket: bucket, managed: false, checkStatus: 'UNCHECKED' });
    const asked = await staff.gql.ok(`mutation($s: ID!) { checkStorageConfig(storageConfigId: $s) { checkStatus } }`, { s: storageId });
    expect(asked.checkStorageConfig.checkStatus).toBe('CHECKING');
    expect(await storageChecked(storageId)).toMatchObject({ checkStatus: 'PASSED', checkError: null });
    const left = await new Storage({ endpoint, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', bucket }).list('tenantplane-checks/');
    expect(left).toEqual([]);
    // One per cluster.
    const again = await staff.gql.request(CREATE_STORAGE, { i: { clusterId, endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', defaultBucket: bucket } });
    expect(again.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', field: 'clusterId' });
  });

  // s3rver verifies no SigV4 signature (DESIGN.md §7): a wrong secret key would pass against it. The failing cases
  // are what it does refuse — a bucket that does not exist — and an endpoint nobody listens on.
  it('fails readably for a missing bucket and an endpoint nobody listens on', async () => {
    const update = `mutation($i: UpdateStorageConfigInput!) { updateStorageConfig(input: $i) { checkStatus } }`;
    await staff.gql.ok(update, { i: { storageConfigId: storageId, defaultBucket: 'tp-no-such-bucket-here', secretAccessKey: 'a-wrong-secret-s3rver-ignores' } });
    await staff.gql.ok(`mutation($s: ID!) { checkStorageConfig(storageConfigId: $s) { id } }`, { s: storageId });
    const missing = await storageChecked(storageId);
    expect(missing.checkStatus).toBe('FAILED');
    expect(missing.checkError).toMatch(/^writing a probe object in bucket tp-no-such-bucket-here failed: NoSuchBucket: The specified bucket does not exist/);

    const closed = await freeLocalPort();
    await staff.gql.ok(update, { i: { storageConfigId: storageId, endpoint: `http://127.0.0.1:${closed}`, defaultBucket: bucket } });
    await staff.gql.ok(`mutation($s: ID!) { checkStorageConfig(storageConfigId: $s) { id } }`, { s: storageId });
    const down = await storageChecked(storageId);
    expect(down.checkStatus).toBe('FAILED');
    expect(down.checkError).toBe(`writing a probe object in bucket ${bucket} failed: could not connect to http://127.0.0.1:${closed}: connection refused`);
  });

  it('malformed settings are refused naming their field; the secret key is never returned or stored in the clear', async () => {
    const other = await staff.gql.ok(CREATE_CLUSTER, { i: { name: fleetName('s3'), title: 'S3', networks: ['10.0.0.0/8'] } });
    for (const [field, bad] of [
      ['endpoint', { endpoint: 'ftp://example.com' }],
      ['endpoint', { endpoint: 'https://user:pw@example.com' }],
      ['region', { region: 'US East' }],
      ['defaultBucket', { defaultBucket: 'Bad_Bucket' }],
      ['defaultBucket', { defaultBucket: '10.0.0.1' }],
      ['accessKeyId', { accessKeyId: '' }],
      ['secretAccessKey', { secretAccessKey: '' }],
    ] as const) {
      const r = await staff.gql.request(CREATE_STORAGE, { i: { clusterId: other.createCluster.id, endpoint, accessKeyId: 'k', secretAccessKey: 's', defaultBucket: bucket, ...bad } });
      expect(r.errors?.[0]?.extensions, `${field}: ${JSON.stringify(r.errors)}`).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
    const sealed = await db.query(`select sealed from app_private.secrets where kind = 'storage-secret-key' and ref = $1`, [uuid(storageId)]);
    expect(sealed.rows[0].sealed).not.toContain('a-wrong-secret-s3rver-ignores');
    const type = await staff.gql.ok(`{ __type(name: "StorageConfig") { fields { name } } }`);
    expect(type.__type.fields.map((f: any) => f.name).filter((n: string) => /secret/i.test(n))).toEqual([]);
  });
});

describe('tenants', () => {
  it('a tenant admin sees no database server and no storage configuration', async () => {
    const user = await signUp(app, 'tenant');
    const r = await user.gql.ok(`{ clusters(first: 50) { edges { node { storage { id } servers(type: DATABASE) { totalCount } } } } }`);
    for (const e of r.clusters.edges) expect(e.node).toEqual({ storage: null, servers: { totalCount: 0 } });
    const ids = (await db.query(`select server_id::text as id from app_public.database_servers limit 1`)).rows;
    expect(ids.length).toBe(1);
    const node = await user.gql.ok(`query($id: ID!) { node(id: $id) { id } }`, { id: Buffer.from(`DatabaseServer:${ids[0].id}`).toString('base64') });
    expect(node.node).toBeNull();
  });
});
