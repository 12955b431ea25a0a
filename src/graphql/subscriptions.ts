import type { Tx } from '../db/database.ts';
import type { Context } from './context.ts';
import { notFound } from './errors.ts';

const settingsOf = (ctx: Context) => ({ userId: ctx.userId, tenant: ctx.tenant, requestId: ctx.requestId });

/**
 * What the row-level security policies read of a context: app.user_id and app.tenant_id (sql/0001's
 * app.current_user_id() and app.current_tenant_filter(); the role is always the app role, and app.request_id only
 * labels audit rows). Two subscribers with the same key are the same principal to the database.
 */
const rlsKey = (ctx: Context) => `${ctx.userId ?? ''}\u0000${ctx.tenant ?? ''}`;

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

/** An id per visibility function: subscribers share a check's answer only when they check with the same function. */
const checkIds = new WeakMap<object, number>();
let lastCheckId = 0;
function checkId(check: object) {
  let id = checkIds.get(check);
  if (id === undefined) checkIds.set(check, (id = ++lastCheckId));
  return id;
}

/**
 * Filters row-change notices to those the subscriber can still see, checked in a fresh transaction under the
 * subscriber's own context for every event: a member who lost access simply stops receiving. Subscribers with the
 * same RLS inputs and the same check share one check per notice (sharedRead).
 */
export async function* visibleNotices<N>(
  ctx: Context,
  notices: AsyncIterable<N>,
  isVisible: (tx: Tx, notice: N) => Promise<boolean>,
  abort: AbortController,
): AsyncGenerator<N> {
  const key = `visible:${checkId(isVisible)}:${rlsKey(ctx)}`;
  try {
    for await (const notice of notices) {
      const visible = await sharedRead(notice, key, () => ctx.services.db.withContext(settingsOf(ctx), (tx) => isVisible(tx, notice)));
      if (visible) yield notice;
    }
  } finally {
    abort.abort();
  }
}

/**
 * Loads one event's payload, with the subscriber's whole selection (Pothos `query`), in its own transaction under
 * the subscriber's context. Nested fields are served from that load: Pothos' fallback loaders are cached per
 * context, and a subscription's context outlives every event (pothos#1327).
 *
 * With `share` (the notice and a key naming the read, e.g. the model and the selection), subscribers with the same
 * RLS inputs that load the same thing for the same notice share one load; the row object is then shared too, so
 * nothing may mutate it.
 */
export async function loadEvent<T>(ctx: Context, load: (tx: Tx) => Promise<T | null>, share?: { notice: unknown; key: string }): Promise<T> {
  const read = () => ctx.services.db.withContext(settingsOf(ctx), load);
  const item = await (share ? sharedRead(share.notice, `load:${share.key}:${rlsKey(ctx)}`, read) : read());
  if (item === null) throw notFound('event');
  return item;
}

/** A key naming a Pothos/Prisma selection, for loadEvent's `share`. */
export const selectionKey = (query: object) => JSON.stringify(query, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));

/** Checks access once when a subscription starts (same context rules as a request). */
export async function checkOnSubscribe(ctx: Context, check: () => Promise<unknown>) {
  const open = await ctx.services.db.open(settingsOf(ctx));
  ctx.db = open.tx;
  try {
    await check();
  } finally {
    await open.commit().catch(() => undefined);
  }
}
