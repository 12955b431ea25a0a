import { z } from 'zod';
import type { Context } from '../../graphql/context.ts';
import { conflict, notFound, translateDatabaseError } from '../../graphql/errors.ts';
import { parseInput } from '../../graphql/validate.ts';
import type { SocialPlatform } from '../../db/generated/prisma/enums.ts';
import { audited, recordAudit } from '../audit/service.ts';
import { requirePermission } from '../access/permissions.ts';

export const SOCIAL_PLATFORMS = ['TWITTER', 'FACEBOOK', 'LINKEDIN', 'INSTAGRAM', 'YOUTUBE'] as const;
export const MAX_URL = 2048;

/** The registrable hosts of each platform; each may also be reached as www.<host> or m.<host>, nothing else. */
export const PLATFORM_HOSTS: Record<SocialPlatform, readonly string[]> = {
  TWITTER: ['twitter.com', 'x.com'],
  FACEBOOK: ['facebook.com', 'fb.com'],
  LINKEDIN: ['linkedin.com'],
  INSTAGRAM: ['instagram.com'],
  YOUTUBE: ['youtube.com', 'youtu.be'],
};

function hostMatches(platform: SocialPlatform, hostname: string) {
  const bare = hostname.replace(/^(?:www|m)\./, '');
  return PLATFORM_HOSTS[platform].includes(bare);
}

/**
 * Checks a profile URL for its platform and returns it normalized (WHATWG serialization: lowercase host, default
 * port dropped), so that duplicates are found however they were typed. Hosts are compared exactly after parsing,
 * so look-alikes (twitter.com.evil.io, eviltwitter.com, twitter.com.) never pass.
 */
export function checkSocialUrl(platform: SocialPlatform, raw: string): { ok: true; url: string } | { ok: false; message: string } {
  if (raw.length > MAX_URL) return { ok: false, message: `the URL has at most ${MAX_URL} characters` };
  // The URL parser silently drops tabs and newlines inside a URL; refuse them (and any other control or space).
  if (/[\u0000-\u0020\u007f-\u009f\u00a0\u1680\u2000-\u200f\u2028\u2029\u202f\u205f\u3000\ufeff]/.test(raw)) {
    return { ok: false, message: 'the URL cannot contain spaces or control characters' };
  }
  if (!/^https:\/\//i.test(raw)) return { ok: false, message: 'the URL must start with https://' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, message: 'this is not a valid URL' };
  }
  // Userinfo in any form (even an empty one, as in https://@x.com) is refused, not just a non-empty user or password.
  const authority = /^https:\/\/([^/\\?#]*)/i.exec(raw)?.[1] ?? '';
  if (url.username || url.password || authority.includes('@')) return { ok: false, message: 'the URL cannot contain credentials' };
  if (url.protocol !== 'https:') return { ok: false, message: 'the URL must start with https://' };
  if (url.port) return { ok: false, message: 'the URL cannot name a port' };
  if (!hostMatches(platform, url.hostname)) {
    const hosts = PLATFORM_HOSTS[platform].join(' or ');
    return { ok: false, message: `a ${platform} link must point to ${hosts} (optionally www. or m.)` };
  }
  const normalized = url.href;
  if (normalized.length > MAX_URL) return { ok: false, message: `the URL has at most ${MAX_URL} characters` };
  return { ok: true, url: normalized };
}

const AddSocialLinkInput = z
  .object({
    platform: z.enum(SOCIAL_PLATFORMS, { message: 'unknown platform' }),
    url: z.string().trim().min(1, 'the URL cannot be empty'),
  })
  .transform((input, zctx) => {
    const checked = checkSocialUrl(input.platform, input.url);
    if (!checked.ok) {
      zctx.addIssue({ code: 'custom', path: ['url'], message: checked.message });
      return z.NEVER;
    }
    return { platform: input.platform, url: checked.url };
  });

export function addSocialLink(ctx: Context, tenantId: string, raw: { platform: string; url: string }) {
  return audited(ctx, { tenantId, action: 'addSocialLink', targetType: 'SocialLink', details: { platform: raw.platform } }, async () => {
    await requirePermission(ctx, tenantId, 'social_links:write');
    const input = parseInput(AddSocialLinkInput, raw);
    const link = await ctx.db.socialLink
      .create({ data: { tenantId, platform: input.platform, url: input.url, createdBy: ctx.userId }, select: { tenantId: true, id: true } })
      .catch((e) => translateDatabaseError(e, { uniqueViolation: conflict(`this ${input.platform} link is already listed`, 'url') }));
    await recordAudit(ctx, { tenantId, action: 'addSocialLink', targetType: 'SocialLink', targetId: link.id, details: { platform: input.platform, url: input.url } });
    return link;
  });
}

export function removeSocialLink(ctx: Context, key: { tenantId: string; id: string }) {
  const { tenantId, id } = key;
  return audited(ctx, { tenantId, action: 'removeSocialLink', targetType: 'SocialLink', targetId: id }, async () => {
    await requirePermission(ctx, tenantId, 'social_links:write');
    const link = await ctx.db.socialLink.findUnique({ where: { tenantId_id: key }, select: { platform: true, url: true } });
    if (!link) throw notFound('social link');
    const { count } = await ctx.db.socialLink.deleteMany({ where: { tenantId, id } }).catch((e) => translateDatabaseError(e));
    if (count !== 1) throw notFound('social link');
    await recordAudit(ctx, { tenantId, action: 'removeSocialLink', targetType: 'SocialLink', targetId: id, details: { platform: link.platform, url: link.url } });
    return true;
  });
}
