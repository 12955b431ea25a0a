import type { Context } from './context.ts';

/**
 * Turns row-change notices into subscription payloads, each re-read in a fresh transaction under the subscriber's
 * own context. The transaction stays open while the payload's fields resolve (ctx.db points at it) and is
 * committed when the next event is pulled: a removed member simply reads nothing, and receives nothing.
 */
export async function* deliverUnderContext<N, T>(
  ctx: Context,
  notices: AsyncIterable<N>,
  load: (ctx: Context, notice: N) => Promise<T | null>,
  abort: AbortController,
): AsyncGenerator<T> {
  try {
    for await (const notice of notices) {
      const open = await ctx.services.db.open({ userId: ctx.userId, tenant: ctx.tenant, requestId: ctx.requestId });
      ctx.db = open.tx;
      let item: T | null;
      try {
        item = await load(ctx, notice);
      } catch (e) {
        await open.rollback();
        throw e;
      }
      try {
        if (item !== null) yield item;
      } finally {
        await open.commit().catch(() => undefined);
      }
    }
  } finally {
    abort.abort();
  }
}
