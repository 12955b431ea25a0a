import crypto from 'node:crypto';
import { z } from 'zod';
import type { Context } from '../../graphql/context.ts';
import { AppError, badInput, notFound, sqlState, translateDatabaseError, unauthenticated } from '../../graphql/errors.ts';
import { displayName, parseInput } from '../../graphql/validate.ts';
import { newApiKey } from '../../auth/api-keys.ts';
import { audited, recordAudit } from '../audit/service.ts';
import { requirePermission } from './permissions.ts';

/** `resource:action`, either part possibly `*` (sites:write, sites:*, *:read, *:*). */
const PERMISSION_PATTERN = /^([a-z_.]+|\*):([a-z_]+|\*)$/;
export const MAX_KEY_PERMISSIONS = 64;

const CreateApiKeyInput = z.object({
  name: displayName('name', 100),
  permissions: z
    .array(z.string().trim())
    .min(1, 'a key needs at least one permission')
    .max(MAX_KEY_PERMISSIONS, `a key has at most ${MAX_KEY_PERMISSIONS} permissions`)
    .transform((list, zctx) => {
      const malformed = list.filter((p) => !PERMISSION_PATTERN.test(p));
      if (malformed.length) {
        zctx.addIssue({ code: 'custom', message: `unknown permission: ${malformed.map((p) => JSON.stringify(p)).join(', ')} (resource:action, e.g. documents:read)` });
        return z.NEVER;
      }
      return [...new Set(list)].sort();
    }),
  expiresAt: z
    .date()
    .nullish()
    .refine((d) => !d || d.getTime() > Date.now(), 'expiresAt must be in the future'),
});

export interface CreatedApiKey {
  tenantId: string;
  id: string;
  /** The whole key, `tpk_…`: answered once, never stored, never readable again. */
  secret: string;
}

/**
 * Creates a key in a tenant (api_keys:write). Its permissions must exist and be held by the creator — the insert
 * trigger of sql/0021 checks both, whoever inserts — and every use re-checks them against the creator's (app.has_permission).
 */
export function createApiKey(ctx: Context, tenantId: string, raw: { name: string; permissions: string[]; expiresAt?: Date | null }): Promise<CreatedApiKey> {
  return audited(ctx, { tenantId, action: 'createApiKey', targetType: 'ApiKey', details: { name: raw.name } }, async () => {
    await requirePermission(ctx, tenantId, 'api_keys:write');
    const input = parseInput(CreateApiKeyInput, raw);
    const id = crypto.randomUUID();
    const { identifier, key } = newApiKey();
    const verifier = ctx.services.authenticator.apiKeys;
    if (!verifier) throw new Error('API keys are not configured');
    // No RETURNING: it would be checked against the read policy (api_keys:read), which a writer need not hold.
    await ctx.db.$executeRaw`
      insert into app_public.api_keys (tenant_id, id, name, identifier, permissions, created_by, expires_at)
      values (${tenantId}::uuid, ${id}::uuid, ${input.name}, ${identifier}, ${input.permissions}::text[], ${ctx.userId}::uuid, ${input.expiresAt ?? null}::timestamptz)`
      .catch((e) => {
        if (sqlState(e) === 'TPFB0') throw new AppError('FORBIDDEN', sqlMessage(e), { field: 'permissions' });
        if (sqlState(e) === 'TPIN0') {
          const message = sqlMessage(e);
          throw badInput(message.startsWith('expiresAt') ? 'expiresAt' : 'permissions', message);
        }
        return translateDatabaseError(e);
      });
    await ctx.db.$executeRaw`select app.set_api_key_secret(${tenantId}::uuid, ${id}::uuid, ${new Uint8Array(verifier.hash(key))})`.catch((e) =>
      translateDatabaseError(e),
    );
    await recordAudit(ctx, {
      tenantId,
      action: 'createApiKey',
      targetType: 'ApiKey',
      targetId: id,
      details: { name: input.name, prefix: `tpk_${identifier}`, permissions: input.permissions, expiresAt: input.expiresAt?.toISOString() ?? null },
    });
    return { tenantId, id, secret: key };
  });
}

/** Revokes a key (api_keys:write): refused from the next request on, in every instance, and its sockets close. */
export function revokeApiKey(ctx: Context, key: { tenantId: string; id: string }) {
  const { tenantId, id } = key;
  return audited(ctx, { tenantId, action: 'revokeApiKey', targetType: 'ApiKey', targetId: id }, async () => {
    if (!ctx.userId) throw unauthenticated();
    await requirePermission(ctx, tenantId, 'api_keys:write');
    const existing = await ctx.db.apiKey.findUnique({ where: { tenantId_id: key }, select: { revokedAt: true, name: true, identifier: true } });
    if (!existing) throw notFound('API key');
    if (existing.revokedAt) return key; // already revoked: nothing to do, nothing to log
    const count = await ctx.db.$executeRaw`
      update app_public.api_keys set revoked_at = now(), revoked_by = ${ctx.userId}::uuid
       where tenant_id = ${tenantId}::uuid and id = ${id}::uuid and revoked_at is null`.catch((e) => translateDatabaseError(e));
    if (count !== 1) throw notFound('API key');
    ctx.services.authenticator.apiKeys?.forget(id);
    await recordAudit(ctx, { tenantId, action: 'revokeApiKey', targetType: 'ApiKey', targetId: id, details: { name: existing.name, prefix: `tpk_${existing.identifier}` } });
    return key;
  });
}

function sqlMessage(e: unknown): string {
  const err = e as { meta?: { driverAdapterError?: { cause?: { originalMessage?: string } } }; cause?: { originalMessage?: string }; message?: string };
  return String(err?.meta?.driverAdapterError?.cause?.originalMessage ?? err?.cause?.originalMessage ?? err?.message ?? e);
}
