import type { Context } from '../../graphql/context.ts';
import { forbidden, notFound, translateDatabaseError } from '../../graphql/errors.ts';
import { requireUser } from '../tenants/access.ts';
import type { PlatformPermission, TenantPermission } from './catalogue.ts';

/** Remembers which permissions this request checked: a mutation must check the one it declares (graphql/permissions.ts). */
function noteChecked(ctx: Context, permission: string) {
  ctx.checkedPermissions?.add(permission);
}

async function tenantPermission(ctx: Context, tenantId: string, permission: TenantPermission) {
  requireUser(ctx);
  noteChecked(ctx, permission);
  const [row] = await ctx.db
    .$queryRaw<{ visible: boolean; allowed: boolean; suspended: boolean }[]>`
      select ${tenantId}::uuid = any (app.visible_tenant_ids()) as visible, app.has_permission(${tenantId}::uuid, ${permission}) as allowed,
             exists (select 1 from app_public.tenants t where t.id = ${tenantId}::uuid and t.status <> 'ACTIVE') as suspended`
    .catch((e) => translateDatabaseError(e));
  return { visible: Boolean(row?.visible), allowed: Boolean(row?.allowed), suspended: Boolean(row?.suspended) };
}

/**
 * Checks a tenant permission through app.has_permission, the decision every policy makes too. A tenant the caller
 * cannot see (or another tenant's id) → NOT_FOUND, exactly like a missing one; a visible tenant where the permission
 * is missing → FORBIDDEN naming it. RLS still guards every statement after this.
 */
export async function requirePermission(ctx: Context, tenantId: string, permission: TenantPermission): Promise<void> {
  const { visible, allowed, suspended } = await tenantPermission(ctx, tenantId, permission);
  if (!visible) throw notFound('tenant');
  if (!allowed && suspended) throw forbidden('this tenant is suspended: its data can be read and exported, not changed');
  if (!allowed) throw forbidden(`this needs the ${permission} permission in this tenant`);
}

/**
 * "Your own with `own`, anyone's with `any` as well": documents:write renames your documents, documents:manage
 * anyone's. `own` is what such a mutation declares, so it is always checked.
 */
export async function requireOwnOrAny(ctx: Context, tenantId: string, isOwn: boolean, own: TenantPermission, any: TenantPermission) {
  await requirePermission(ctx, tenantId, own);
  if (!isOwn) await requirePermission(ctx, tenantId, any);
}

/** Checks a platform permission (platform staff) through app.has_platform_permission. */
export async function requirePlatformPermission(ctx: Context, permission: PlatformPermission): Promise<void> {
  requireUser(ctx);
  noteChecked(ctx, permission);
  const [row] = await ctx.db.$queryRaw<{ allowed: boolean }[]>`select app.has_platform_permission(${permission}) as allowed`;
  if (!row?.allowed) throw forbidden(`platform staff only: this needs the ${permission} platform permission`);
}
