import { builder } from '../../graphql/builder.ts';
import { deliverUnderContext } from '../../graphql/subscriptions.ts';
import { uuidFromGlobalId } from '../../graphql/ids.ts';
import { requireTenantRole } from '../tenants/access.ts';

const AuditOutcomeEnum = builder.enumType('AuditOutcome', { values: ['SUCCESS', 'FAILURE'] as const });

builder.prismaNode('AuditEvent', {
  id: { field: 'tenantId_id' },
  nullable: true,
  fields: (t) => ({
    action: t.exposeString('action', { description: 'The mutation, e.g. inviteMember.' }),
    targetType: t.exposeString('targetType', { nullable: true }),
    targetId: t.exposeString('targetId', { nullable: true }),
    outcome: t.expose('outcome', { type: AuditOutcomeEnum }),
    details: t.expose('details', { type: 'JSON' }),
    ip: t.exposeString('ip', { nullable: true }),
    userAgent: t.exposeString('userAgent', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    actor: t.relation('actor', { nullable: true }),
  }),
});

builder.subscriptionField('auditEvents', (t) =>
  t.prismaField({
    type: 'AuditEvent',
    description: 'Each new audit entry of the tenant, for its admins and owners.',
    args: { tenantId: t.arg.id({ required: true }) },
    subscribe: async (_root, args, ctx) => {
      const tenantId = uuidFromGlobalId('Tenant', String(args.tenantId), 'tenantId');
      const check = await ctx.services.db.open({ userId: ctx.userId, tenant: ctx.tenant, requestId: ctx.requestId });
      try {
        ctx.db = check.tx;
        await requireTenantRole(ctx, tenantId, 'ADMIN');
      } finally {
        await check.commit().catch(() => undefined);
      }
      const abort = new AbortController();
      return deliverUnderContext(
        ctx,
        ctx.services.events.notices('audit', tenantId, abort.signal),
        (c, notice) => c.db.auditEvent.findUnique({ where: { tenantId_id: { tenantId: notice.tenantId, id: BigInt(notice.id) } } }),
        abort,
      );
    },
    resolve: (_query, event) => event as never,
  }),
);
