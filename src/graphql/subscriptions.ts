import type { Tx } from '../db/database.ts';
import type { Context } from './context.ts';
import { notFound } from './errors.ts';

const settingsOf = (ctx: Context) => ({ userId: ctx.userId, tenant: ctx.tenant, requestId: ctx.requestId });

/**
 * Filters row-change notices to those the subscriber can still see, checked in a fresh transaction under the
 * subscriber's own context for every event: a member who lost access simply stops receiving.
 */
export async function* visibleNotices<N>(
  ctx: Context,
  notices: AsyncIterable<N>,
  isVisible: (tx: Tx, notice: N) => Promise<boolean>,
  abort: AbortController,
): AsyncGenerator<N> {
  try {
    for await (const notice of notices) {
      if (await ctx.services.db.withContext(settingsOf(ctx), (tx) => isVisible(tx, notice))) yield notice;
    }
  } finally {
    abort.abort();
  }
}

/**
 * Loads one event's payload, with the subscriber's whole selection (Pothos `query`), in its own transaction under
 * the subscriber's context. Nested fields are served from that load: Pothos' fallback loaders are cached per
 * context, and a subscription's context outlives every event (pothos#1327).
 */
export async function loadEvent<T>(ctx: Context, load: (tx: Tx) => Promise<T | null>): Promise<T> {
  const item = await ctx.services.db.withContext(settingsOf(ctx), load);
  if (item === null) throw notFound('event');
  return item;
}

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
