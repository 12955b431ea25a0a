import { builder } from '../../graphql/builder.ts';
import { uuidFromGlobalId } from '../../graphql/ids.ts';
import { encodeGlobalID } from '@pothos/plugin-relay';
import * as lifecycle from './lifecycle.ts';

const tenantIdArg = (raw: string) => uuidFromGlobalId('Tenant', raw, 'tenantId');

const TenantDeletion = builder.objectRef<lifecycle.TenantDeletion>('TenantDeletion').implement({
  description: 'A soft-deleted tenant: invisible to its members from now on, purged for good after purgeAfter.',
  fields: (t) => ({
    tenantId: t.id({ resolve: (d) => encodeGlobalID('Tenant', d.tenantId) }),
    slug: t.exposeString('slug'),
    deletedAt: t.expose('deletedAt', { type: 'DateTime' }),
    purgeAfter: t.expose('purgeAfter', { type: 'DateTime' }),
  }),
});

const DeleteTenantInput = builder.inputType('DeleteTenantInput', {
  fields: (t) => ({
    tenantId: t.id({ required: true }),
    confirmSlug: t.string({ required: true, description: 'The tenant’s slug, typed again.' }),
    skipExport: t.boolean({
      required: false,
      description: 'Delete without a completed export of the last 24 hours (exportTenant). Without it, such an export is required.',
    }),
  }),
});

builder.mutationFields((t) => ({
  suspendTenant: t.prismaField({
    type: 'Tenant',
    description:
      'Platform staff: makes a tenant read-only (members still sign in, read and export; every write is refused) and suspends its running sites. Audited in the tenant’s log.',
    args: { tenantId: t.arg.id({ required: true }), reason: t.arg.string({ required: true }) },
    extensions: { permission: 'platform.tenants:write' },
    resolve: async (query, _root, args, ctx) => {
      const id = await lifecycle.suspendTenant(ctx, tenantIdArg(String(args.tenantId)), { reason: args.reason });
      return ctx.db.tenant.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  reactivateTenant: t.prismaField({
    type: 'Tenant',
    description: 'Platform staff: a suspended tenant becomes ACTIVE again, with the sites its suspension suspended. Audited in the tenant’s log.',
    args: { tenantId: t.arg.id({ required: true }) },
    extensions: { permission: 'platform.tenants:write' },
    resolve: async (query, _root, args, ctx) => {
      const id = await lifecycle.reactivateTenant(ctx, tenantIdArg(String(args.tenantId)));
      return ctx.db.tenant.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  restoreTenant: t.prismaField({
    type: 'Tenant',
    description:
      'Platform staff: a deleted tenant whose retention has not ended becomes ACTIVE again, visible to its members, with the sites its deletion suspended. Audited in the tenant’s log.',
    args: { tenantId: t.arg.id({ required: true }) },
    extensions: { permission: 'platform.tenants:write' },
    resolve: async (query, _root, args, ctx) => {
      const id = await lifecycle.restoreTenant(ctx, tenantIdArg(String(args.tenantId)));
      return ctx.db.tenant.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  deleteTenant: t.field({
    type: TenantDeletion,
    description:
      'Owners: soft-deletes the tenant (its members no longer see it, its sites are suspended); everything of it is purged after TENANT_RETENTION_DAYS. Export it first (exportTenant) or pass skipExport: true.',
    args: { input: t.arg({ type: DeleteTenantInput, required: true }) },
    extensions: { permission: 'tenants:delete' },
    resolve: (_root, { input }, ctx) =>
      lifecycle.deleteTenant(ctx, tenantIdArg(String(input.tenantId)), { confirmSlug: input.confirmSlug, skipExport: input.skipExport }),
  }),
}));
