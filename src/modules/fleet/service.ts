import crypto from 'node:crypto';
import { z } from 'zod';
import type { Context } from '../../graphql/context.ts';
import { badInput, conflict, notFound, translateDatabaseError } from '../../graphql/errors.ts';
import { parseInput } from '../../graphql/validate.ts';
import type { ServerType } from '../../db/generated/prisma/enums.ts';
import { putFleetSecret } from '../../secrets/store.ts';
import { requirePlatformPermission } from '../access/permissions.ts';
import { platformAudited, recordPlatformAudit } from '../audit/service.ts';
import * as v from './validate.ts';

/**
 * Fleet inventory for platform staff (issue 10 §1): clusters and their internal networks, proxy/app/database servers,
 * database servers' connection settings, one storage configuration per cluster. Every mutation checks
 * platform.fleet:write first; the policies of sql/0025 check it again on each statement. Passwords and secret keys are
 * sealed here (services.secrets) and stored through app.put_fleet_secret: write-only, never returned, never audited.
 * Checks and activations are jobs (./checks.ts) asked for through app.request_fleet_check (sql/0027).
 */

const WRITE = 'platform.fleet:write' as const;

const optional = <S extends z.ZodType>(s: S) => s.nullish().transform((x) => x ?? undefined);

// ---------------------------------------------------------------------------------------------------------------
// Clusters

const CreateClusterInput = z.object({
  name: v.fleetName('cluster'),
  title: v.title,
  region: optional(v.region),
  enabled: optional(z.boolean()),
  networks: v.networks.refine((n) => n.length > 0, 'a cluster needs at least one internal network (CIDR), e.g. 10.0.0.0/16'),
});

const UpdateClusterInput = z.object({
  title: optional(v.title),
  region: optional(v.region),
  enabled: optional(z.boolean()),
  networks: optional(v.networks.refine((n) => n.length > 0, 'a cluster needs at least one internal network (CIDR), e.g. 10.0.0.0/16')),
});

export function createCluster(ctx: Context, raw: unknown) {
  return platformAudited(ctx, { action: 'createCluster', targetType: 'Cluster' }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const input = parseInput(CreateClusterInput, raw);
    const cluster = await ctx.db.cluster
      .create({
        data: {
          name: input.name,
          title: input.title,
          ...(input.region ? { region: input.region } : {}),
          ...(input.enabled === undefined ? {} : { enabled: input.enabled }),
          networks: { createMany: { data: input.networks.map((cidr) => ({ cidr })) } },
        },
        select: { id: true },
      })
      .catch((e) => translateDatabaseError(e, { uniqueViolation: conflict(`a cluster is already named "${input.name}"`, 'name') }));
    await recordPlatformAudit(ctx, { action: 'createCluster', targetType: 'Cluster', targetId: cluster.id, details: { name: input.name, networks: input.networks } });
    return cluster.id;
  });
}

export function updateCluster(ctx: Context, clusterId: string, raw: unknown) {
  return platformAudited(ctx, { action: 'updateCluster', targetType: 'Cluster', targetId: clusterId }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const input = parseInput(UpdateClusterInput, raw);
    const cluster = await ctx.db.cluster.findUnique({ where: { id: clusterId }, select: { isDefault: true, networks: { select: { cidr: true } } } });
    if (!cluster) throw notFound('cluster');
    if (input.enabled === false && cluster.isDefault) throw badInput('enabled', 'the default cluster cannot be disabled: sites go there when no cluster is named');
    const data = {
      ...(input.title ? { title: input.title } : {}),
      ...(input.region ? { region: input.region } : {}),
      ...(input.enabled === undefined ? {} : { enabled: input.enabled }),
    };
    await ctx.db.cluster.updateMany({ where: { id: clusterId }, data: { ...data, updatedAt: new Date() } }).catch((e) => translateDatabaseError(e, { field: 'clusterId' }));
    let changes: { added: string[]; removed: string[] } | undefined;
    if (input.networks) {
      const current = cluster.networks.map((n) => withPrefix(n.cidr));
      const added = input.networks.filter((n) => !current.includes(n));
      const removed = current.filter((n) => !input.networks!.includes(n));
      // New ones first: the removal trigger (sql/0027) refuses to strand a server's private ip outside every network.
      if (added.length) await ctx.db.clusterNetwork.createMany({ data: added.map((cidr) => ({ clusterId, cidr })) });
      if (removed.length) {
        await ctx.db.clusterNetwork
          .deleteMany({ where: { clusterId, cidr: { in: removed } } })
          .catch((e) => translateDatabaseError(e, { field: 'networks', columns: { cidr: 'networks' } }));
      }
      changes = { added, removed };
    }
    await recordPlatformAudit(ctx, { action: 'updateCluster', targetType: 'Cluster', targetId: clusterId, details: { ...data, ...(changes ? { networks: changes } : {}) } });
    return clusterId;
  });
}

/** inet prints a host-length network without its prefix (10.1.2.3); a network list always shows one. */
export function withPrefix(cidr: string) {
  return cidr.includes('/') ? cidr : `${cidr}/${cidr.includes(':') ? 128 : 32}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Servers

const ServerFields = {
  name: v.fleetName('server'),
  hostname: v.fqdn,
  ip: v.ipAddress,
  privateIp: optional(v.ipAddress),
  containerPrefix: optional(v.containerPrefix),
  dockerSocket: optional(v.dockerSocket),
};

const CreateServerInput = z.object({
  ...ServerFields,
  type: z.enum(['PROXY', 'APP', 'DATABASE']).refine((t) => t !== 'DATABASE', 'a database server is created with createDatabaseServer (it needs its connection settings)'),
});

/** null clears an optional field; absent leaves it as it is. */
const clearable = <S extends z.ZodType>(s: S) => s.nullable().optional();

const UpdateServerInput = z.object({
  hostname: optional(v.fqdn),
  ip: optional(v.ipAddress),
  privateIp: clearable(v.ipAddress),
  containerPrefix: clearable(v.containerPrefix),
  dockerSocket: clearable(v.dockerSocket),
});

/** sql/0025's servers_private_ip trigger raises TPIN0 naming column private_ip: the field is privateIp. */
const SERVER_COLUMNS = { private_ip: 'privateIp', ip: 'ip', hostname: 'hostname', container_prefix: 'containerPrefix', docker_socket: 'dockerSocket' };

async function clusterExists(ctx: Context, clusterId: string) {
  const cluster = await ctx.db.cluster.findUnique({ where: { id: clusterId }, select: { id: true } });
  if (!cluster) throw badInput('clusterId', 'no such cluster');
}

function serverData(input: { hostname?: string; ip?: string; privateIp?: string | null; containerPrefix?: string | null; dockerSocket?: string | null }) {
  const data: Record<string, string | null> = {};
  for (const key of ['hostname', 'ip', 'privateIp', 'containerPrefix', 'dockerSocket'] as const) if (input[key] !== undefined) data[key] = input[key];
  return data;
}

export function createServer(ctx: Context, clusterId: string, raw: unknown) {
  return platformAudited(ctx, { action: 'createServer', targetType: 'Server' }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const input = parseInput(CreateServerInput, raw);
    await clusterExists(ctx, clusterId);
    const server = await ctx.db.server
      .create({ data: { clusterId, name: input.name, type: input.type as ServerType, ...serverData(input) } as never, select: { id: true } })
      .catch((e) => translateDatabaseError(e, { field: 'input', columns: SERVER_COLUMNS, uniqueViolation: conflict(`a server is already named "${input.name}"`, 'name') }));
    await recordPlatformAudit(ctx, { action: 'createServer', targetType: 'Server', targetId: server.id, details: { name: input.name, type: input.type, clusterId, ...serverData(input) } });
    return server.id;
  });
}

async function findServer(ctx: Context, serverId: string) {
  const server = await ctx.db.server.findUnique({ where: { id: serverId }, select: { id: true, name: true, type: true, status: true, database: { select: { managed: true } } } });
  if (!server) throw notFound('server');
  return server;
}

export function updateServer(ctx: Context, serverId: string, raw: unknown) {
  return platformAudited(ctx, { action: 'updateServer', targetType: 'Server', targetId: serverId }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const input = parseInput(UpdateServerInput, raw);
    await findServer(ctx, serverId);
    const data = serverData(input);
    await ctx.db.server
      .updateMany({ where: { id: serverId }, data: { ...data, updatedAt: new Date() } })
      .catch((e) => translateDatabaseError(e, { field: 'serverId', columns: SERVER_COLUMNS }));
    await recordPlatformAudit(ctx, { action: 'updateServer', targetType: 'Server', targetId: serverId, details: data });
    return serverId;
  });
}

/** ACTIVE → MAINTENANCE (maintenance: true) and back; a PENDING server is activated first (activateServer). */
export function setServerMaintenance(ctx: Context, serverId: string, maintenance: boolean) {
  return platformAudited(ctx, { action: 'setServerMaintenance', targetType: 'Server', targetId: serverId, details: { maintenance } }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const server = await findServer(ctx, serverId);
    const to = maintenance ? 'MAINTENANCE' : 'ACTIVE';
    if (server.status === to) return serverId;
    if (server.status === 'PENDING') {
      throw badInput('serverId', `the server ${server.name} is PENDING: activate it first (activateServer); only an ACTIVE server goes into maintenance`);
    }
    // The lifecycle trigger (sql/0025) has the last word: a concurrent move makes it TPIN0, BAD_USER_INPUT on serverId.
    await ctx.db.server.updateMany({ where: { id: serverId }, data: { status: to, updatedAt: new Date() } }).catch((e) => translateDatabaseError(e, { field: 'serverId' }));
    await recordPlatformAudit(ctx, { action: 'setServerMaintenance', targetType: 'Server', targetId: serverId, details: { from: server.status, to } });
    return serverId;
  });
}

/** Asks a worker for a check job (app.request_fleet_check, sql/0027); the row shows CHECKING until it reports. */
async function requestCheck(ctx: Context, kind: 'database-server' | 'storage' | 'server', id: string, field: string) {
  const [row] = await ctx.db
    .$queryRaw<{ job: string }[]>`select app.request_fleet_check(${kind}, ${id}::uuid)::text as job`
    .catch((e) => translateDatabaseError(e, { field }));
  return row!.job;
}

/**
 * PENDING → ACTIVE goes through a worker (the lifecycle allows it to maintenance code only): a database server's
 * check job activates it when it passes; a proxy or app server (inventory only) is activated by a job at once.
 */
export function activateServer(ctx: Context, serverId: string) {
  return platformAudited(ctx, { action: 'activateServer', targetType: 'Server', targetId: serverId }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const server = await findServer(ctx, serverId);
    if (server.status !== 'PENDING') throw badInput('serverId', `the server ${server.name} is already ${server.status}${server.type === 'DATABASE' ? ' (checkDatabaseServer checks it again)' : ''}`);
    const job = await requestCheck(ctx, server.type === 'DATABASE' ? 'database-server' : 'server', serverId, 'serverId');
    await recordPlatformAudit(ctx, { action: 'activateServer', targetType: 'Server', targetId: serverId, details: { type: server.type, job } });
    return serverId;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Database servers

const SSL_MODES = ['disable', 'prefer', 'require', 'verify-full'] as const;

const CreateDatabaseServerInput = z.object({
  ...ServerFields,
  host: optional(v.endpointHost),
  port: optional(v.port),
  adminUser: v.adminUser,
  adminPassword: v.secret('admin password'),
  sitesDatabase: optional(v.databaseName),
  sslMode: optional(z.enum(SSL_MODES)),
  capacity: optional(v.capacity),
});

const UpdateDatabaseServerInput = z.object({
  host: optional(v.endpointHost),
  port: optional(v.port),
  adminUser: optional(v.adminUser),
  adminPassword: optional(v.secret('admin password')),
  sslMode: optional(z.enum(SSL_MODES)),
  capacity: optional(v.capacity),
});

/**
 * A DATABASE server and its connection settings in one transaction; the admin password is sealed and stored through
 * app.put_fleet_secret. PENDING and UNCHECKED until activateServer's check passes. `host` defaults to the hostname.
 */
export function createDatabaseServer(ctx: Context, clusterId: string, raw: unknown) {
  return platformAudited(ctx, { action: 'createDatabaseServer', targetType: 'Server' }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const input = parseInput(CreateDatabaseServerInput, raw);
    await clusterExists(ctx, clusterId);
    const server = await ctx.db.server
      .create({ data: { clusterId, name: input.name, type: 'DATABASE', ...serverData(input) } as never, select: { id: true } })
      .catch((e) => translateDatabaseError(e, { field: 'input', columns: SERVER_COLUMNS, uniqueViolation: conflict(`a server is already named "${input.name}"`, 'name') }));
    const host = input.host ?? input.hostname;
    // Raw SQL: the request role may insert the columns sql/0025 grants, and Prisma would send every static default.
    await ctx.db.$executeRaw`
      insert into app_public.database_servers (server_id, host, port, admin_user, sites_database, ssl_mode, capacity)
      values (${server.id}::uuid, ${host}, ${input.port ?? 5432}::int, ${input.adminUser}, ${input.sitesDatabase ?? 'tenantplane_sites'},
              ${input.sslMode ?? 'disable'}, ${input.capacity ?? 100}::int)`.catch((e) => translateDatabaseError(e, { field: 'input' }));
    await putFleetSecret(ctx.db, ctx.services.secrets, 'database-server-password', server.id, input.adminPassword);
    await recordPlatformAudit(ctx, {
      action: 'createDatabaseServer',
      targetType: 'Server',
      targetId: server.id,
      details: { name: input.name, clusterId, host, port: input.port ?? 5432, adminUser: input.adminUser, sitesDatabase: input.sitesDatabase ?? 'tenantplane_sites' },
    });
    return server.id;
  });
}

/**
 * Connection settings and capacity; `adminPassword` rotates the stored password. A change of how to connect makes the
 * server UNCHECKED again (checkDatabaseServer). The deployment's own (managed) server takes a capacity only: the rest
 * comes from DATABASE_URL at every start.
 */
export function updateDatabaseServer(ctx: Context, serverId: string, raw: unknown) {
  return platformAudited(ctx, { action: 'updateDatabaseServer', targetType: 'Server', targetId: serverId }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const input = parseInput(UpdateDatabaseServerInput, raw);
    const server = await findServer(ctx, serverId);
    if (server.type !== 'DATABASE' || !server.database) throw notFound('database server');
    const connection = { host: input.host, port: input.port, adminUser: input.adminUser, sslMode: input.sslMode };
    if (server.database.managed) {
      const field = (Object.keys(connection) as Array<keyof typeof connection>).find((k) => connection[k] !== undefined) ?? (input.adminPassword !== undefined ? 'adminPassword' : undefined);
      if (field) throw badInput(field, 'the deployment’s own database server is configured by DATABASE_URL (refreshed at every start): only its capacity can change here');
    }
    const reconnect = Object.values(connection).some((x) => x !== undefined) || input.adminPassword !== undefined;
    await ctx.db.databaseServer
      .updateMany({
        where: { serverId },
        data: {
          ...Object.fromEntries(Object.entries(connection).filter(([, x]) => x !== undefined)),
          ...(input.capacity === undefined ? {} : { capacity: input.capacity }),
          ...(reconnect ? { checkStatus: 'UNCHECKED', checkError: null } : {}),
          updatedAt: new Date(),
        },
      })
      .catch((e) => translateDatabaseError(e, { field: 'serverId' }));
    if (input.adminPassword !== undefined) await putFleetSecret(ctx.db, ctx.services.secrets, 'database-server-password', serverId, input.adminPassword);
    await recordPlatformAudit(ctx, {
      action: 'updateDatabaseServer',
      targetType: 'Server',
      targetId: serverId,
      details: { ...Object.fromEntries(Object.entries(connection).filter(([, x]) => x !== undefined)), ...(input.capacity === undefined ? {} : { capacity: input.capacity }), passwordRotated: input.adminPassword !== undefined },
    });
    return serverId;
  });
}

/** Runs the database-server check again (after a rotation, an outage…); it activates the server if it is PENDING. */
export function checkDatabaseServer(ctx: Context, serverId: string) {
  return platformAudited(ctx, { action: 'checkDatabaseServer', targetType: 'Server', targetId: serverId }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const server = await findServer(ctx, serverId);
    if (server.type !== 'DATABASE') throw badInput('serverId', `the server ${server.name} is a ${server.type} server, not a database server`);
    const job = await requestCheck(ctx, 'database-server', serverId, 'serverId');
    await recordPlatformAudit(ctx, { action: 'checkDatabaseServer', targetType: 'Server', targetId: serverId, details: { job } });
    return serverId;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Storage configurations

const CreateStorageConfigInput = z.object({
  endpoint: v.s3Endpoint,
  region: optional(v.s3Region),
  accessKeyId: v.accessKeyId,
  secretAccessKey: v.secret('secret access key'),
  defaultBucket: v.bucket,
});

const UpdateStorageConfigInput = z.object({
  endpoint: optional(v.s3Endpoint),
  region: optional(v.s3Region),
  accessKeyId: optional(v.accessKeyId),
  secretAccessKey: optional(v.secret('secret access key')),
  defaultBucket: optional(v.bucket),
});

/** The one storage configuration of a cluster; its secret key sealed and stored through app.put_fleet_secret. */
export function createStorageConfig(ctx: Context, clusterId: string, raw: unknown) {
  return platformAudited(ctx, { action: 'createStorageConfig', targetType: 'StorageConfig' }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const input = parseInput(CreateStorageConfigInput, raw);
    await clusterExists(ctx, clusterId);
    const id = crypto.randomUUID();
    await ctx.db.$executeRaw`
      insert into app_public.storage_configs (id, cluster_id, endpoint, region, access_key_id, default_bucket)
      values (${id}::uuid, ${clusterId}::uuid, ${input.endpoint}, ${input.region ?? 'us-east-1'}, ${input.accessKeyId}, ${input.defaultBucket})`.catch((e) =>
      translateDatabaseError(e, { field: 'input', uniqueViolation: conflict('this cluster already has a storage configuration: update it (updateStorageConfig)', 'clusterId') }),
    );
    await putFleetSecret(ctx.db, ctx.services.secrets, 'storage-secret-key', id, input.secretAccessKey);
    await recordPlatformAudit(ctx, {
      action: 'createStorageConfig',
      targetType: 'StorageConfig',
      targetId: id,
      details: { clusterId, endpoint: input.endpoint, region: input.region ?? 'us-east-1', accessKeyId: input.accessKeyId, defaultBucket: input.defaultBucket },
    });
    return id;
  });
}

async function findStorageConfig(ctx: Context, id: string) {
  const config = await ctx.db.storageConfig.findUnique({ where: { id }, select: { id: true, managed: true } });
  if (!config) throw notFound('storage configuration');
  return config;
}

/** Changes a storage configuration (UNCHECKED again); the deployment's own (managed) one comes from S3_* at every start. */
export function updateStorageConfig(ctx: Context, id: string, raw: unknown) {
  return platformAudited(ctx, { action: 'updateStorageConfig', targetType: 'StorageConfig', targetId: id }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const input = parseInput(UpdateStorageConfigInput, raw);
    const config = await findStorageConfig(ctx, id);
    if (config.managed) throw badInput('storageConfigId', 'the deployment’s own storage is configured by S3_ENDPOINT and its S3_* settings (refreshed at every start)');
    const data = Object.fromEntries(Object.entries({ endpoint: input.endpoint, region: input.region, accessKeyId: input.accessKeyId, defaultBucket: input.defaultBucket }).filter(([, x]) => x !== undefined));
    await ctx.db.storageConfig
      .updateMany({ where: { id }, data: { ...data, checkStatus: 'UNCHECKED', checkError: null, updatedAt: new Date() } })
      .catch((e) => translateDatabaseError(e, { field: 'storageConfigId' }));
    if (input.secretAccessKey !== undefined) await putFleetSecret(ctx.db, ctx.services.secrets, 'storage-secret-key', id, input.secretAccessKey);
    await recordPlatformAudit(ctx, { action: 'updateStorageConfig', targetType: 'StorageConfig', targetId: id, details: { ...data, secretRotated: input.secretAccessKey !== undefined } });
    return id;
  });
}

/** The storage check: a worker writes, reads back and deletes a probe object in the default bucket. */
export function checkStorageConfig(ctx: Context, id: string) {
  return platformAudited(ctx, { action: 'checkStorageConfig', targetType: 'StorageConfig', targetId: id }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    await findStorageConfig(ctx, id);
    const job = await requestCheck(ctx, 'storage', id, 'storageConfigId');
    await recordPlatformAudit(ctx, { action: 'checkStorageConfig', targetType: 'StorageConfig', targetId: id, details: { job } });
    return id;
  });
}
