import pg from 'pg';
import { decodeGlobalID } from '@pothos/plugin-relay';
import type { TestApp } from './app.ts';
import { signUp, type TestUser } from './client.ts';
import type { SecondPostgres } from './second-postgres.ts';
import { poll } from './workers.ts';

/** A signed-up user made platform staff in SQL (the role is read per request: the token they hold carries it). */
export async function platformStaff(app: TestApp, role: 'SUPERADMIN' | 'OPERATOR' | 'VIEWER' = 'SUPERADMIN', name = 'staff'): Promise<TestUser> {
  const user = await signUp(app, name);
  const db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  try {
    await db.query(`update app_public.users set platform_role = $1 where id = $2`, [role, decodeGlobalID(user.id).id]);
  } finally {
    await db.end();
  }
  return user;
}

export const CLUSTER_FIELDS = `id name title region enabled isDefault networks`;
export const SERVER_FIELDS = `id name hostname ip privateIp type status containerPrefix dockerSocket lastHeartbeatAt reachable process cluster { name }`;
export const DATABASE_SERVER_FIELDS = `id host port adminUser sitesDatabase sslMode capacity managed checkStatus checkError checkedAt version server { id name status type }`;
export const STORAGE_FIELDS = `id endpoint region accessKeyId defaultBucket managed checkStatus checkError checkedAt cluster { name }`;

export const CREATE_CLUSTER = `mutation($i: CreateClusterInput!) { createCluster(input: $i) { ${CLUSTER_FIELDS} } }`;
export const CREATE_SERVER = `mutation($i: CreateServerInput!) { createServer(input: $i) { ${SERVER_FIELDS} } }`;
export const CREATE_DATABASE_SERVER = `mutation($i: CreateDatabaseServerInput!) { createDatabaseServer(input: $i) { ${DATABASE_SERVER_FIELDS} } }`;
export const CREATE_STORAGE = `mutation($i: CreateStorageConfigInput!) { createStorageConfig(input: $i) { ${STORAGE_FIELDS} } }`;

let counter = 0;
/** A unique fleet name (servers and clusters are unique in the deployment). */
export function fleetName(prefix: string) {
  return `${prefix}-${process.pid}-${counter++}`;
}

export interface RegisteredDatabaseServer {
  /** DatabaseServer and Server global ids. */
  id: string;
  serverId: string;
  /** The servers row's uuid (sites.database_server_id). */
  serverUuid: string;
  name: string;
}

/**
 * Registers a real PostgreSQL (a SecondPostgres) as a database server of a cluster and activates it: the check job
 * connects with the admin login, creates the sites database, and the server becomes ACTIVE. Resolves once it is.
 */
export async function addDatabaseServer(
  staff: TestUser,
  target: Pick<SecondPostgres, 'host' | 'port' | 'user' | 'password'>,
  opts: { clusterId: string; capacity?: number; sitesDatabase?: string; name?: string },
): Promise<RegisteredDatabaseServer> {
  const name = opts.name ?? fleetName('pg');
  const created = (
    await staff.gql.ok(CREATE_DATABASE_SERVER, {
      i: {
        clusterId: opts.clusterId,
        name,
        hostname: `${name}.fleet.example.com`,
        ip: '127.0.0.1',
        privateIp: '127.0.0.1',
        host: target.host,
        port: target.port,
        adminUser: target.user,
        adminPassword: target.password,
        ...(opts.capacity === undefined ? {} : { capacity: opts.capacity }),
        ...(opts.sitesDatabase === undefined ? {} : { sitesDatabase: opts.sitesDatabase }),
      },
    })
  ).createDatabaseServer;
  await staff.gql.ok(`mutation($s: ID!) { activateServer(serverId: $s) { id } }`, { s: created.server.id });
  const query = `query($id: ID!) { node(id: $id) { ... on DatabaseServer { checkStatus checkError server { status } } } }`;
  await poll(
    async () => {
      const d = (await staff.gql.ok(query, { id: created.id })).node;
      if (d.checkStatus === 'FAILED') throw new Error(`the database server check failed: ${d.checkError}`);
      return d.checkStatus === 'PASSED' && d.server.status === 'ACTIVE' ? d : undefined;
    },
    30_000,
    'the database server to become active',
  );
  return { id: created.id, serverId: created.server.id, serverUuid: decodeGlobalID(created.server.id).id, name };
}
