import pg from 'pg';
import { decodeGlobalID } from '@pothos/plugin-relay';
import type { TestApp } from './app.ts';
import { signUp, type TestUser } from './client.ts';

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
