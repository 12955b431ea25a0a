import { builder } from '../../graphql/builder.ts';
import { uuidFromGlobalId } from '../../graphql/ids.ts';
import * as tenants from './service.ts';
import { requireUser } from './access.ts';
import { requirePlatformPermission } from '../access/permissions.ts';

export const TenantRoleEnum = builder.enumType('TenantRole', {
  description: 'OWNER > ADMIN > MEMBER > VIEWER. Only owners grant or revoke OWNER; admins manage members and viewers; viewers read only.',
  values: ['OWNER', 'ADMIN', 'MEMBER', 'VIEWER'] as const,
});
const TenantStatusEnum = builder.enumType('TenantStatus', {
  description: 'ACTIVE; SUSPENDED by platform staff (read-only: members sign in, read and export); DELETED by an owner (purged after retention).',
  values: ['ACTIVE', 'SUSPENDED', 'DELETED'] as const,
});

builder.prismaObject('Plan', {
  fields: (t) => ({
    name: t.exposeString('name'),
    maxMembers: t.exposeInt('maxMembers'),
    maxStorageBytes: t.expose('maxStorageBytes', { type: 'BigInt' }),
    maxSites: t.exposeInt('maxSites'),
  }),
});

builder.prismaNode('Tenant', {
  id: { field: 'id' },
  nullable: true,
  fields: (t) => ({
    slug: t.exposeString('slug'),
    name: t.exposeString('name'),
    status: t.expose('status', { type: TenantStatusEnum }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    createdBy: t.relation('creator', { nullable: true, description: 'The user who created the tenant; null once that user is gone.' }),
    suspendedAt: t.expose('suspendedAt', { type: 'DateTime', nullable: true }),
    suspensionReason: t.exposeString('suspensionReason', { nullable: true, description: 'Why platform staff suspended the tenant.' }),
    deletedAt: t.expose('deletedAt', { type: 'DateTime', nullable: true }),
    purgeAfter: t.expose('purgeAfter', { type: 'DateTime', nullable: true, description: 'A deleted tenant is purged for good after this.' }),
    plan: t.relation('plan'),
    viewerRole: t.field({
      type: TenantRoleEnum,
      nullable: true,
      description: 'Your role here; null for platform staff looking in from outside.',
      select: (_args, ctx) => ({ memberships: { where: { userId: ctx.userId ?? undefined }, select: { role: true }, take: 1 } }),
      resolve: (tenant) => (tenant.memberships[0]?.role ?? null) as never,
    }),
    members: t.relatedConnection('memberships', {
      totalCount: true,
      cursor: 'tenantId_id',
      query: () => ({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
    }),
    invitations: t.relatedConnection('invitations', {
      totalCount: true,
      description: 'Pending and past invitations (admins and owners only; empty for others).',
      cursor: 'tenantId_id',
      query: () => ({ orderBy: [{ createdAt: 'desc' }, { id: 'asc' }] }),
    }),
    auditLog: t.relatedConnection('auditEvents', {
      totalCount: true,
      description: 'Newest first. Visible to admins and owners; empty for others.',
      cursor: 'tenantId_id',
      query: () => ({ orderBy: { id: 'desc' } }),
    }),
  }),
});

builder.prismaNode('Membership', {
  id: { field: 'tenantId_id' },
  nullable: true,
  fields: (t) => ({
    role: t.expose('role', { type: TenantRoleEnum }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    user: t.relation('user'),
    tenant: t.relation('tenant'),
  }),
});

builder.prismaNode('Invitation', {
  id: { field: 'tenantId_id' },
  nullable: true,
  fields: (t) => ({
    email: t.exposeString('email'),
    role: t.expose('role', { type: TenantRoleEnum }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
    acceptedAt: t.expose('acceptedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    tenant: t.relation('tenant'),
    invitedBy: t.relation('inviter', { nullable: true }),
    token: t.string({
      nullable: true,
      description: 'The one-time token to give the invitee. Returned by inviteMember only; never readable again.',
      resolve: (inv) => (inv as { token?: string }).token ?? null,
    }),
  }),
});

builder.queryFields((t) => ({
  tenants: t.prismaConnection({
    type: 'Tenant',
    cursor: 'slug',
    description: 'Tenants you are a member of (narrowed by X-Tenant when sent), by slug.',
    resolve: (query, _root, _args, ctx) =>
      ctx.db.tenant.findMany({ ...query, where: { memberships: { some: { userId: requireUser(ctx) } } } }),
  }),
  tenant: t.prismaField({
    type: 'Tenant',
    nullable: true,
    args: { slug: t.arg.string({ required: true }) },
    resolve: (query, _root, { slug }, ctx) => ctx.db.tenant.findUnique({ ...query, where: { slug } }),
  }),
  platformTenants: t.prismaConnection({
    type: 'Tenant',
    cursor: 'slug',
    description: 'Every tenant, for platform staff. Visibility comes from the tenants policy, not from bypassing RLS.',
    resolve: async (query, _root, _args, ctx) => {
      await requirePlatformPermission(ctx, 'platform.tenants:read');
      return ctx.db.tenant.findMany({ ...query });
    },
  }),
}));

const tenantIdArg = (raw: string) => uuidFromGlobalId('Tenant', raw, 'tenantId');
const userIdArg = (raw: string) => uuidFromGlobalId('User', raw, 'userId');

const CreateTenantInput = builder.inputType('CreateTenantInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    slug: t.string({ required: true, description: 'DNS-safe, 3–63 characters, unique, not reserved.' }),
  }),
});
const UpdateTenantInput = builder.inputType('UpdateTenantInput', {
  fields: (t) => ({ tenantId: t.id({ required: true }), name: t.string({ required: true }) }),
});
const InviteMemberInput = builder.inputType('InviteMemberInput', {
  fields: (t) => ({ tenantId: t.id({ required: true }), email: t.string({ required: true }), role: t.field({ type: TenantRoleEnum, required: true }) }),
});
const ChangeMemberRoleInput = builder.inputType('ChangeMemberRoleInput', {
  fields: (t) => ({ tenantId: t.id({ required: true }), userId: t.id({ required: true }), role: t.field({ type: TenantRoleEnum, required: true }) }),
});
const RemoveMemberInput = builder.inputType('RemoveMemberInput', {
  fields: (t) => ({ tenantId: t.id({ required: true }), userId: t.id({ required: true }) }),
});

builder.mutationFields((t) => ({
  createTenant: t.prismaField({
    extensions: { permission: 'self' },
    type: 'Tenant',
    description: 'Creates a tenant on the free plan; you become its OWNER.',
    args: { input: t.arg({ type: CreateTenantInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const id = await tenants.createTenant(ctx, input);
      return ctx.db.tenant.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  updateTenant: t.prismaField({
    extensions: { permission: 'tenants:write' },
    type: 'Tenant',
    args: { input: t.arg({ type: UpdateTenantInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const id = await tenants.updateTenant(ctx, tenantIdArg(String(input.tenantId)), { name: input.name });
      return ctx.db.tenant.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  inviteMember: t.prismaField({
    extensions: { permission: 'invitations:write' },
    type: 'Invitation',
    description: 'Invites an email address; the returned token is shown once.',
    args: { input: t.arg({ type: InviteMemberInput, required: true }) },
    resolve: (_query, _root, { input }, ctx) => tenants.inviteMember(ctx, tenantIdArg(String(input.tenantId)), input),
  }),
  acceptInvitation: t.prismaField({
    extensions: { permission: 'self' },
    type: 'Membership',
    description: 'Joins the tenant of an invitation sent to your email address.',
    args: { token: t.arg.string({ required: true }) },
    resolve: (_query, _root, { token }, ctx) => tenants.acceptInvitation(ctx, token),
  }),
  changeMemberRole: t.prismaField({
    extensions: { permission: 'members:write' },
    type: 'Membership',
    args: { input: t.arg({ type: ChangeMemberRoleInput, required: true }) },
    resolve: (_query, _root, { input }, ctx) =>
      tenants.changeMemberRole(ctx, tenantIdArg(String(input.tenantId)), userIdArg(String(input.userId)), input.role),
  }),
  removeMember: t.boolean({
    extensions: { permission: 'members:write' },
    args: { input: t.arg({ type: RemoveMemberInput, required: true }) },
    resolve: (_root, { input }, ctx) => tenants.removeMember(ctx, tenantIdArg(String(input.tenantId)), userIdArg(String(input.userId))),
  }),
  leaveTenant: t.boolean({
    extensions: { permission: 'self' },
    description: 'Leaves a tenant. The last owner cannot leave.',
    args: { tenantId: t.arg.id({ required: true }) },
    resolve: (_root, { tenantId }, ctx) => tenants.leaveTenant(ctx, tenantIdArg(String(tenantId))),
  }),
}));
