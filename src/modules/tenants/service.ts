import { z } from 'zod';
import type { Context } from '../../graphql/context.ts';
import { conflict, forbidden, notFound, quotaExceeded, translateDatabaseError } from '../../graphql/errors.ts';
import { displayName, email, parseInput, slug } from '../../graphql/validate.ts';
import { newOpaqueToken, sha256 } from '../../auth/tokens.ts';
import type { TenantRole } from '../../db/generated/prisma/enums.ts';
import { audited, recordAudit } from '../audit/service.ts';
import { requireUser } from './access.ts';
import { requirePermission } from '../access/permissions.ts';

const ROLES = ['OWNER', 'ADMIN', 'MEMBER', 'VIEWER'] as const;
const CreateTenantInput = z.object({ name: displayName('name', 100), slug });
const UpdateTenantInput = z.object({ name: displayName('name', 100) });
const InviteInput = z.object({ email, role: z.enum(ROLES, { message: 'unknown role' }) });

export async function createTenant(ctx: Context, raw: unknown): Promise<string> {
  requireUser(ctx);
  const input = parseInput(CreateTenantInput, raw);
  const rows = await ctx.db
    .$queryRaw<{ id: string }[]>`select app.create_tenant(${input.name}, ${input.slug}) as id`
    .catch((e) => translateDatabaseError(e, { uniqueViolation: conflict(`the slug "${input.slug}" is taken`, 'slug') }));
  const tenantId = rows[0]!.id;
  await recordAudit(ctx, { tenantId, action: 'createTenant', targetType: 'Tenant', targetId: tenantId, details: { slug: input.slug } });
  return tenantId;
}

export function updateTenant(ctx: Context, tenantId: string, raw: unknown): Promise<string> {
  return audited(ctx, { tenantId, action: 'updateTenant', targetType: 'Tenant', targetId: tenantId }, async () => {
    await requirePermission(ctx, tenantId, 'tenants:write');
    const input = parseInput(UpdateTenantInput, raw);
    const { count } = await ctx.db.tenant.updateMany({ where: { id: tenantId }, data: { name: input.name, updatedAt: new Date() } });
    if (count !== 1) throw notFound('tenant');
    await recordAudit(ctx, { tenantId, action: 'updateTenant', targetType: 'Tenant', targetId: tenantId, details: { name: input.name } });
    return tenantId;
  });
}

export function inviteMember(ctx: Context, tenantId: string, raw: { email: string; role: string }) {
  return audited(ctx, { tenantId, action: 'inviteMember', targetType: 'Invitation' }, async () => {
    await requirePermission(ctx, tenantId, 'invitations:write');
    const input = parseInput(InviteInput, raw);
    await requireManageRole(ctx, tenantId, input.role, `you cannot invite an ${input.role}`);
    const existing = await ctx.db.membership.findFirst({ where: { tenantId, user: { email: input.email } }, select: { id: true } });
    if (existing) throw conflict(`${input.email} is already a member of this tenant`, 'email');
    const now = new Date();
    // An expired, never-accepted invitation to the same address is replaced.
    await ctx.db.invitation.deleteMany({ where: { tenantId, email: input.email, acceptedAt: null, expiresAt: { lte: now } } });
    const [tenant, members, pending] = await Promise.all([
      ctx.db.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { plan: { select: { maxMembers: true, name: true } } } }),
      ctx.db.membership.count({ where: { tenantId } }),
      ctx.db.invitation.count({ where: { tenantId, acceptedAt: null, expiresAt: { gt: now } } }),
    ]);
    if (members + pending >= tenant.plan.maxMembers) {
      throw quotaExceeded(`the ${tenant.plan.name} plan allows ${tenant.plan.maxMembers} members (counting pending invitations)`);
    }
    const token = newOpaqueToken();
    const invitation = await ctx.db.invitation
      .create({
        data: {
          tenantId,
          email: input.email,
          role: input.role,
          tokenHash: sha256(token),
          invitedBy: ctx.userId,
          expiresAt: new Date(now.getTime() + ctx.services.config.auth.invitationTtl * 1000),
        },
      })
      .catch((e) => translateDatabaseError(e, { uniqueViolation: conflict(`${input.email} already has a pending invitation`, 'email') }));
    await recordAudit(ctx, { tenantId, action: 'inviteMember', targetType: 'Invitation', targetId: invitation.id, details: { email: input.email, role: input.role } });
    return { ...invitation, token };
  });
}

export async function acceptInvitation(ctx: Context, token: string) {
  requireUser(ctx);
  const rows = await ctx.db
    .$queryRaw<{ id: string }[]>`select app.accept_invitation(${sha256(token)}) as id`
    .catch((e) => translateDatabaseError(e, { field: 'token' }));
  const membership = await ctx.db.membership.findFirstOrThrow({ where: { id: rows[0]!.id } });
  await recordAudit(ctx, { tenantId: membership.tenantId, action: 'acceptInvitation', targetType: 'Membership', targetId: membership.id, details: { role: membership.role } });
  return membership;
}

/**
 * Managing a built-in role through the SQL rule the policies apply (app.can_manage_role): OWNER and ADMIN need
 * members:admin, and nobody grants a role holding more than they do.
 */
async function requireManageRole(ctx: Context, tenantId: string, role: TenantRole, why: string) {
  const [row] = await ctx.db.$queryRaw<{ ok: boolean; missing: string[] }[]>`
    select app.can_manage_role(${tenantId}::uuid, ${role}::app_public.tenant_role) as ok,
           app.missing_permissions(${tenantId}::uuid, (select b.permissions from app_public.builtin_roles b where b.role = ${role}::app_public.tenant_role)) as missing`;
  if (row?.ok) return;
  const needs = role === 'OWNER' || role === 'ADMIN' ? 'members:admin' : (row?.missing ?? []).join(', ');
  throw forbidden(`${why}: that needs ${needs}`);
}

async function findMembership(ctx: Context, tenantId: string, userId: string) {
  const m = await ctx.db.membership.findUnique({ where: { tenantId_userId: { tenantId, userId } } });
  if (!m) throw notFound('member');
  return m;
}

export function changeMemberRole(ctx: Context, tenantId: string, userId: string, role: TenantRole) {
  return audited(ctx, { tenantId, action: 'changeMemberRole', targetType: 'User', targetId: userId, details: { role } }, async () => {
    await requirePermission(ctx, tenantId, 'members:write');
    const target = await findMembership(ctx, tenantId, userId);
    const why = `you cannot change an ${target.role} into an ${role}`;
    await requireManageRole(ctx, tenantId, target.role, why);
    await requireManageRole(ctx, tenantId, role, why);
    const updated = await ctx.db.membership
      .update({ where: { tenantId_id: { tenantId, id: target.id } }, data: { role, updatedAt: new Date() } })
      .catch((e) => translateDatabaseError(e));
    await recordAudit(ctx, { tenantId, action: 'changeMemberRole', targetType: 'User', targetId: userId, details: { from: target.role, to: role } });
    return updated;
  });
}

export function removeMember(ctx: Context, tenantId: string, userId: string) {
  return audited(ctx, { tenantId, action: 'removeMember', targetType: 'User', targetId: userId }, async () => {
    await requirePermission(ctx, tenantId, 'members:write');
    const target = await findMembership(ctx, tenantId, userId);
    await requireManageRole(ctx, tenantId, target.role, `you cannot remove an ${target.role}`);
    await recordAudit(ctx, { tenantId, action: 'removeMember', targetType: 'User', targetId: userId, details: { role: target.role } });
    await ctx.db.membership.delete({ where: { tenantId_id: { tenantId, id: target.id } } }).catch((e) => translateDatabaseError(e));
    return true;
  });
}

export function leaveTenant(ctx: Context, tenantId: string) {
  const userId = requireUser(ctx);
  return audited(ctx, { tenantId, action: 'leaveTenant', targetType: 'User', targetId: userId }, async () => {
    const own = await findMembership(ctx, tenantId, userId);
    // Written before the membership goes: afterwards the actor may no longer write this tenant's log.
    await recordAudit(ctx, { tenantId, action: 'leaveTenant', targetType: 'User', targetId: userId, details: { role: own.role } });
    await ctx.db.membership.delete({ where: { tenantId_id: { tenantId, id: own.id } } }).catch((e) => translateDatabaseError(e));
    return true;
  });
}
