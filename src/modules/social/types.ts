import { builder } from '../../graphql/builder.ts';
import { tenantScopedIdFromGlobalId, uuidFromGlobalId } from '../../graphql/ids.ts';
import * as social from './service.ts';

const SocialPlatformEnum = builder.enumType('SocialPlatform', { values: social.SOCIAL_PLATFORMS });

builder.prismaNode('SocialLink', {
  id: { field: 'tenantId_id' },
  nullable: true,
  description: 'A tenant’s profile on a social platform: an https URL on one of the platform’s hosts.',
  fields: (t) => ({
    platform: t.expose('platform', { type: SocialPlatformEnum }),
    url: t.exposeString('url', { description: 'Normalized (lowercase host, no default port).' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    createdBy: t.relation('creator', { nullable: true }),
    tenant: t.relation('tenant'),
  }),
});

builder.prismaObjectFields('Tenant', (t) => ({
  socialLinks: t.relatedConnection('socialLinks', {
    totalCount: true,
    description: 'Oldest first. Every member reads them; admins and owners add and remove them.',
    cursor: 'tenantId_id',
    query: () => ({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
  }),
}));

const AddSocialLinkInput = builder.inputType('AddSocialLinkInput', {
  fields: (t) => ({
    tenantId: t.id({ required: true }),
    platform: t.field({ type: SocialPlatformEnum, required: true }),
    url: t.string({
      required: true,
      description: 'https only, on the platform’s host (twitter.com/x.com, facebook.com/fb.com, linkedin.com, instagram.com, youtube.com/youtu.be; optionally www. or m.), at most 2048 characters, no credentials.',
    }),
  }),
});

builder.mutationFields((t) => ({
  addSocialLink: t.prismaField({
    extensions: { permission: 'social_links:write' },
    type: 'SocialLink',
    description: 'Lists a social profile of the tenant (admins and owners). The same platform and URL twice is a CONFLICT.',
    args: { input: t.arg({ type: AddSocialLinkInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const tenantId = uuidFromGlobalId('Tenant', String(input.tenantId), 'tenantId');
      const key = await social.addSocialLink(ctx, tenantId, { platform: input.platform, url: input.url });
      return ctx.db.socialLink.findUniqueOrThrow({ ...query, where: { tenantId_id: key } });
    },
  }),
  removeSocialLink: t.boolean({
    extensions: { permission: 'social_links:write' },
    description: 'Removes a social link (admins and owners).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => social.removeSocialLink(ctx, tenantScopedIdFromGlobalId('SocialLink', String(id), 'id')),
  }),
}));
