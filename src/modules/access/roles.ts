import { z } from 'zod';
import type { Context } from '../../graphql/context.ts';
import { badInput, conflict, forbidden, notFound, translateDatabaseError } from '../../graphql/errors.ts';
import { parseInput } from '../../graphql/validate.ts';
import { audited, recordAudit } from '../audit/service.ts';
import { requirePermission } from './permissions.ts';

const name = z
  .string()
  .trim()
  .regex(/^[a-z][a-z0-9-]{1,38}[a-z0-9]$/, 'a role name is 3–40 lowercase letters, digits and dashes, starting with a letter');
const description = z.string().trim().max(500, 'at most 500 characters');
const permissions = z.array(z.string().trim()).min(1, 'a role needs at least one permission').max(64, 'at most 64 permissions');

const CreateRoleInput = z
  .object({ name, description: description.default(''), permissions: permissions.optional(), template: z.string().optional() })
  .refine((v) => Boolean(v.permissions) !== Boolean(v.template), { message: 'give either permissions or a template', path: ['permissions'] });
const UpdateRoleInput = z.object({ name: name.optional(), description: description.optional(), permissions: permissions.optional() });

/** Checks patterns against the catalogue (app.check_permission_patterns): unknown strings are refused, named. */
async function normalise(ctx: Context, patterns: string[]): Promise<string[]> {
  const [row] = await ctx.db
    .$queryRaw<{ p: string[] }[]>`select app.check_permission_patterns(${patterns}::text[], 'tenant') as p`
    .catch((e) => translateDatabaseError(e, { field: 'permissions' }));
  return row!.p;
}

/** Nobody grants more than they hold: the catalogue strings of `patterns` the caller lacks in the tenant. */
async function requireHoldsAll(ctx: Context, tenantId: string, patterns: string[], what: string) {
  const [row] = await ctx.db.$queryRaw<{ missing: string[] }[]>`select app.missing_permissions(${tenantId}::uuid, ${patterns}::text[]) as missing`;
  if (row!.missing.length) throw forbidden(`you cannot ${what}: it grants ${row!.missing.join(', ')}, which you do not hold`);
}

async function findRole(ctx: Context, tenantId: string, roleId: string) {
  const role = await ctx.db.role.findUnique({ where: { tenantId_id: { tenantId, id: roleId } } });
  if (!role) throw notFound('role');
  return role;
}

const nameTaken = (n: string) => conflict(`a role named "${n}" already exists in this tenant`, 'name');

export function createRole(ctx: Context, tenantId: string, raw: unknown) {
  return audited(ctx, { tenantId, action: 'createRole', targetType: 'Role' }, async () => {
    await requirePermission(ctx, tenantId, 'roles:write');
    const input = parseInput(CreateRoleInput, raw);
    let patterns = input.permissions;
    if (input.template) {
      const template = await ctx.db.roleTemplate.findUnique({ where: { name: input.template } });
      if (!template) throw badInput('template', `no role template named "${input.template}" (see roleTemplates)`);
      patterns = template.permissions;
    }
    const granted = await normalise(ctx, patterns!);
    await requireHoldsAll(ctx, tenantId, granted, `create the role ${input.name}`);
    const role = await ctx.db.role
      .create({ data: { tenantId, name: input.name, description: input.description, permissions: granted, createdBy: ctx.userId } })
      .catch((e) => translateDatabaseError(e, { uniqueViolation: nameTaken(input.name), field: 'permissions' }));
    await recordAudit(ctx, { tenantId, action: 'createRole', targetType: 'Role', targetId: role.id, details: { name: role.name, permissions: granted } });
    return role;
  });
}

export function updateRole(ctx: Context, tenantId: string, roleId: string, raw: unknown) {
  return audited(ctx, { tenantId, action: 'updateRole', targetType: 'Role', targetId: roleId }, async () => {
    await requirePermission(ctx, tenantId, 'roles:write');
    const input = parseInput(UpdateRoleInput, raw);
    const role = await findRole(ctx, tenantId, roleId);
    await requireHoldsAll(ctx, tenantId, role.permissions, `change the role ${role.name}`);
    const granted = input.permissions ? await normalise(ctx, input.permissions) : role.permissions;
    await requireHoldsAll(ctx, tenantId, granted, `give the role ${role.name} these permissions`);
    const updated = await ctx.db.role
      .update({
        where: { tenantId_id: { tenantId, id: roleId } },
        data: { name: input.name, description: input.description, permissions: granted, updatedAt: new Date() },
      })
      .catch((e) => translateDatabaseError(e, { uniqueViolation: nameTaken(input.name ?? role.name), field: 'permissions' }));
    await recordAudit(ctx, {
      tenantId, action: 'updateRole', targetType: 'Role', targetId: roleId,
      details: { from: { name: role.name, permissions: role.permissions }, to: { name: updated.name, permissions: updated.permissions } },
    });
    return updated;
  });
}

export function deleteRole(ctx: Context, tenantId: string, roleId: string) {
  return audited(ctx, { tenantId, action: 'deleteRole', targetType: 'Role', targetId: roleId }, async () => {
    await requirePermission(ctx, tenantId, 'roles:write');
    const role = await findRole(ctx, tenantId, roleId);
    await requireHoldsAll(ctx, tenantId, role.permissions, `delete the role ${role.name}`);
    await recordAudit(ctx, { tenantId, action: 'deleteRole', targetType: 'Role', targetId: roleId, details: { name: role.name } });
    await ctx.db.role.delete({ where: { tenantId_id: { tenantId, id: roleId } } }).catch((e) => translateDatabaseError(e));
    return true;
  });
}

async function findMember(ctx: Context, tenantId: string, userId: string) {
  const m = await ctx.db.membership.findUnique({ where: { tenantId_userId: { tenantId, userId } }, select: { id: true } });
  if (!m) throw notFound('member');
}

export function assignRole(ctx: Context, tenantId: string, userId: string, roleId: string) {
  return audited(ctx, { tenantId, action: 'assignRole', targetType: 'User', targetId: userId, details: { roleId } }, async () => {
    await requirePermission(ctx, tenantId, 'members:write');
    await findMember(ctx, tenantId, userId);
    const role = await findRole(ctx, tenantId, roleId);
    await requireHoldsAll(ctx, tenantId, role.permissions, `assign the role ${role.name}`);
    const assignment = await ctx.db.memberRole
      .create({ data: { tenantId, userId, roleId, assignedBy: ctx.userId } })
      .catch((e) => translateDatabaseError(e, { uniqueViolation: conflict(`this member already holds ${role.name}`, 'roleId') }));
    await recordAudit(ctx, { tenantId, action: 'assignRole', targetType: 'User', targetId: userId, details: { role: role.name } });
    return assignment;
  });
}

export function unassignRole(ctx: Context, tenantId: string, userId: string, roleId: string) {
  return audited(ctx, { tenantId, action: 'unassignRole', targetType: 'User', targetId: userId, details: { roleId } }, async () => {
    await requirePermission(ctx, tenantId, 'members:write');
    const role = await findRole(ctx, tenantId, roleId);
    await requireHoldsAll(ctx, tenantId, role.permissions, `take the role ${role.name} away`);
    const { count } = await ctx.db.memberRole.deleteMany({ where: { tenantId, userId, roleId } });
    if (count !== 1) throw notFound('role assignment');
    await recordAudit(ctx, { tenantId, action: 'unassignRole', targetType: 'User', targetId: userId, details: { role: role.name } });
    return true;
  });
}
