import { z } from 'zod';
import type { Context } from '../../graphql/context.ts';
import { AppError, badInput, conflict, sqlState, translateDatabaseError, unauthenticated } from '../../graphql/errors.ts';
import { displayName, email, parseInput, username } from '../../graphql/validate.ts';
import { passwordProblem } from '../../auth/passwords.ts';
import { newOpaqueToken, sha256 } from '../../auth/tokens.ts';

export interface AuthPayloadShape {
  accessToken: string;
  refreshToken: string;
  expiresAt: Date;
  userId: string;
}

const SignUpInput = z.object({ email, password: z.string(), name: displayName('name', 200) });
/** `email` takes an email or a username (never an @: sql/0019). */
const LogInInput = z.object({ email: z.union([email, username]), password: z.string().max(1024) });

/** From now on this request acts as userId (the policies read app.user_id). */
export async function actAs(ctx: Context, userId: string) {
  ctx.userId = userId;
  await ctx.db.$executeRaw`select set_config('app.user_id', ${userId}, true)`;
}

/** The session (refresh-token family) a refresh token belongs to: access tokens carry it as `sid`. */
async function sessionOf(ctx: Context, refreshToken: string): Promise<string | undefined> {
  const rows = await ctx.db.$queryRaw<{ family: string | null }[]>`select app.refresh_family(${sha256(refreshToken)}) as family`;
  return rows[0]?.family ?? undefined;
}

export async function issueSession(ctx: Context, userId: string): Promise<AuthPayloadShape> {
  const refreshToken = newOpaqueToken();
  const expires = new Date(Date.now() + ctx.services.config.auth.refreshTokenTtl * 1000);
  await ctx.db.$executeRaw`select app.create_session(${userId}::uuid, ${sha256(refreshToken)}, ${expires}, ${ctx.ip}, ${ctx.userAgent})`;
  const access = await ctx.services.tokens.sign(userId, await sessionOf(ctx, refreshToken));
  return { accessToken: access.token, refreshToken, expiresAt: access.expiresAt, userId };
}

export async function signUp(ctx: Context, raw: unknown): Promise<AuthPayloadShape> {
  const input = parseInput(SignUpInput, raw);
  const weak = passwordProblem(input.password, input.email);
  if (weak) throw badInput('password', weak);
  const hash = await ctx.services.passwords.hash(input.password);
  const rows = await ctx.db
    .$queryRaw<{ id: string }[]>`select app.sign_up(${input.email}, ${input.name}, ${hash}) as id`
    .catch((e) => translateDatabaseError(e, { uniqueViolation: conflict('an account with this email already exists', 'email') }));
  await actAs(ctx, rows[0]!.id);
  return issueSession(ctx, rows[0]!.id);
}

/**
 * Wrong email and wrong password answer the same, after the same argon2 work. Brute force is throttled in the
 * database (app.login_throttled, sql/0010): past 10 failures per email or 50 per ip in 15 minutes every attempt,
 * even with the right password, gets that same answer — known and unknown emails alike.
 */
export async function logIn(ctx: Context, raw: unknown): Promise<AuthPayloadShape> {
  const parsed = LogInInput.safeParse(raw);
  const address = parsed.success ? parsed.data.email : null;
  const password = parsed.success ? parsed.data.password : '';
  // Throttled per account whichever identifier names it (its email), per typed identifier when it names none.
  const rows = await ctx.db.$queryRaw<{ throttled: boolean; user_id: string | null; password_hash: string | null; active: boolean | null; email: string | null }[]>`
    select t.throttled, l.user_id, l.password_hash, l.active, l.email
      from (select 1) as one
      left join app.login_lookup(${address}::text) l on true
      cross join lateral app.login_throttled(coalesce(l.email, ${address}::text), ${ctx.ip}::text) as t(throttled)`;
  const throttled = rows[0]?.throttled ?? true;
  const found = rows[0]?.user_id ? { user_id: rows[0].user_id, password_hash: rows[0].password_hash, active: rows[0].active === true, email: rows[0].email } : undefined;
  const identifier = found?.email ?? address?.toLowerCase() ?? null;
  const ok = await ctx.services.passwords.verify(found?.password_hash, password);
  const refuse = async (detail: string | null) => {
    // Recorded in its own transaction: the request's one rolls back with the error. Throttled attempts are kept
    // for forensics under their own action, so they do not extend the throttle window.
    const action = throttled ? 'logInThrottled' : 'logIn';
    await ctx.services.db
      .withContext({ requestId: ctx.requestId }, (tx) =>
        tx.$executeRaw`select app.record_auth_failure(${found?.user_id ?? null}::uuid, ${identifier}, ${action}, ${detail}, ${ctx.ip}, ${ctx.userAgent})`,
      )
      .catch(() => undefined);
    return new AppError('UNAUTHENTICATED', 'invalid email or password');
  };
  // A deactivated account gets the answer of a wrong password (after the same argon2 work); its event says why.
  if (throttled || !ok || !found) throw await refuse(null);
  if (!found.active) throw await refuse('account deactivated');
  await actAs(ctx, found.user_id);
  let session: AuthPayloadShape;
  try {
    session = await issueSession(ctx, found.user_id);
  } catch (e) {
    // Deactivated between the lookup and now (app.create_session share-locks the user row).
    if (sqlState(e) === 'TPUA0') throw new AppError('UNAUTHENTICATED', 'invalid email or password');
    throw e;
  }
  // After the session exists, so the event names it (app.create_session sets app.session_id).
  await ctx.db.$executeRaw`select app.record_auth_event(${found.user_id}::uuid, ${identifier}, 'logIn', 'SUCCESS', ${ctx.ip}, ${ctx.userAgent})`;
  return session;
}

/**
 * Rotates a refresh token. Runs in its own committed transaction so that a detected reuse revokes the whole
 * family even though this request then fails.
 */
export async function refreshSession(ctx: Context, refreshToken: string): Promise<AuthPayloadShape> {
  const next = newOpaqueToken();
  const expires = new Date(Date.now() + ctx.services.config.auth.refreshTokenTtl * 1000);
  const userId = await ctx.services.db.withContext({ requestId: ctx.requestId }, async (tx) => {
    const rows = await tx.$queryRaw<{ user_id: string | null }[]>`
      select app.rotate_refresh_token(${sha256(refreshToken)}, ${sha256(next)}, ${expires}, ${ctx.ip}, ${ctx.userAgent}) as user_id`;
    return rows[0]?.user_id ?? null;
  });
  if (!userId) throw unauthenticated();
  await actAs(ctx, userId);
  const access = await ctx.services.tokens.sign(userId, await sessionOf(ctx, next));
  return { accessToken: access.token, refreshToken: next, expiresAt: access.expiresAt, userId };
}

/** Revokes the refresh token's whole family (this login on every device that shares it). Idempotent. */
export async function logOut(ctx: Context, refreshToken: string): Promise<boolean> {
  const rows = await ctx.db.$queryRaw<{ user_id: string | null }[]>`select app.revoke_refresh_family(${sha256(refreshToken)}) as user_id`;
  const userId = rows[0]?.user_id;
  // The event names the session ended (app.revoke_refresh_family set app.session_id). Its sockets close (the
  // revocation notice); its access token, which the client discards, lapses at its expiry (sql/0019 revoked_reason).
  if (userId) await ctx.db.$executeRaw`select app.record_auth_event(${userId}::uuid, null, 'logOut', 'SUCCESS', ${ctx.ip}, ${ctx.userAgent})`;
  return true;
}

/** Once the transaction committed, this process refuses those sessions' access tokens (the NOTIFY tells the others). */
export function forgetSessionsOnCommit(ctx: Context, sessions: string[]) {
  const revocations = ctx.services.authenticator.revocations;
  if (!revocations || sessions.length === 0) return;
  (ctx.afterCommit ??= []).push(() => {
    for (const s of sessions) revocations.sessionRevoked(s);
  });
}
