import { z } from 'zod';
import type { Context } from '../../graphql/context.ts';
import { badInput, conflict, notFound, translateDatabaseError } from '../../graphql/errors.ts';
import { displayName, parseInput, username } from '../../graphql/validate.ts';
import { uuidFromGlobalId } from '../../graphql/ids.ts';
import { passwordProblem } from '../../auth/passwords.ts';
import { requireUser } from '../tenants/access.ts';
import { forgetSessionsOnCommit } from './service.ts';
import { requirePlatformPermission } from '../access/permissions.ts';

/**
 * A user's own account: their sessions (refresh-token families, sql/0019 app.current_user_sessions), password,
 * profile and authentication events; and platform staff deactivating or reactivating a user (app.set_user_active,
 * which decides on app.has_platform_permission itself). Secrets stay in app_private: every read and write here goes
 * through a narrow SECURITY DEFINER function that acts on the transaction's own user only.
 */

export interface SessionRow {
  id: string;
  userAgent: string | null;
  ip: string | null;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  current: boolean;
}

export async function listSessions(ctx: Context): Promise<SessionRow[]> {
  requireUser(ctx);
  const rows = await ctx.db.$queryRaw<{ id: string; user_agent: string | null; ip: string | null; created_at: Date; last_used_at: Date; expires_at: Date }[]>`
    select id, user_agent, ip, created_at, last_used_at, expires_at from app.current_user_sessions()`;
  return rows.map((r) => ({
    id: r.id,
    userAgent: r.user_agent,
    ip: r.ip,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    expiresAt: r.expires_at,
    current: r.id === ctx.sessionId,
  }));
}

/** Ends one of the caller's sessions: its refresh token fails, its access tokens and sockets are refused at once. */
export async function revokeSession(ctx: Context, globalId: string): Promise<boolean> {
  requireUser(ctx);
  const id = uuidFromGlobalId('Session', globalId, 'id');
  const rows = await ctx.db.$queryRaw<{ revoked: boolean }[]>`select app.revoke_session(${id}::uuid, ${ctx.ip}, ${ctx.userAgent}) as revoked`;
  // Another user's session, an ended one, one that never was: all the same answer.
  if (!rows[0]?.revoked) throw notFound('session');
  forgetSessionsOnCommit(ctx, [id]);
  return true;
}

/** Ends every session of the caller but the one of this request; answers how many ended. */
export async function revokeOtherSessions(ctx: Context): Promise<number> {
  requireUser(ctx);
  const rows = await ctx.db.$queryRaw<{ id: string }[]>`
    select s::text as id from app.revoke_other_sessions(${ctx.sessionId ?? null}::uuid, ${ctx.ip}, ${ctx.userAgent}) s`;
  forgetSessionsOnCommit(ctx, rows.map((r) => r.id));
  return rows.length;
}

const ChangePasswordInput = z.object({ currentPassword: z.string().max(1024), newPassword: z.string() });

/**
 * The current password is required (argon2id verify); the new one follows the sign-up rules. Every other session
 * ends (refresh refused, access tokens refused, sockets closed); the one of this request goes on. A wrong current
 * password changes nothing and is recorded as a failed `changePassword`.
 */
export async function changePassword(ctx: Context, raw: unknown): Promise<boolean> {
  const userId = requireUser(ctx);
  const input = parseInput(ChangePasswordInput, raw);
  const rows = await ctx.db.$queryRaw<{ hash: string | null; email: string; throttled: boolean }[]>`
    select app.current_user_password_hash() as hash, u.email, app.password_change_throttled() as throttled
      from app_public.users u where u.id = ${userId}::uuid`;
  const email = rows[0]?.email ?? '';
  const throttled = rows[0]?.throttled ?? true;
  const ok = await ctx.services.passwords.verify(rows[0]?.hash, input.currentPassword);
  // Past 10 failures in 15 minutes even the right password gets this answer (after the same argon2 work).
  if (!ok || throttled) {
    const detail = throttled ? 'throttled' : 'wrong current password';
    await ctx.services.db
      .withContext({ requestId: ctx.requestId }, (tx) =>
        tx.$executeRaw`select app.record_auth_failure(${userId}::uuid, null, 'changePassword', ${detail}, ${ctx.ip}, ${ctx.userAgent})`,
      )
      .catch(() => undefined);
    throw badInput('currentPassword', 'the current password is not right');
  }
  const weak = passwordProblem(input.newPassword, email);
  if (weak) throw badInput('newPassword', weak);
  if (input.newPassword === input.currentPassword) throw badInput('newPassword', 'the new password must differ from the current one');
  const hash = await ctx.services.passwords.hash(input.newPassword);
  const ended = await ctx.db
    .$queryRaw<{ id: string }[]>`select s::text as id from app.change_password(${hash}, ${ctx.sessionId ?? null}::uuid, ${ctx.ip}, ${ctx.userAgent}) s`
    .catch((e) => translateDatabaseError(e));
  forgetSessionsOnCommit(ctx, ended.map((r) => r.id));
  return true;
}

const UpdateProfileInput = z.object({
  name: displayName('name', 200).optional(),
  username: username.nullable().optional(),
  firstName: displayName('first name', 100).nullable().optional(),
  lastName: displayName('last name', 100).nullable().optional(),
});

/** Updates the caller's own profile: an absent field is kept, null clears an optional one (not the display name). */
export async function updateProfile(ctx: Context, raw: unknown) {
  const userId = requireUser(ctx);
  const input = parseInput(UpdateProfileInput, raw);
  if ((raw as { name?: unknown } | null)?.name === null) throw badInput('name', 'the name cannot be empty');
  const data: Record<string, string | null | Date> = {};
  for (const key of ['name', 'username', 'firstName', 'lastName'] as const) if (input[key] !== undefined) data[key] = input[key];
  if (Object.keys(data).length === 0) return userId;
  data.updatedAt = new Date();
  await ctx.db.user
    .update({ where: { id: userId }, data, select: { id: true } })
    .catch((e) => translateDatabaseError(e, { uniqueViolation: conflict('this username is taken', 'username') }));
  return userId;
}

/** Platform staff only (platform.users:write, decided in SQL): sign-in, refresh, tokens and sockets refused at once. */
export async function setUserActive(ctx: Context, globalId: string, active: boolean): Promise<string> {
  const id = uuidFromGlobalId('User', globalId, 'userId');
  // Checked before anything (the declared permission), and again by app.set_user_active itself.
  await requirePlatformPermission(ctx, 'platform.users:write');
  await ctx.db.$queryRaw`select app.set_user_active(${id}::uuid, ${active}, ${ctx.ip}, ${ctx.userAgent}) as active`.catch((e) =>
    translateDatabaseError(e, { field: 'userId' }),
  );
  const revocations = ctx.services.authenticator.revocations;
  if (revocations) (ctx.afterCommit ??= []).push(() => (active ? revocations.userReactivated(id) : revocations.userDeactivated(id)));
  return id;
}

export interface AuthEventRow {
  id: string;
  action: string;
  outcome: 'SUCCESS' | 'FAILURE';
  ip: string | null;
  userAgent: string | null;
  sessionId: string | null;
  byAnother: boolean;
  detail: string | null;
  createdAt: Date;
}

/** One page of the caller's authentication events, newest first (keyset on the event id). */
export async function authEventsPage(ctx: Context, page: { after?: string; before?: string; limit: number; inverted: boolean }): Promise<AuthEventRow[]> {
  const userId = requireUser(ctx);
  const cursor = (v: string | undefined, field: string) => {
    if (v === undefined) return null;
    if (!/^\d{1,18}$/.test(v)) throw badInput(field, `${field} is not a valid cursor`);
    return BigInt(v);
  };
  const rows = await ctx.db.$queryRaw<
    { id: bigint; action: string; outcome: 'SUCCESS' | 'FAILURE'; ip: string | null; user_agent: string | null; session_id: string | null; actor_id: string | null; detail: string | null; created_at: Date }[]
  >`select id, action, outcome::text as outcome, ip, user_agent, session_id, actor_id, detail, created_at
      from app.current_user_auth_events(${cursor(page.after, 'after')}::bigint, ${cursor(page.before, 'before')}::bigint, ${page.limit}::int, ${page.inverted})`;
  return rows.map((r) => ({
    id: String(r.id),
    action: r.action,
    outcome: r.outcome,
    ip: r.ip,
    userAgent: r.user_agent,
    sessionId: r.session_id,
    byAnother: !!r.actor_id && r.actor_id !== userId,
    detail: r.detail,
    createdAt: r.created_at,
  }));
}
