import { builder } from '../../graphql/builder.ts';
import { checkOnSubscribe, loadEvent, visibleNotices } from '../../graphql/subscriptions.ts';
import type { ChangeNotice } from '../../graphql/events.ts';
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
      await checkOnSubscribe(ctx, () => requireTenantRole(ctx, tenantId, 'ADMIN'));
      const abort = new AbortController();
      return visibleNotices(
        ctx,
        ctx.services.events.notices('audit', tenantId, abort.signal),
        async (tx, n) => (await tx.auditEvent.count({ where: { tenantId: n.tenantId, id: BigInt(n.id) } })) > 0,
        abort,
      );
    },
    resolve: (query, notice, _args, ctx) => {
      const n = notice as unknown as ChangeNotice;
      return loadEvent(ctx, (tx) => tx.auditEvent.findUnique({ ...query, where: { tenantId_id: { tenantId: n.tenantId, id: BigInt(n.id) } } }));
    },
  }),
);
