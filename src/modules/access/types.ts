import { builder } from '../../graphql/builder.ts';
import { tenantScopedIdFromGlobalId, uuidFromGlobalId } from '../../graphql/ids.ts';
import { TenantRoleEnum } from '../tenants/types.ts';
import * as roles from './roles.ts';

interface PermissionRow { id: string; scope: string; description: string }
interface BuiltInRoleRow { role: string; description: string; permissions: string[] }
interface TemplateRow { name: string; description: string; permissions: string[] }
interface PlatformRoleRow { role: string; description: string; permissions: string[]; supportPermissions: string[] }

const PermissionRef = builder.objectRef<PermissionRow>('Permission').implement({
  description: 'One entry of the permission catalogue (docs/permissions.md).',
  fields: (t) => ({
    id: t.exposeString('id', { description: '`resource:action`, e.g. `sites:write`; `platform.*` strings belong to platform roles.' }),
    scope: t.exposeString('scope', { description: '`tenant` or `platform`.' }),
    description: t.exposeString('description'),
  }),
});

const BuiltInRoleRef = builder.objectRef<BuiltInRoleRow>('BuiltInRole').implement({
  description: 'One of the four roles every membership holds exactly one of, as a permission set.',
  fields: (t) => ({
    role: t.field({ type: TenantRoleEnum, resolve: (r) => r.role as never }),
    description: t.exposeString('description'),
    permissions: t.exposeStringList('permissions', { description: 'Patterns: catalogue strings and wildcards (`*:*`, `sites:*`, `*:read`).' }),
  }),
});

const RoleTemplateRef = builder.objectRef<TemplateRow>('RoleTemplate').implement({
  description: 'A starting point for a custom role (seed 004’s admin, operator and viewer).',
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    permissions: t.exposeStringList('permissions'),
  }),
});

const PlatformRoleRef = builder.objectRef<PlatformRoleRow>('PlatformRoleDefinition').implement({
  description: 'A platform role as permission sets.',
  fields: (t) => ({
    role: t.exposeString('role'),
    description: t.exposeString('description'),
    permissions: t.exposeStringList('permissions', { description: 'Platform permissions (`platform.*`).' }),
    supportPermissions: t.exposeStringList('supportPermissions', {
      description: 'Tenant permissions held in the one tenant a request names with X-Tenant, each such request recorded in that tenant’s audit log.',
    }),
  }),
});

builder.prismaNode('Role', {
  id: { field: 'tenantId_id' },
  nullable: true,
  description: 'A custom role of one tenant: a named permission set that members hold besides their built-in role.',
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    permissions: t.exposeStringList('permissions', { description: 'Patterns as given (normalised, sorted).' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    createdBy: t.relation('creator', { nullable: true }),
    holders: t.relation('holders', { query: () => ({ orderBy: { assignedAt: 'asc' } }) }),
  }),
});

builder.prismaObject('MemberRole', {
  name: 'RoleAssignment',
  description: 'A custom role held by a member (seed 004’s user_roles).',
  fields: (t) => ({
    role: t.relation('role'),
    member: t.relation('membership'),
    assignedBy: t.relation('assigner', { nullable: true }),
    assignedAt: t.expose('assignedAt', { type: 'DateTime' }),
  }),
});

builder.prismaObjectFields('Membership', (t) => ({
  customRoles: t.relation('customRoles', { description: 'Custom roles this member holds besides their built-in role.', query: () => ({ orderBy: { assignedAt: 'asc' } }) }),
}));

builder.prismaObjectFields('Tenant', (t) => ({
  roles: t.relation('roles', { description: 'The tenant’s custom roles, by name (needs roles:read; empty otherwise).', query: () => ({ orderBy: { name: 'asc' } }) }),
  viewerPermissions: t.stringList({
    description: 'Every catalogue permission you hold here, expanded from your roles (the same decision the policies make).',
    select: { id: true },
    resolve: async (tenant, _args, ctx) => {
      const [row] = await ctx.db.$queryRaw<{ p: string[] }[]>`select app.my_permissions(${tenant.id}::uuid) as p`;
      return row?.p ?? [];
    },
  }),
}));

builder.queryFields((t) => ({
  permissionCatalogue: t.field({
    type: [PermissionRef],
    description: 'Every permission string, tenant and platform.',
    resolve: (_root, _args, ctx) => ctx.db.permission.findMany({ orderBy: [{ scope: 'desc' }, { id: 'asc' }] }),
  }),
  builtInRoles: t.field({
    type: [BuiltInRoleRef],
    resolve: async (_root, _args, ctx) => (await ctx.db.builtinRole.findMany()).sort((a, b) => ORDER.indexOf(a.role) - ORDER.indexOf(b.role)),
  }),
  roleTemplates: t.field({ type: [RoleTemplateRef], resolve: (_root, _args, ctx) => ctx.db.roleTemplate.findMany({ orderBy: { name: 'asc' } }) }),
  platformRoles: t.field({ type: [PlatformRoleRef], resolve: (_root, _args, ctx) => ctx.db.platformRoleDefinition.findMany() }),
}));
const ORDER = ['OWNER', 'ADMIN', 'MEMBER', 'VIEWER'];

const CreateRoleInput = builder.inputType('CreateRoleInput', {
  fields: (t) => ({
    tenantId: t.id({ required: true }),
    name: t.string({ required: true, description: '3–40 lowercase letters, digits and dashes; unique in the tenant.' }),
    description: t.string(),
    permissions: t.stringList({ description: 'Catalogue strings and wildcards. Give these or a template.' }),
    template: t.string({ description: 'The name of a role template to copy the permissions of.' }),
  }),
});
const UpdateRoleInput = builder.inputType('UpdateRoleInput', {
  fields: (t) => ({ roleId: t.id({ required: true }), name: t.string(), description: t.string(), permissions: t.stringList() }),
});
const RoleAssignmentInput = builder.inputType('RoleAssignmentInput', {
  fields: (t) => ({ tenantId: t.id({ required: true }), userId: t.id({ required: true }), roleId: t.id({ required: true }) }),
});

/** GraphQL nulls are absent values here. */
const present = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined));
const tenantIdArg = (raw: unknown) => uuidFromGlobalId('Tenant', String(raw), 'tenantId');
const roleIdArg = (raw: unknown) => tenantScopedIdFromGlobalId('Role', String(raw), 'roleId');
const userIdArg = (raw: unknown) => uuidFromGlobalId('User', String(raw), 'userId');
/** A role id of another tenant than the one named is simply no role of this one (NOT_FOUND). */
const roleIdIn = (tenantId: string, raw: unknown) => {
  const key = roleIdArg(raw);
  return key.tenantId === tenantId ? key.id : '00000000-0000-0000-0000-000000000000';
};

builder.mutationFields((t) => ({
  createRole: t.prismaField({
    type: 'Role',
    extensions: { permission: 'roles:write' },
    description: 'Creates a custom role; you must hold every permission it grants.',
    args: { input: t.arg({ type: CreateRoleInput, required: true }) },
    resolve: (query, _root, { input }, ctx) => {
      const { tenantId, ...rest } = input;
      return roles.createRole(ctx, tenantIdArg(tenantId), present(rest));
    },
  }),
  updateRole: t.prismaField({
    type: 'Role',
    extensions: { permission: 'roles:write' },
    description: 'Renames a custom role or changes its permissions (never to more than you hold); holders get the change at once.',
    args: { input: t.arg({ type: UpdateRoleInput, required: true }) },
    resolve: (_query, _root, { input }, ctx) => {
      const { roleId, ...rest } = input;
      const key = roleIdArg(roleId);
      return roles.updateRole(ctx, key.tenantId, key.id, present(rest));
    },
  }),
  deleteRole: t.boolean({
    extensions: { permission: 'roles:write' },
    description: 'Deletes a custom role; its holders lose it.',
    args: { roleId: t.arg.id({ required: true }) },
    resolve: (_root, { roleId }, ctx) => {
      const key = roleIdArg(roleId);
      return roles.deleteRole(ctx, key.tenantId, key.id);
    },
  }),
  assignRole: t.prismaField({
    type: 'MemberRole',
    extensions: { permission: 'members:write' },
    description: 'Gives a member a custom role (you must hold everything it grants).',
    args: { input: t.arg({ type: RoleAssignmentInput, required: true }) },
    resolve: (_query, _root, { input }, ctx) => {
      const tenantId = tenantIdArg(input.tenantId);
      return roles.assignRole(ctx, tenantId, userIdArg(input.userId), roleIdIn(tenantId, input.roleId));
    },
  }),
  unassignRole: t.boolean({
    extensions: { permission: 'members:write' },
    args: { input: t.arg({ type: RoleAssignmentInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const tenantId = tenantIdArg(input.tenantId);
      return roles.unassignRole(ctx, tenantId, userIdArg(input.userId), roleIdIn(tenantId, input.roleId));
    },
  }),
}));
