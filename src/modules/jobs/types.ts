import { builder } from '../../graphql/builder.ts';
import { tenantScopedIdFromGlobalId, uuidFromGlobalId } from '../../graphql/ids.ts';
import { checkOnSubscribe, eventPayload, selectionKey, subscriptionSelection, visibleEvents, type LoadedEvent, type Resync } from '../../graphql/subscriptions.ts';
import type { ChangeNotice } from '../../graphql/events.ts';
import type { Context } from '../../graphql/context.ts';
import type { Tx } from '../../db/database.ts';
import { notFound } from '../../graphql/errors.ts';
import { requirePermission } from '../access/permissions.ts';
import * as jobs from './service.ts';

export const JobStatusEnum = builder.enumType('JobStatus', { values: ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const });

builder.prismaNode('Job', {
  id: { field: 'tenantId_id' },
  nullable: true,
  fields: (t) => ({
    type: t.exposeString('type', { description: 'The queue, e.g. site-provision.' }),
    status: t.expose('status', { type: JobStatusEnum }),
    progress: t.exposeInt('progress', { description: '0–100, never decreasing.' }),
    step: t.exposeString('step', { nullable: true }),
    logs: t.exposeStringList('logs'),
    attempts: t.exposeInt('attempts'),
    maxAttempts: t.exposeInt('maxAttempts'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
    cancelRequestedAt: t.expose('cancelRequestedAt', { type: 'DateTime', nullable: true }),
    error: t.exposeString('error', { nullable: true }),
    result: t.expose('result', { type: 'JSON', nullable: true }),
    requestedBy: t.relation('requester', { nullable: true }),
  }),
});

builder.prismaObjectFields('Tenant', (t) => ({
  jobs: t.relatedConnection('jobs', {
    totalCount: true,
    description: 'Newest first.',
    args: { status: t.arg({ type: JobStatusEnum }), type: t.arg.string() },
    cursor: 'tenantId_id',
    query: (args) => ({
      where: { ...(args.status ? { status: args.status } : {}), ...(args.type ? { type: args.type } : {}) },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    }),
  }),
}));

builder.mutationField('cancelJob', (t) =>
  t.prismaField({
    type: 'Job',
    extensions: { permission: 'jobs:write' },
    description: 'Asks a pending or running job to stop; it ends CANCELLED at its next checkpoint.',
    args: { jobId: t.arg.id({ required: true }) },
    resolve: async (query, _root, { jobId }, ctx) => {
      const { tenantId, id } = tenantScopedIdFromGlobalId('Job', String(jobId), 'jobId');
      await jobs.cancelJob(ctx, tenantId, id);
      return ctx.db.job.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId, id } } });
    },
  }),
);

const jobVisible = async (tx: Tx, n: ChangeNotice) => (await tx.job.count({ where: { tenantId: n.tenantId, id: n.id } })) > 0;

builder.subscriptionFields((t) => ({
  jobUpdated: t.prismaField({
    type: 'Job',
    description: 'Every status, progress or step change of one job.',
    args: { jobId: t.arg.id({ required: true }) },
    subscribe: async (_root, args, ctx, info) => {
      const { tenantId, id } = tenantScopedIdFromGlobalId('Job', String(args.jobId), 'jobId');
      await checkOnSubscribe(ctx, async () => {
        if (!(await jobVisible(ctx.db, { kind: 'job', tenantId, id }))) throw notFound('job');
      });
      const query = await subscriptionSelection(ctx, info);
      const abort = new AbortController();
      const notices = ctx.services.events.notices('job', tenantId, abort.signal);
      const ofThisJob = (async function* () {
        for await (const n of notices) if (n.id === id || n.resync) yield n;
      })();
      // After a lost LISTEN connection: this job, re-read as it is now.
      return visibleJobs(ctx, query, ofThisJob, abort, { key: `job:${id}`, changed: async () => [{ kind: 'job', tenantId, id }] });
    },
    resolve: (query, event, _args, ctx) => jobPayload(ctx, query, event as unknown as JobEvent),
  }),
  tenantJobs: t.prismaField({
    type: 'Job',
    description: 'Every change of every job of a tenant, for its members.',
    args: { tenantId: t.arg.id({ required: true }) },
    subscribe: async (_root, args, ctx, info) => {
      const tenantId = uuidFromGlobalId('Tenant', String(args.tenantId), 'tenantId');
      await checkOnSubscribe(ctx, () => requirePermission(ctx, tenantId, 'jobs:read'));
      const query = await subscriptionSelection(ctx, info);
      const abort = new AbortController();
      return visibleJobs(ctx, query, ctx.services.events.notices('job', tenantId, abort.signal), abort, tenantJobsChanged(tenantId));
    },
    resolve: (query, event, _args, ctx) => jobPayload(ctx, query, event as unknown as JobEvent),
  }),
}));

/** The job of a notice, with the subscriber's selection, under the subscriber's context: null when the policies hide it. */
const loadJob = (query: object, n: ChangeNotice) => (tx: Tx) => tx.job.findUnique({ ...(query as {}), where: { tenantId_id: { tenantId: n.tenantId, id: n.id } } });

type JobEvent = LoadedEvent<ChangeNotice, NonNullable<Awaited<ReturnType<ReturnType<typeof loadJob>>>>>;

/** After a lost LISTEN connection: the tenant's jobs changed since (the newest 500), oldest first, re-read as they are now. */
const tenantJobsChanged = (tenantId: string): Resync<ChangeNotice> => ({
  key: 'tenant',
  changed: async (tx, since) => {
    const rows = await tx.job.findMany({ where: { tenantId, updatedAt: { gte: since } }, select: { id: true }, orderBy: [{ updatedAt: 'desc' }, { id: 'desc' }], take: 500 });
    return rows.reverse().map((r) => ({ kind: 'job', tenantId, id: r.id }));
  },
});

/** Each job change the subscriber can see, its payload loaded with the subscription's selection (one transaction per event). */
function visibleJobs(ctx: Context, query: object, notices: AsyncIterable<ChangeNotice>, abort: AbortController, resync: Resync<ChangeNotice>) {
  return visibleEvents(ctx, notices, `job:${selectionKey(query)}`, (tx, n) => loadJob(query, n)(tx), abort, resync);
}

function jobPayload(ctx: Context, query: object, event: JobEvent) {
  return eventPayload(ctx, event, `job:${selectionKey(query)}`, loadJob(query, event.notice));
}
