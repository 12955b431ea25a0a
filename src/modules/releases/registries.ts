import crypto from 'node:crypto';
import { z } from 'zod';
import type { Context } from '../../graphql/context.ts';
import { badInput, conflict, notFound, translateDatabaseError } from '../../graphql/errors.ts';
import { parseInput } from '../../graphql/validate.ts';
import { maintenanceQueue } from '../../jobs/queue.ts';
import type { WorkerServices } from '../../services.ts';
import { getSecret, putFleetSecret } from '../../secrets/store.ts';
import { requirePlatformPermission } from '../access/permissions.ts';
import { platformAudited, recordPlatformAudit } from '../audit/service.ts';
import { RefusedJob } from '../jobs/run.ts';
import { reason } from '../fleet/checks.ts';
import { checkRegistry, type RegistryAccess } from './registry.ts';

/**
 * Local registries (issue 11 §2, seed 001 Local Registry): one OCI registry per cluster, a platform row kept by
 * staff. Its password is sealed (fleet secret registry-password) and write-only; the check is a fleet check job that
 * logs in to the registry's /v2/ and records PASSED, or FAILED with the registry's refusal in words.
 */
const WRITE = 'platform.fleet:write' as const;

const url = z
  .string()
  .trim()
  .transform((s) => s.replace(/\/+$/, ''))
  .refine((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password && (u.pathname === '/' || u.pathname === '') && !u.search && !u.hash;
    } catch {
      return false;
    }
  }, 'the registry is an http(s) URL of a host and port only, e.g. https://registry.internal:5000');
const namespace = z
  .string()
  .trim()
  .regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, 'a namespace is lowercase letters and digits, with inner . _ or -')
  .max(64);
const username = z.string().min(1).max(256);
const password = z.string().min(1, 'the password is required').max(1024);

const CreateRegistryInput = z.object({ url, namespace, username, password });
const UpdateRegistryInput = z.object({ url: url.optional(), namespace: namespace.optional(), username: username.optional(), password: password.optional() });

export function createRegistry(ctx: Context, clusterId: string, raw: unknown) {
  return platformAudited(ctx, { action: 'createRegistry', targetType: 'Registry' }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const input = parseInput(CreateRegistryInput, raw);
    const cluster = await ctx.db.cluster.findUnique({ where: { id: clusterId }, select: { id: true } });
    if (!cluster) throw badInput('clusterId', 'no such cluster');
    const id = crypto.randomUUID();
    await ctx.db.$executeRaw`
      insert into app_public.registries (id, cluster_id, url, namespace, username)
      values (${id}::uuid, ${clusterId}::uuid, ${input.url}, ${input.namespace}, ${input.username})`.catch((e) =>
      translateDatabaseError(e, { field: 'input', uniqueViolation: conflict('this cluster already has a registry: update it (updateRegistry)', 'clusterId') }),
    );
    await putFleetSecret(ctx.db, ctx.services.secrets, 'registry-password', id, input.password);
    await recordPlatformAudit(ctx, { action: 'createRegistry', targetType: 'Registry', targetId: id, details: { clusterId, url: input.url, namespace: input.namespace, username: input.username } });
    return id;
  });
}

export function updateRegistry(ctx: Context, id: string, raw: unknown) {
  return platformAudited(ctx, { action: 'updateRegistry', targetType: 'Registry', targetId: id }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const { password: newPassword, ...data } = parseInput(UpdateRegistryInput, raw);
    if (!(await ctx.db.registry.findUnique({ where: { id }, select: { id: true } }))) throw notFound('registry');
    await ctx.db.registry
      .updateMany({ where: { id }, data: { ...data, checkStatus: 'UNCHECKED', checkError: null, updatedAt: new Date() } })
      .catch((e) => translateDatabaseError(e, { field: 'registryId' }));
    if (newPassword !== undefined) await putFleetSecret(ctx.db, ctx.services.secrets, 'registry-password', id, newPassword);
    await recordPlatformAudit(ctx, { action: 'updateRegistry', targetType: 'Registry', targetId: id, details: { ...data, passwordRotated: newPassword !== undefined } });
    return id;
  });
}

export function requestRegistryCheck(ctx: Context, id: string) {
  return platformAudited(ctx, { action: 'checkRegistry', targetType: 'Registry', targetId: id }, async () => {
    await requirePlatformPermission(ctx, WRITE);
    const [row] = await ctx.db
      .$queryRaw<{ job: string }[]>`select app.request_fleet_check('registry', ${id}::uuid)::text as job`
      .catch((e) => translateDatabaseError(e, { field: 'registryId' }));
    await recordPlatformAudit(ctx, { action: 'checkRegistry', targetType: 'Registry', targetId: id, details: { job: row!.job } });
    return id;
  });
}

export interface ClusterRegistry extends RegistryAccess {
  id: string;
  namespace: string;
}

/** The registry of a cluster with its opened password, for workers only; a readable error when there is none. */
export async function clusterRegistry(services: WorkerServices, clusterId: string): Promise<ClusterRegistry> {
  const { rows } = await services.ownerPool.query<{ id: string; url: string; namespace: string; username: string; cluster: string }>(
    `select r.id::text, r.url, r.namespace, r.username, c.name as cluster
       from app_public.clusters c left join app_public.registries r on r.cluster_id = c.id where c.id = $1`,
    [clusterId],
  );
  const row = rows[0];
  if (!row?.id) throw new Error(`cluster ${row?.cluster ?? clusterId} has no registry: platform staff add one (createRegistry)`);
  const secret = await getSecret(services.ownerPool, services.secrets, 'registry-password', row.id);
  if (secret === null) throw new Error(`the registry of cluster ${row.cluster} has no password stored: set one (updateRegistry)`);
  return { id: row.id, url: row.url, namespace: row.namespace, username: row.username, password: secret };
}

/** `registry-check`: logs in to the registry's /v2/ with its stored credentials. */
export const registryCheckQueue = maintenanceQueue({
  name: 'registry-check',
  retryLimit: 1,
  retryDelay: 5,
  retryBackoff: false,
  expireInSeconds: 120,
  async run(services, data, job) {
    const { rows } = await services.ownerPool.query<{ id: string; url: string; username: string }>(`select id::text, url, username from app_public.registries where id = $1`, [data.registryId]);
    const row = rows[0];
    if (!row) throw new RefusedJob('no such registry');
    let error: string | null = null;
    try {
      const secret = await getSecret(services.ownerPool, services.secrets, 'registry-password', row.id);
      if (secret === null) error = 'no password is stored for this registry: set one with updateRegistry';
      else await checkRegistry({ url: row.url, username: row.username, password: secret });
    } catch (e) {
      error = reason(e, row.url);
    }
    // Recorded only if the registry was not changed meanwhile (a change makes it UNCHECKED, to be checked again).
    await services.ownerPool.query(
      `update app_public.registries set check_status = $2, check_error = $3, checked_at = now(), updated_at = now() where id = $1 and url = $4 and username = $5`,
      [row.id, error ? 'FAILED' : 'PASSED', error, row.url, row.username],
    );
    job.log.info({ registryId: row.id, passed: !error, error }, 'registry checked');
    return { passed: !error, error };
  },
});
