import { z } from 'zod';
import type { Context } from '../../graphql/context.ts';
import { badInput, translateDatabaseError } from '../../graphql/errors.ts';
import { parseInput } from '../../graphql/validate.ts';
import { requirePermission, requirePlatformPermission } from '../access/permissions.ts';
import { audited } from '../audit/service.ts';

/**
 * The tenant lifecycle (sql/0020): ACTIVE ⇄ SUSPENDED by platform staff, ACTIVE → DELETED by an owner, then the
 * tenant-purge job (./purge.ts). The decisions are the SQL functions' (app.suspend_tenant, app.reactivate_tenant,
 * app.delete_tenant check the permissions themselves); the checks here only answer first with the precise error.
 */

const SuspendInput = z.object({ reason: z.string().trim().min(1, 'give a reason').max(500, 'the reason is limited to 500 characters') });

export async function suspendTenant(ctx: Context, tenantId: string, raw: { reason: string }) {
  await requirePlatformPermission(ctx, 'platform.tenants:write');
  const input = parseInput(SuspendInput, raw);
  await ctx.db.$queryRaw`select app.suspend_tenant(${tenantId}::uuid, ${input.reason})`.catch((e) => translateDatabaseError(e, { field: 'tenantId' }));
  return tenantId;
}

export async function reactivateTenant(ctx: Context, tenantId: string) {
  await requirePlatformPermission(ctx, 'platform.tenants:write');
  await ctx.db.$queryRaw`select app.reactivate_tenant(${tenantId}::uuid)`.catch((e) => translateDatabaseError(e, { field: 'tenantId' }));
  return tenantId;
}

/** Platform staff: a DELETED tenant within its retention becomes ACTIVE again (app.restore_tenant decides). */
export async function restoreTenant(ctx: Context, tenantId: string) {
  await requirePlatformPermission(ctx, 'platform.tenants:write');
  await ctx.db.$queryRaw`select app.restore_tenant(${tenantId}::uuid)`.catch((e) => translateDatabaseError(e, { field: 'tenantId' }));
  return tenantId;
}

export interface TenantDeletion {
  tenantId: string;
  slug: string;
  deletedAt: Date;
  purgeAfter: Date;
}

/**
 * Soft delete by an owner: the slug typed again, and an export offered first — refused unless a tenant export of
 * the last 24 hours completed, or `skipExport` says the owner does not want one. Purged after TENANT_RETENTION_DAYS.
 */
export function deleteTenant(ctx: Context, tenantId: string, input: { confirmSlug: string; skipExport?: boolean | null }): Promise<TenantDeletion> {
  return audited(ctx, { tenantId, action: 'deleteTenant', targetType: 'Tenant', targetId: tenantId }, async () => {
    await requirePermission(ctx, tenantId, 'tenants:delete');
    const tenant = await ctx.db.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { slug: true } });
    if (input.confirmSlug !== tenant.slug) throw badInput('confirmSlug', `type the tenant's slug (${tenant.slug}) to confirm the deletion`);
    if (!input.skipExport) {
      const exported = await ctx.db.job.count({
        where: { tenantId, type: 'tenant-export', status: 'COMPLETED', completedAt: { gt: new Date(Date.now() - 86400_000) } },
      });
      if (!exported) {
        throw badInput('skipExport', 'export the tenant first (exportTenant, then wait for the job to complete: its archive is deleted with the tenant), or pass skipExport: true');
      }
    }
    const rows = await ctx.db
      .$queryRaw<{ purge_after: Date }[]>`select app.delete_tenant(${tenantId}::uuid, ${input.confirmSlug}, ${input.skipExport ?? false}, ${ctx.services.config.tenants.retentionDays}::int) as purge_after`
      .catch((e) => translateDatabaseError(e, { field: 'confirmSlug' }));
    return { tenantId, slug: tenant.slug, deletedAt: new Date(), purgeAfter: rows[0]!.purge_after };
  });
}
