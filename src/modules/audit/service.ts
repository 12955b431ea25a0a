import type { Context } from '../../graphql/context.ts';
import type { Tx } from '../../db/database.ts';
import { contractError } from '../../graphql/errors.ts';

export interface AuditEntry {
  tenantId: string;
  action: string;
  targetType?: string;
  targetId?: string;
  details?: Record<string, unknown>;
}

/** An entry made through an API key names it (`apiKeyId`; the actor is the key's creator). */
function detailsOf(ctx: Context, entry: AuditEntry) {
  return ctx.apiKeyId ? { ...(entry.details ?? {}), apiKeyId: ctx.apiKeyId } : (entry.details ?? {});
}

/**
 * Inserts one entry without RETURNING: members who may write the log may not read it (admins only), and
 * RETURNING would be checked against the read policy.
 */
function insertAudit(tx: Tx, ctx: Context, entry: AuditEntry, outcome: 'SUCCESS' | 'FAILURE') {
  return tx.$executeRaw`
    insert into app_public.audit_events (tenant_id, actor_id, action, target_type, target_id, outcome, details, ip, user_agent)
    values (${entry.tenantId}::uuid, ${ctx.userId}::uuid, ${entry.action}, ${entry.targetType ?? null}, ${entry.targetId ?? null},
            ${outcome}::app_public.audit_outcome, ${JSON.stringify(detailsOf(ctx, entry))}::jsonb, ${ctx.ip}, ${ctx.userAgent})`;
}

/** Appends a SUCCESS entry in the request's transaction: it commits with the change it describes, or not at all. */
export async function recordAudit(ctx: Context, entry: AuditEntry) {
  await insertAudit(ctx.db, ctx, entry, 'SUCCESS');
}

/**
 * Runs a tenant mutation; when it fails, a FAILURE entry is written after the request's transaction rolled back.
 * The insert policy only admits entries of tenants the actor belongs to, so a probe of another tenant writes nothing there.
 */
export async function audited<T>(ctx: Context, entry: AuditEntry, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (raised) {
    // A refusal of our own SQL (a quota or lifecycle trigger: TPQU0, TPIN0…) answers with its contract code.
    const error = contractError(raised);
    if (ctx.userId) {
      const code = (error as { extensions?: { code?: string } }).extensions?.code ?? 'INTERNAL_SERVER_ERROR';
      ctx.afterRollback.push(() =>
        ctx.services.db
          .withContext(ctx.apiKeyId ? { userId: ctx.userId, tenant: ctx.tenant, apiKeyId: ctx.apiKeyId, requestId: ctx.requestId } : { userId: ctx.userId, requestId: ctx.requestId }, (tx) =>
            insertAudit(tx, ctx, { ...entry, details: { ...(entry.details ?? {}), error: code } }, 'FAILURE'),
          )
          .then(
            () => undefined,
            () => undefined,
          ),
      );
    }
    throw error;
  }
}

/** An entry of the platform's own log (sql/0027 platform_audit_events): platform mutations that belong to no tenant. */
export interface PlatformAuditEntry {
  action: string;
  targetType?: string;
  targetId?: string;
  details?: Record<string, unknown>;
}

function insertPlatformAudit(tx: Tx, ctx: Context, entry: PlatformAuditEntry, outcome: 'SUCCESS' | 'FAILURE') {
  return tx.$executeRaw`
    insert into app_public.platform_audit_events (actor_id, action, target_type, target_id, outcome, details, ip, user_agent)
    values (${ctx.userId}::uuid, ${entry.action}, ${entry.targetType ?? null}, ${entry.targetId ?? null},
            ${outcome}::app_public.audit_outcome, ${JSON.stringify(entry.details ?? {})}::jsonb, ${ctx.ip}, ${ctx.userAgent})`;
}

/** Appends a SUCCESS entry to the platform log in the request's transaction (commits with the change, or not at all). */
export async function recordPlatformAudit(ctx: Context, entry: PlatformAuditEntry) {
  await insertPlatformAudit(ctx.db, ctx, entry, 'SUCCESS');
}

/**
 * Runs a platform mutation; when it fails, a FAILURE entry is written to the platform log after the request's
 * transaction rolled back. The insert policy admits only staff recording their own acts: a non-staff probe writes nothing.
 */
export async function platformAudited<T>(ctx: Context, entry: PlatformAuditEntry, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (raised) {
    const error = contractError(raised);
    if (ctx.userId && !ctx.apiKeyId) {
      const code = (error as { extensions?: { code?: string; field?: string } }).extensions?.code ?? 'INTERNAL_SERVER_ERROR';
      const field = (error as { extensions?: { field?: string } }).extensions?.field;
      ctx.afterRollback.push(() =>
        ctx.services.db
          .withContext({ userId: ctx.userId, requestId: ctx.requestId }, (tx) =>
            insertPlatformAudit(tx, ctx, { ...entry, details: { ...(entry.details ?? {}), error: code, ...(field ? { field } : {}) } }, 'FAILURE'),
          )
          .then(
            () => undefined,
            () => undefined,
          ),
      );
    }
    throw error;
  }
}
