import { queryFromInfo } from '@pothos/plugin-prisma';
import { createSourceEventStream, execute, print, type ExecutionArgs, type ExecutionResult, type GraphQLResolveInfo } from 'graphql';
import type { Tx } from '../db/database.ts';
import type { Context } from './context.ts';
import { notFound } from './errors.ts';
import type { ChangeNotice } from './events.ts';
import { unreachable } from '../faults.ts';

const settingsOf = (ctx: Context) => ({ userId: ctx.userId, tenant: ctx.tenant, apiKeyId: ctx.apiKeyId, requestId: ctx.requestId });

/**
 * What the row-level security policies read of a context: app.user_id and app.tenant_id (sql/0001's
 * app.current_user_id() and app.current_tenant_filter(), and app.api_key_id; the role is always the app role, and app.request_id only
 * labels audit rows). Two subscribers with the same key are the same principal to the database.
 */
const rlsKey = (ctx: Context) => `${ctx.userId ?? ''}\u0000${ctx.tenant ?? ''}\u0000${ctx.apiKeyId ?? ''}`;

/**
 * Reads done for one notice, shared only by subscribers that run exactly the same read under exactly the same RLS
 * inputs. Keyed by the notice object (one per NOTIFY, handed to every subscriber of it; weak, so the reads go with
 * the notice), then by rlsKey + what is read. A shared result is what the database returned for that very principal
 * after the notice arrived, i.e. what the subscriber's own read would have returned had it run at that moment:
 * nothing ever crosses from one user (or X-Tenant narrowing) to another. N dashboards of one member cost one read
 * per event instead of N.
 */
const sharedReads = new WeakMap<object, Map<string, Promise<unknown>>>();

function sharedRead<T>(notice: unknown, key: string, read: () => Promise<T>): Promise<T> {
  if (typeof notice !== 'object' || notice === null) return read();
  let reads = sharedReads.get(notice);
  if (!reads) sharedReads.set(notice, (reads = new Map()));
  const known = reads.get(key) as Promise<T> | undefined;
  if (known) return known;
  const p = read();
  reads.set(key, p);
  // A failed read (pool timeout…) is not remembered: the next subscriber reads again.
  p.catch(() => reads.delete(key));
  return p;
}

/** A subscription event as visibleEvents yields it: the notice, its payload, and the name of the read that loaded it. */
export interface LoadedEvent<N, T> {
  notice: N;
  item: T;
  key: string;
}

/**
 * How a subscription re-reads its state after the LISTEN connection came back (a resync notice, src/graphql/events.ts):
 * `changed` lists, under the subscriber's own context, the rows to deliver again — those that may have changed
 * since `since` (for one row: that row) — and each is then loaded like a notice's row. `key` names what is listed
 * (with the load's key and the principal it decides which subscribers share the re-read).
 */
export interface Resync<N> {
  key: string;
  changed(tx: Tx, since: Date): Promise<N[]>;
}

/** A connection fault while reading an event is retried this often (the notice just came, the database is there). */
const READ_ATTEMPTS = 4;

/** Runs one event's read, again after a connection fault (the pool replaces a connection killed under it). */
async function withRetries<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (e) {
      if (attempt >= READ_ATTEMPTS || !unreachable(e)) throw e;
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
}

/**
 * The events a subscriber may see, with their payload: for every row-change notice, the row is loaded in one fresh
 * transaction under the subscriber's own context, with the subscriber's selection (`load`; the selection computed once
 * in `subscribe`, subscriptionSelection). The load is the visibility check: a row the policies hide from this subscriber (or a row gone) comes
 * back as null and the notice is skipped, so a member who lost access simply stops receiving. One transaction per
 * subscriber per event, and subscribers with the same RLS inputs that load the same thing (`key`: the model and the
 * selection) share one load per notice (sharedRead); the row object is then shared too, so nothing may mutate it.
 * After a lost LISTEN connection, a resync notice re-reads what `resync` lists and delivers each row still visible
 * (without `resync`, the subscription has nothing to re-read and the notice is skipped). A read that fails on a
 * connection fault is retried; one that still fails ends the subscription with SERVICE_UNAVAILABLE rather than
 * dropping the event.
 */
export async function* visibleEvents<N extends ChangeNotice, T>(
  ctx: Context,
  notices: AsyncIterable<N>,
  key: string,
  load: (tx: Tx, notice: N) => Promise<T | null>,
  abort: AbortController,
  resync?: Resync<N>,
): AsyncGenerator<LoadedEvent<N, T>> {
  const shared = `load:${key}:${rlsKey(ctx)}`;
  try {
    for await (const notice of notices) {
      if (notice.resync) {
        if (!resync) continue;
        const since = notice.resync.since;
        const rows = await withRetries(() =>
          sharedRead(notice, `resync:${resync.key}:${shared}`, () =>
            ctx.services.db.withContext(settingsOf(ctx), async (tx) => {
              const loaded: Array<{ notice: N; item: T }> = [];
              for (const n of await resync.changed(tx, since)) {
                const item = await load(tx, n);
                if (item !== null) loaded.push({ notice: n, item });
              }
              return loaded;
            }),
          ),
        );
        for (const { notice: n, item } of rows) yield { notice: n, item, key };
        continue;
      }
      const item = await withRetries(() => sharedRead(notice, shared, () => ctx.services.db.withContext(settingsOf(ctx), (tx) => load(tx, notice))));
      if (item !== null) yield { notice, item, key };
    }
  } finally {
    abort.abort();
  }
}

/**
 * The Prisma selection of a subscription field's payload, from the `info` its `subscribe` receives: the same
 * operation, variables and path as every event's resolver, so the same selection as the resolver's `query`
 * (eventPayload checks that, event by event).
 */
export async function subscriptionSelection(ctx: Context, info: GraphQLResolveInfo): Promise<object> {
  return (await queryFromInfo({ context: ctx, info, awaitSelections: true })) as object;
}

/**
 * A prismaField resolver's payload for an event of visibleEvents: the row already loaded, when it was loaded under
 * the key the resolver's own selection gives; otherwise (a selection that differs from the one computed at
 * subscribe) loaded again with the resolver's selection, under the subscriber's context (loadEvent).
 */
export function eventPayload<N, T>(ctx: Context, event: LoadedEvent<N, T>, key: string, load: (tx: Tx) => Promise<T | null>): T | Promise<T> {
  return event.key === key ? event.item : loadEvent(ctx, load);
}

/**
 * Loads one event's payload, with the resolver's selection (Pothos `query`), in its own transaction under the
 * subscriber's context: eventPayload's fallback. Nested fields are served from the payload's load (here or in
 * visibleEvents), with the subscriber's whole selection: Pothos' fallback loaders are cached per context, and a
 * subscription's context outlives every event (pothos#1327).
 */
export async function loadEvent<T>(ctx: Context, load: (tx: Tx) => Promise<T | null>): Promise<T> {
  const item = await ctx.services.db.withContext(settingsOf(ctx), load);
  if (item === null) throw notFound('event');
  return item;
}

/** A key naming a Pothos/Prisma selection (visibleEvents' and eventPayload's `key`, after the model's name). */
export const selectionKey = (query: object) => JSON.stringify(query, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));

/** Checks access once when a subscription starts (same context rules as a request). */
export async function checkOnSubscribe(ctx: Context, check: () => Promise<unknown>) {
  const open = await ctx.services.db.open({ ...settingsOf(ctx), recordSupportAccess: true });
  ctx.db = open.tx;
  try {
    await check();
  } finally {
    await open.commit().catch(() => undefined);
  }
}

/**
 * Executions of the operation for one notice, shared by subscribers that run the same operation with the same
 * variables as the same principal (rlsKey): keyed by the notice object, then by that group. The result depends on
 * nothing else — the event's payload is the principal's own shared read (visibleEvents), the resolvers see the same
 * user and X-Tenant — so 1,000 dashboards of 5 members cost 5 executions per event instead of 1,000 (execution was
 * ~27 % of the API's busy time in bench/subscription-fanout.ts). Each subscriber still has its own source stream
 * (its access check at subscribe, its filtering of events) and its own socket write.
 */
type PromiseOrValue<T> = T | Promise<T>;
const sharedExecutions = new WeakMap<object, Map<string, Promise<ExecutionResult>>>();

function sharedExecution(ctx: Context, notice: object, group: string, run: () => PromiseOrValue<ExecutionResult>): Promise<ExecutionResult> {
  let executions = sharedExecutions.get(notice);
  if (!executions) sharedExecutions.set(notice, (executions = new Map()));
  const known = executions.get(group);
  ctx.services.metrics.subscriptionEvents.inc({ execution: known ? 'shared' : 'own' });
  if (known) return known;
  const p = Promise.resolve().then(run);
  executions.set(group, p);
  p.catch(() => executions.delete(group));
  return p;
}

/**
 * graphql-ws' `subscribe`: graphql's own (the field's source stream, then the operation executed for each event
 * with the event as root value, as graphql's subscribe does), except that events carrying a row-change notice
 * (visibleEvents' LoadedEvent) share their execution within a group (sharedExecution). A hand-written iterator,
 * like graphql's mapAsyncIterator: return() reaches the source at once.
 */
export async function sharedSubscribe(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const source = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in source)) return source;
  const ctx = args.contextValue as Context;
  const group = `${rlsKey(ctx)}\u0000${args.operationName ?? ''}\u0000${JSON.stringify(args.variableValues ?? {})}\u0000${print(args.document)}`;
  const events = source[Symbol.asyncIterator]();
  const executeFor = (event: unknown) => {
    const run = () => execute({ ...args, rootValue: event });
    const notice = (event as { notice?: unknown } | null)?.notice;
    if (typeof notice === 'object' && notice !== null) return sharedExecution(ctx, notice, group, run);
    ctx.services.metrics.subscriptionEvents.inc({ execution: 'own' });
    return run();
  };
  const done = { value: undefined, done: true } as const;
  const results: AsyncIterableIterator<ExecutionResult> = {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      const r = await events.next();
      return r.done ? done : { value: await executeFor(r.value), done: false };
    },
    async return() {
      await events.return?.();
      return done;
    },
    async throw(e: unknown) {
      await events.return?.();
      throw e;
    },
  };
  return results;
}
