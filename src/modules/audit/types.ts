import { builder } from '../../graphql/builder.ts';
import { checkOnSubscribe, eventPayload, selectionKey, subscriptionSelection, visibleEvents, type LoadedEvent } from '../../graphql/subscriptions.ts';
import type { Tx } from '../../db/database.ts';
import type { ChangeNotice } from '../../graphql/events.ts';
import { uuidFromGlobalId } from '../../graphql/ids.ts';
import { requirePermission } from '../access/permissions.ts';

export const AuditOutcomeEnum = builder.enumType('AuditOutcome', { values: ['SUCCESS', 'FAILURE'] as const });

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
    subscribe: async (_root, args, ctx, info) => {
      const tenantId = uuidFromGlobalId('Tenant', String(args.tenantId), 'tenantId');
      await checkOnSubscribe(ctx, () => requirePermission(ctx, tenantId, 'audit:read'));
      const query = await subscriptionSelection(ctx, info);
      const abort = new AbortController();
      // The load under the subscriber's context is the visibility check: an entry the policies hide is skipped.
      // After a lost LISTEN connection: the entries written since (the newest 500), oldest first.
      const resync = {
        key: 'tenant',
        changed: async (tx: Tx, since: Date) => {
          const rows = await tx.auditEvent.findMany({ where: { tenantId, createdAt: { gte: since } }, select: { id: true }, orderBy: { id: 'desc' }, take: 500 });
          return rows.reverse().map((r): ChangeNotice => ({ kind: 'audit', tenantId, id: String(r.id) }));
        },
      };
      return visibleEvents(ctx, ctx.services.events.notices('audit', tenantId, abort.signal), `auditEvent:${selectionKey(query)}`, (tx, n) => loadAuditEvent(query, n)(tx), abort, resync);
    },
    resolve: (query, event, _args, ctx) => {
      const e = event as unknown as LoadedEvent<ChangeNotice, NonNullable<Awaited<ReturnType<ReturnType<typeof loadAuditEvent>>>>>;
      return eventPayload(ctx, e, `auditEvent:${selectionKey(query)}`, loadAuditEvent(query, e.notice));
    },
  }),
);

/** The audit entry of a notice, with the subscriber's selection, under the subscriber's context: null when the policies hide it. */
const loadAuditEvent = (query: object, n: ChangeNotice) => (tx: Tx) => tx.auditEvent.findUnique({ ...(query as {}), where: { tenantId_id: { tenantId: n.tenantId, id: BigInt(n.id) } } });
