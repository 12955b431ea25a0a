import type { Context } from '../../graphql/context.ts';
import { forbidden, notFound, unauthenticated } from '../../graphql/errors.ts';
import type { TenantRole } from '../../db/generated/prisma/enums.ts';

const RANK: Record<TenantRole, number> = { VIEWER: 1, MEMBER: 2, ADMIN: 3, OWNER: 4 };

export function roleAtLeast(role: TenantRole, min: TenantRole) {
  return RANK[role] >= RANK[min];
}

/** Owners manage every role; admins manage members and viewers (mirrors app.can_manage_role in SQL). */
export function canManageRole(actor: TenantRole, target: TenantRole) {
  return actor === 'OWNER' || (actor === 'ADMIN' && RANK[target] <= RANK.MEMBER);
}

export function requireUser(ctx: Context): string {
  if (!ctx.userId) throw unauthenticated();
  return ctx.userId;
}

/**
 * The caller's role in a tenant, read through the same SQL helper the policies use. Not a member (or another
 * tenant's id) → NOT_FOUND, exactly like a missing tenant; a lower role → FORBIDDEN. RLS still guards every write.
 */
export async function requireTenantRole(ctx: Context, tenantId: string, min: TenantRole): Promise<TenantRole> {
  requireUser(ctx);
  const rows = await ctx.db.$queryRaw<{ role: TenantRole | null }[]>`select app.tenant_role(${tenantId}::uuid)::text as role`;
  const role = rows[0]?.role;
  if (!role) throw notFound('tenant');
  if (!roleAtLeast(role, min)) throw forbidden(`this needs the ${min} role or higher in this tenant (you are ${role})`);
  return role;
}
