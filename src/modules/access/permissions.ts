import type { Context } from '../../graphql/context.ts';
import { forbidden, notFound } from '../../graphql/errors.ts';
import { requireUser } from '../tenants/access.ts';

/**
 * Checks a tenant permission through app.has_permission, the function the policies call. A tenant the caller
 * cannot see (or another tenant's id) → NOT_FOUND, exactly like a missing one; a visible tenant where the permission
 * is missing → FORBIDDEN naming it. RLS still guards every statement after this.
 */
export async function requirePermission(ctx: Context, tenantId: string, permission: string): Promise<void> {
  requireUser(ctx);
  const [row] = await ctx.db.$queryRaw<{ visible: boolean; allowed: boolean }[]>`
    select ${tenantId}::uuid = any (app.visible_tenant_ids()) as visible, app.has_permission(${tenantId}::uuid, ${permission}) as allowed`;
  if (!row?.visible) throw notFound('tenant');
  if (!row.allowed) throw forbidden(`this needs the ${permission} permission in this tenant`);
}

/** Checks a platform permission (platform staff) through app.has_platform_permission. */
export async function requirePlatformPermission(ctx: Context, permission: string): Promise<void> {
  requireUser(ctx);
  const [row] = await ctx.db.$queryRaw<{ allowed: boolean }[]>`select app.has_platform_permission(${permission}) as allowed`;
  if (!row?.allowed) throw forbidden(`platform staff only: this needs the ${permission} platform permission`);
}
