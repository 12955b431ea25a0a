import { z } from 'zod';
import type { TenantPermission } from '../modules/access/catalogue.ts';

/**
 * Every queue of the deployment, named once with the shape of what it carries. Handlers (src/modules/*) bind to
 * these names and enqueueing is typed by them, so a queue name is never a loose string at a call site.
 *
 * Tenant queues are what a member may ask for: enqueued only through the SQL function app.enqueue_job (sql/0014),
 * tracked by a `jobs` row that holds their arguments, run as the member who asked, inside that tenant. Maintenance
 * queues are enqueued by the database (triggers on the rows whose removal they follow) or by cron, never by a
 * request; their handlers run as the owner role and check what they are told before acting.
 */
const uuid = z.uuid();

export const TENANT_QUEUES = {
  'document-process': { permissions: ['documents:write'], args: z.strictObject({ documentId: uuid }) },
  'site-provision': { permissions: ['sites:write', 'sites:operate'], args: z.strictObject({ siteId: uuid }) },
  'site-credentials': { permissions: ['sites:write'], args: z.strictObject({ siteId: uuid }) },
  'site-measure': { permissions: ['sites:operate'], args: z.strictObject({ siteId: uuid }) },
  'site-apply-plan': { permissions: ['sites:write'], args: z.strictObject({ siteId: uuid }) },
  /** The target home: a database server (the current one for a change of isolation only) and an isolation level. */
  'site-move': { permissions: ['sites:operate'], args: z.strictObject({ siteId: uuid, serverId: uuid, isolation: z.enum(['SCHEMA', 'DATABASE']) }) },
  'site-backup': { permissions: ['backups:write'], args: z.strictObject({ siteId: uuid, backupId: uuid }) },
  'site-restore': { permissions: ['sites:operate'], args: z.strictObject({ siteId: uuid, backupId: uuid, previousStatus: z.enum(['HEALTHY', 'SOFT_DELETED']) }) },
  'deploy-candidate-build': { permissions: ['sites:write'], args: z.strictObject({ candidateId: uuid }) },
  'bench-deploy': { permissions: ['sites:write'], args: z.strictObject({ benchId: uuid }) },
  /** `from`: the app's state before the change, where a failed change puts it back. */
  'site-app-change': {
    permissions: ['sites:write'],
    args: z.strictObject({ siteId: uuid, app: z.string().regex(/^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/), change: z.enum(['install', 'enable', 'disable', 'remove']), from: z.enum(['REGISTERED', 'ENABLED', 'DISABLED']) }),
  },
  /** The bench may be another tenant's (a public group's): its tenant travels with it. */
  'site-update': { permissions: ['sites:write'], args: z.strictObject({ siteId: uuid, benchTenantId: uuid, benchId: uuid, backupId: uuid }) },
  /** A module job (sql/0038): enqueued by app.enqueue_module_job only, which sets its module, priority and schedule. */
  'site-module-job': { permissions: ['sites:operate', 'sites:write'], args: z.strictObject({ siteId: uuid, app: z.string().regex(/^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/), job: z.string().regex(/^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/) }) },
  'tenant-export': { permissions: ['tenants:export'], args: z.strictObject({}) },
} as const satisfies Record<string, { permissions: readonly TenantPermission[]; args: z.ZodType<Record<string, string>> }>;

export const MAINTENANCE_QUEUES = {
  'storage-delete-object': z.strictObject({ tenantId: uuid, objectKey: z.string() }),
  'backup-delete-objects': z.strictObject({ tenantId: uuid, backupId: uuid, storageConfigId: uuid.optional() }),
  'backup-expire': z.object({}),
  'site-purge': z.object({}),
  'site-backup-schedule': z.object({}),
  'site-measure-all': z.object({}),
  'site-drop-old-copies': z.object({}),
  'site-module-jobs': z.object({}),
  'bench-archive': z.object({}),
  'upload-expire': z.object({}),
  'auth-event-expire': z.object({}),
  /** Cron sweeps every due tenant ({}); deleteTenant with no retention names its tenant. */
  'tenant-purge': z.object({ tenantId: uuid.optional() }),
  /** Fleet checks (src/modules/fleet/checks.ts), asked for by platform staff through app.request_fleet_check (sql/0027). */
  'database-server-check': z.strictObject({ serverId: uuid, requestedBy: uuid.optional(), requestId: z.string().optional() }),
  'storage-check': z.strictObject({ storageConfigId: uuid, requestedBy: uuid.optional(), requestId: z.string().optional() }),
  'registry-check': z.strictObject({ registryId: uuid, requestedBy: uuid.optional(), requestId: z.string().optional() }),
  'server-activate': z.strictObject({ serverId: uuid, requestedBy: uuid.optional(), requestId: z.string().optional() }),
} as const satisfies Record<string, z.ZodType<Record<string, unknown>>>;

export type TenantQueueName = keyof typeof TENANT_QUEUES;
export type MaintenanceQueueName = keyof typeof MAINTENANCE_QUEUES;
export type QueueName = TenantQueueName | MaintenanceQueueName;
export type TenantJobArgs<Q extends TenantQueueName> = z.infer<(typeof TENANT_QUEUES)[Q]['args']>;
export type MaintenancePayload<Q extends MaintenanceQueueName> = z.infer<(typeof MAINTENANCE_QUEUES)[Q]>;

/** What app.enqueue_job puts in every tenant job's pg-boss payload, next to the arguments. */
export interface TenantJobEnvelope {
  tenantId: string;
  userId: string;
  jobId: string;
  requestId: string;
}
