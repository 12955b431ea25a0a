import { decodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../../graphql/builder.ts';
import { badInput } from '../../graphql/errors.ts';
import { isUuid, uuidFromGlobalId } from '../../graphql/ids.ts';
import { requirePlatformPermission } from '../access/permissions.ts';
import { AuditOutcomeEnum } from '../audit/types.ts';
import { isReachable } from './app-servers.ts';
import * as fleet from './service.ts';

/**
 * The fleet in GraphQL (issue 10 §1). What a caller sees is the policies' decision (sql/0025): any signed-in user
 * sees enabled clusters (name, title, region) and the site plans; a cluster's networks, servers and storage come
 * back empty / null unless the caller holds platform.fleet:read — RLS filters those rows, no resolver decides.
 * Secrets (admin passwords, secret keys) are write-only: no field returns them.
 */

const ServerTypeEnum = builder.enumType('ServerType', { values: ['PROXY', 'APP', 'DATABASE'] as const });
const ServerStatusEnum = builder.enumType('ServerStatus', {
  description: 'PENDING → ACTIVE (activateServer: a job, a database server only once its check passed) ⇄ MAINTENANCE.',
  values: ['PENDING', 'ACTIVE', 'MAINTENANCE'] as const,
});
export const FleetCheckStatusEnum = builder.enumType('FleetCheckStatus', {
  description: 'UNCHECKED (never, or changed since) → CHECKING (a job runs) → PASSED or FAILED (checkError says why).',
  values: ['UNCHECKED', 'CHECKING', 'PASSED', 'FAILED'] as const,
});
export const SiteIsolationEnum = builder.enumType('SiteIsolation', {
  description: 'SCHEMA: a schema of the server’s sites database; DATABASE: a database of its own.',
  values: ['SCHEMA', 'DATABASE'] as const,
});
const SslModeEnum = builder.enumType('DatabaseSslMode', {
  description: 'How the control plane connects to a database server, as libpq’s sslmode.',
  values: {
    DISABLE: { value: 'disable' },
    PREFER: { value: 'prefer' },
    REQUIRE: { value: 'require', description: 'TLS, the certificate not verified.' },
    VERIFY_FULL: { value: 'verify-full', description: 'TLS with a certificate valid for the host.' },
  } as const,
});

builder.prismaNode('Cluster', {
  id: { field: 'id' },
  nullable: true,
  description: 'A group of servers with its internal networks and storage (seed 001 Cluster).',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Unique slug, what createSite takes as `cluster`.' }),
    title: t.exposeString('title'),
    region: t.exposeString('region'),
    enabled: t.exposeBoolean('enabled', { description: 'Sites may be created in enabled clusters only; the default cluster is always enabled.' }),
    isDefault: t.exposeBoolean('isDefault'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    networks: t.stringList({
      description: 'Internal networks (CIDR) the servers’ private ips lie in. Empty unless you hold platform.fleet:read (RLS).',
      select: { networks: { select: { cidr: true }, orderBy: { cidr: 'asc' } } },
      resolve: (c) => c.networks.map((n) => fleet.withPrefix(n.cidr)),
    }),
    servers: t.relatedConnection('servers', {
      description: 'The cluster’s servers by name. Empty unless you hold platform.fleet:read (RLS).',
      totalCount: true,
      cursor: 'name',
      args: { type: t.arg({ type: ServerTypeEnum }), status: t.arg({ type: ServerStatusEnum }) },
      query: (args) => ({ where: { ...(args.type ? { type: args.type } : {}), ...(args.status ? { status: args.status } : {}) }, orderBy: { name: 'asc' } }),
    }),
    storage: t.relation('storage', { nullable: true, description: 'Where the cluster’s backups and files go. Null unless you hold platform.fleet:read (RLS).' }),
  }),
});

builder.prismaNode('Server', {
  id: { field: 'id' },
  nullable: true,
  description: 'A proxy, app (worker process) or database server of a cluster (seed 001 Server). Platform staff only.',
  fields: (t) => ({
    name: t.exposeString('name'),
    hostname: t.exposeString('hostname'),
    ip: t.exposeString('ip'),
    privateIp: t.exposeString('privateIp', { nullable: true, description: 'Inside one of the cluster’s networks.' }),
    type: t.expose('type', { type: ServerTypeEnum }),
    status: t.expose('status', { type: ServerStatusEnum }),
    containerPrefix: t.exposeString('containerPrefix', {
      nullable: true,
      description: 'Docker container group: kebab-case ending in -c and its number, `^[a-z][a-z0-9]*(-[a-z0-9]+)*-c[0-9]{1,4}$` (erp-saas-cloud-c16).',
    }),
    dockerSocket: t.exposeString('dockerSocket', { nullable: true }),
    cluster: t.relation('cluster'),
    database: t.relation('database', { nullable: true, description: 'A DATABASE server’s connection settings and check.' }),
    lastHeartbeatAt: t.expose('lastHeartbeatAt', { type: 'DateTime', nullable: true, description: 'App servers: the worker process’s last heartbeat.' }),
    reachable: t.boolean({
      nullable: true,
      description: 'App servers: a heartbeat within three of its intervals and no clean stop since. Null for other types.',
      select: { type: true, lastHeartbeatAt: true, process: true },
      resolve: (s) => (s.type === 'APP' ? isReachable(s.lastHeartbeatAt, s.process) : null),
    }),
    process: t.expose('process', { type: 'JSON', nullable: true, description: 'App servers: pid, version, node, queues, startedAt, heartbeatSeconds (stoppedAt after a clean stop).' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.prismaNode('DatabaseServer', {
  id: { field: 'serverId' },
  nullable: true,
  description: 'A PostgreSQL endpoint sites live on: a server of type DATABASE. The admin password is write-only.',
  fields: (t) => ({
    server: t.relation('server'),
    host: t.exposeString('host'),
    port: t.exposeInt('port'),
    adminUser: t.exposeString('adminUser'),
    sitesDatabase: t.exposeString('sitesDatabase', { description: 'The database holding one schema per site (created by the check when missing).' }),
    sslMode: t.field({ type: SslModeEnum, resolve: (d) => d.sslMode as 'disable' }),
    capacity: t.exposeInt('capacity', { description: 'How many sites it takes.' }),
    managed: t.exposeBoolean('managed', { description: 'The deployment’s own PostgreSQL, configured by DATABASE_URL.' }),
    checkStatus: t.expose('checkStatus', { type: FleetCheckStatusEnum }),
    checkError: t.exposeString('checkError', { nullable: true, description: 'Why the last check failed, in words.' }),
    checkedAt: t.expose('checkedAt', { type: 'DateTime', nullable: true }),
    version: t.exposeString('version', { nullable: true, description: 'server_version found by the last check.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.prismaNode('StorageConfig', {
  id: { field: 'id' },
  nullable: true,
  description: 'The S3-compatible storage of a cluster (seed 001 Storage Configuration). The secret key is write-only.',
  fields: (t) => ({
    cluster: t.relation('cluster'),
    endpoint: t.exposeString('endpoint'),
    region: t.exposeString('region'),
    accessKeyId: t.exposeString('accessKeyId'),
    defaultBucket: t.exposeString('defaultBucket'),
    managed: t.exposeBoolean('managed', { description: 'The deployment’s own S3 (embedded or S3_*), refreshed at every start.' }),
    checkStatus: t.expose('checkStatus', { type: FleetCheckStatusEnum }),
    checkError: t.exposeString('checkError', { nullable: true }),
    checkedAt: t.expose('checkedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.prismaNode('SitePlan', {
  id: { field: 'id' },
  nullable: true,
  description: 'What a site may use (seed 001 Site Plan), and how it is isolated. Readable by everyone.',
  fields: (t) => ({
    name: t.exposeString('id', { description: 'The plan’s key (site-free, site-pro…), what createSite takes as `plan`.' }),
    title: t.exposeString('title'),
    priceCents: t.exposeInt('priceCents', { description: 'Per month, in the currency’s minor unit.' }),
    currency: t.exposeString('currency'),
    storageLimitBytes: t.expose('storageLimitBytes', { type: 'BigInt' }),
    connectionLimit: t.exposeInt('connectionLimit'),
    statementTimeoutMs: t.exposeInt('statementTimeoutMs'),
    features: t.exposeStringList('features'),
    isolation: t.expose('isolation', { type: SiteIsolationEnum }),
    isDefault: t.exposeBoolean('isDefault'),
  }),
});

builder.prismaObject('PlatformAuditEvent', {
  description: 'An entry of the platform’s own audit log (fleet mutations: they belong to no tenant).',
  fields: (t) => ({
    id: t.id({ resolve: (e) => String(e.id) }),
    action: t.exposeString('action'),
    targetType: t.exposeString('targetType', { nullable: true }),
    targetId: t.exposeString('targetId', { nullable: true }),
    outcome: t.expose('outcome', { type: AuditOutcomeEnum }),
    details: t.expose('details', { type: 'JSON' }),
    ip: t.exposeString('ip', { nullable: true }),
    userAgent: t.exposeString('userAgent', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    actor: t.relation('actor', { nullable: true }),
  }),
});

// ---------------------------------------------------------------------------------------------------------------
// Queries

function serverFilter(args: { clusterId?: string | number | null; type?: 'PROXY' | 'APP' | 'DATABASE' | null; status?: 'PENDING' | 'ACTIVE' | 'MAINTENANCE' | null }) {
  const clusterId = args.clusterId ? uuidFromGlobalId('Cluster', String(args.clusterId), 'clusterId') : undefined;
  return { ...(clusterId ? { clusterId } : {}), ...(args.type ? { type: args.type } : {}), ...(args.status ? { status: args.status } : {}) };
}

builder.queryFields((t) => ({
  clusters: t.prismaConnection({
    type: 'Cluster',
    cursor: 'name',
    totalCount: (_parent, _args, ctx) => ctx.db.cluster.count(),
    description: 'Clusters by name: enabled ones for any signed-in user, all of them for platform staff (RLS).',
    resolve: (query, _root, _args, ctx) => ctx.db.cluster.findMany({ ...query, orderBy: { name: 'asc' } }),
  }),
  cluster: t.prismaField({
    type: 'Cluster',
    nullable: true,
    args: { name: t.arg.string({ required: true }) },
    resolve: (query, _root, args, ctx) => ctx.db.cluster.findUnique({ ...query, where: { name: args.name } }),
  }),
  servers: t.prismaConnection({
    type: 'Server',
    cursor: 'name',
    totalCount: async (_parent, args, ctx) => {
      await requirePlatformPermission(ctx, 'platform.fleet:read');
      return ctx.db.server.count({ where: serverFilter(args) });
    },
    description: 'Platform staff (platform.fleet:read): servers by name, narrowed to a cluster, a type or a status.',
    args: { clusterId: t.arg.id(), type: t.arg({ type: ServerTypeEnum }), status: t.arg({ type: ServerStatusEnum }) },
    resolve: async (query, _root, args, ctx) => {
      await requirePlatformPermission(ctx, 'platform.fleet:read');
      return ctx.db.server.findMany({ ...query, where: serverFilter(args), orderBy: { name: 'asc' } });
    },
  }),
  sitePlans: t.prismaField({
    type: ['SitePlan'],
    description: 'Every site plan, cheapest first.',
    resolve: (query, _root, _args, ctx) => ctx.db.sitePlan.findMany({ ...query, orderBy: [{ priceCents: 'asc' }, { id: 'asc' }] }),
  }),
  platformAuditEvents: t.prismaConnection({
    type: 'PlatformAuditEvent',
    cursor: 'id',
    description: 'Platform staff (platform.audit:read): the platform’s own audit log, newest first.',
    args: { action: t.arg.string() },
    resolve: async (query, _root, args, ctx) => {
      await requirePlatformPermission(ctx, 'platform.audit:read');
      return ctx.db.platformAuditEvent.findMany({ ...query, where: args.action ? { action: args.action } : {}, orderBy: { id: 'desc' } });
    },
  }),
}));

// ---------------------------------------------------------------------------------------------------------------
// Mutations (platform.fleet:write)

const clusterIdOf = (raw: unknown, field = 'clusterId') => uuidFromGlobalId('Cluster', String(raw), field);
const storageConfigIdOf = (raw: unknown) => uuidFromGlobalId('StorageConfig', String(raw), 'storageConfigId');
/** A server named by its Server id, or a database server by its DatabaseServer id (the same uuid). */
function serverIdOf(raw: unknown, field = 'serverId') {
  try {
    const { typename, id } = decodeGlobalID(String(raw));
    if ((typename === 'Server' || typename === 'DatabaseServer') && isUuid(id)) return id.toLowerCase();
  } catch {
    // reported below
  }
  throw badInput(field, `${field} is not a valid Server id`);
}

type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;
const ServerInputFields = (t: PothosSchemaTypes.InputFieldBuilder<Types, 'InputObject'>) => ({
  name: t.string({ required: true, description: 'Unique: 1–63 lowercase letters, digits and inner hyphens.' }),
  hostname: t.string({ required: true, description: 'A fully qualified domain name (db1.example.com).' }),
  ip: t.string({ required: true, description: 'Public IPv4 or IPv6 address.' }),
  privateIp: t.string({ description: 'Inside one of the cluster’s networks.' }),
  containerPrefix: t.string({ description: 'kebab-case ending in -c<N> (1–4 digits): `^[a-z][a-z0-9]*(-[a-z0-9]+)*-c[0-9]{1,4}$`, e.g. erp-saas-cloud-c16.' }),
  dockerSocket: t.string({ description: 'Absolute path, e.g. /var/run/docker.sock.' }),
});

const CreateClusterInput = builder.inputType('CreateClusterInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: 'Unique slug: lowercase letters, digits and inner hyphens.' }),
    title: t.string({ required: true }),
    region: t.string({ description: 'Default local.' }),
    enabled: t.boolean({ description: 'Default true.' }),
    networks: t.stringList({ required: true, description: 'Internal networks in CIDR notation (10.0.0.0/16, fd00::/8), at least one.' }),
  }),
});
const UpdateClusterInput = builder.inputType('UpdateClusterInput', {
  fields: (t) => ({
    clusterId: t.id({ required: true }),
    title: t.string(),
    region: t.string(),
    enabled: t.boolean(),
    networks: t.stringList({ description: 'Replaces the list; a network still holding a server’s private ip cannot go.' }),
  }),
});
const CreateServerInput = builder.inputType('CreateServerInput', {
  fields: (t) => ({
    clusterId: t.id({ required: true }),
    type: t.field({ type: ServerTypeEnum, required: true, description: 'PROXY or APP (a DATABASE server: createDatabaseServer).' }),
    ...ServerInputFields(t),
  }),
});
const UpdateServerInput = builder.inputType('UpdateServerInput', {
  description: 'Absent fields stay as they are; null clears privateIp, containerPrefix or dockerSocket.',
  fields: (t) => ({
    serverId: t.id({ required: true }),
    hostname: t.string(),
    ip: t.string(),
    privateIp: t.string(),
    containerPrefix: t.string(),
    dockerSocket: t.string(),
  }),
});
const CreateDatabaseServerInput = builder.inputType('CreateDatabaseServerInput', {
  fields: (t) => ({
    clusterId: t.id({ required: true }),
    ...ServerInputFields(t),
    host: t.string({ description: 'Where PostgreSQL listens (host name or IP); default: the hostname.' }),
    port: t.int({ description: 'Default 5432.' }),
    adminUser: t.string({ required: true, description: 'A login that may create roles and databases (SUPERUSER, or CREATEROLE and CREATEDB).' }),
    adminPassword: t.string({ required: true, description: 'Write-only: sealed at rest, never returned.' }),
    sitesDatabase: t.string({ description: 'Default tenantplane_sites; created by the check when missing.' }),
    sslMode: t.field({ type: SslModeEnum, description: 'Default DISABLE.' }),
    capacity: t.int({ description: 'Sites it takes; default 100.' }),
  }),
});
const UpdateDatabaseServerInput = builder.inputType('UpdateDatabaseServerInput', {
  description: 'A change of how to connect (or a new password) makes the server UNCHECKED: run checkDatabaseServer.',
  fields: (t) => ({
    serverId: t.id({ required: true, description: 'The Server or DatabaseServer id.' }),
    host: t.string(),
    port: t.int(),
    adminUser: t.string(),
    adminPassword: t.string({ description: 'Rotates the stored password (write-only).' }),
    sslMode: t.field({ type: SslModeEnum }),
    capacity: t.int(),
  }),
});
const CreateStorageConfigInput = builder.inputType('CreateStorageConfigInput', {
  fields: (t) => ({
    clusterId: t.id({ required: true, description: 'One storage configuration per cluster.' }),
    endpoint: t.string({ required: true, description: 'http(s) URL of the S3-compatible endpoint.' }),
    region: t.string({ description: 'Default us-east-1.' }),
    accessKeyId: t.string({ required: true }),
    secretAccessKey: t.string({ required: true, description: 'Write-only: sealed at rest, never returned.' }),
    defaultBucket: t.string({ required: true }),
  }),
});
const UpdateStorageConfigInput = builder.inputType('UpdateStorageConfigInput', {
  fields: (t) => ({
    storageConfigId: t.id({ required: true }),
    endpoint: t.string(),
    region: t.string(),
    accessKeyId: t.string(),
    secretAccessKey: t.string({ description: 'Rotates the stored key (write-only).' }),
    defaultBucket: t.string(),
  }),
});

/** Input fields minus the ids (decoded separately, each reported on its own field). */
const without = <T extends Record<string, unknown>, K extends keyof T>(o: T, ...keys: K[]) => {
  const copy: Record<string, unknown> = { ...o };
  for (const k of keys) delete copy[k as string];
  return copy as Omit<T, K>;
};
/** GraphQL absent and null for "not given", where null means nothing else (strings of an update that cannot be cleared). */
const given = (o: Record<string, unknown>, clearable: string[] = []) =>
  Object.fromEntries(Object.entries(o).filter(([k, x]) => x !== undefined && (x !== null || clearable.includes(k))));

const WRITE = { permission: 'platform.fleet:write' } as const;

builder.mutationFields((t) => ({
  createCluster: t.prismaField({
    type: 'Cluster',
    extensions: WRITE,
    description: 'Platform staff: a new cluster with its internal networks. Audited in the platform log.',
    args: { input: t.arg({ type: CreateClusterInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const id = await fleet.createCluster(ctx, input);
      return ctx.db.cluster.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  updateCluster: t.prismaField({
    type: 'Cluster',
    extensions: WRITE,
    description: 'Platform staff: title, region, enabled (not for the default cluster), networks (the whole list).',
    args: { input: t.arg({ type: UpdateClusterInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const id = clusterIdOf(input.clusterId);
      await fleet.updateCluster(ctx, id, given(without(input, 'clusterId')));
      return ctx.db.cluster.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  createServer: t.prismaField({
    type: 'Server',
    extensions: WRITE,
    description: 'Platform staff: a PROXY or APP server, PENDING until activateServer.',
    args: { input: t.arg({ type: CreateServerInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const id = await fleet.createServer(ctx, clusterIdOf(input.clusterId), given(without(input, 'clusterId')));
      return ctx.db.server.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  updateServer: t.prismaField({
    type: 'Server',
    extensions: WRITE,
    args: { input: t.arg({ type: UpdateServerInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const id = serverIdOf(input.serverId);
      await fleet.updateServer(ctx, id, given(without(input, 'serverId'), ['privateIp', 'containerPrefix', 'dockerSocket']));
      return ctx.db.server.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  setServerMaintenance: t.prismaField({
    type: 'Server',
    extensions: WRITE,
    description: 'Platform staff: ACTIVE → MAINTENANCE (true: it takes no new sites) and back (false). A PENDING server is refused.',
    args: { serverId: t.arg.id({ required: true }), maintenance: t.arg.boolean({ required: true }) },
    resolve: async (query, _root, args, ctx) => {
      const id = serverIdOf(args.serverId);
      await fleet.setServerMaintenance(ctx, id, args.maintenance);
      return ctx.db.server.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  activateServer: t.prismaField({
    type: 'Server',
    extensions: WRITE,
    description:
      'Platform staff: asks a worker to activate a PENDING server — a database server once its check passes (database.checkStatus shows CHECKING, then PASSED or FAILED), a proxy or app server at once. Re-query the server for the outcome.',
    args: { serverId: t.arg.id({ required: true }) },
    resolve: async (query, _root, args, ctx) => {
      const id = serverIdOf(args.serverId);
      await fleet.activateServer(ctx, id);
      return ctx.db.server.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  createDatabaseServer: t.prismaField({
    type: 'DatabaseServer',
    extensions: WRITE,
    description: 'Platform staff: a DATABASE server and its PostgreSQL connection settings, PENDING and UNCHECKED until activateServer.',
    args: { input: t.arg({ type: CreateDatabaseServerInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const id = await fleet.createDatabaseServer(ctx, clusterIdOf(input.clusterId), given(without(input, 'clusterId')));
      return ctx.db.databaseServer.findUniqueOrThrow({ ...query, where: { serverId: id } });
    },
  }),
  updateDatabaseServer: t.prismaField({
    type: 'DatabaseServer',
    extensions: WRITE,
    args: { input: t.arg({ type: UpdateDatabaseServerInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const id = serverIdOf(input.serverId);
      await fleet.updateDatabaseServer(ctx, id, given(without(input, 'serverId')));
      return ctx.db.databaseServer.findUniqueOrThrow({ ...query, where: { serverId: id } });
    },
  }),
  checkDatabaseServer: t.prismaField({
    type: 'DatabaseServer',
    extensions: WRITE,
    description: 'Platform staff: checks the database server again (CHECKING, then PASSED or FAILED); a PENDING one becomes ACTIVE when it passes.',
    args: { serverId: t.arg.id({ required: true }) },
    resolve: async (query, _root, args, ctx) => {
      const id = serverIdOf(args.serverId);
      await fleet.checkDatabaseServer(ctx, id);
      return ctx.db.databaseServer.findUniqueOrThrow({ ...query, where: { serverId: id } });
    },
  }),
  createStorageConfig: t.prismaField({
    type: 'StorageConfig',
    extensions: WRITE,
    description: 'Platform staff: the storage of a cluster that has none (UNCHECKED until checkStorageConfig).',
    args: { input: t.arg({ type: CreateStorageConfigInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const id = await fleet.createStorageConfig(ctx, clusterIdOf(input.clusterId), given(without(input, 'clusterId')));
      return ctx.db.storageConfig.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  updateStorageConfig: t.prismaField({
    type: 'StorageConfig',
    extensions: WRITE,
    description: 'Platform staff: changes a storage configuration (not the managed one), which becomes UNCHECKED.',
    args: { input: t.arg({ type: UpdateStorageConfigInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const id = storageConfigIdOf(input.storageConfigId);
      await fleet.updateStorageConfig(ctx, id, given(without(input, 'storageConfigId')));
      return ctx.db.storageConfig.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  checkStorageConfig: t.prismaField({
    type: 'StorageConfig',
    extensions: WRITE,
    description: 'Platform staff: a worker writes, reads back and deletes a probe object in the default bucket (CHECKING, then PASSED or FAILED).',
    args: { storageConfigId: t.arg.id({ required: true }) },
    resolve: async (query, _root, args, ctx) => {
      const id = storageConfigIdOf(args.storageConfigId);
      await fleet.checkStorageConfig(ctx, id);
      return ctx.db.storageConfig.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
}));
