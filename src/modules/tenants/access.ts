import type { Context } from '../../graphql/context.ts';
import { unauthenticated } from '../../graphql/errors.ts';

export function requireUser(ctx: Context): string {
  if (!ctx.userId) throw unauthenticated();
  return ctx.userId;
}
