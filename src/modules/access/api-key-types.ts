import { builder } from '../../graphql/builder.ts';
import { tenantScopedIdFromGlobalId, uuidFromGlobalId } from '../../graphql/ids.ts';
import * as apiKeys from './api-keys.ts';

builder.prismaNode('ApiKey', {
  id: { field: 'tenantId_id' },
  nullable: true,
  description:
    'An API key of a tenant, for integrators: `Authorization: Bearer tpk_…`. Its secret is answered once, by createApiKey, and never again.',
  fields: (t) => ({
    name: t.exposeString('name'),
    prefix: t.string({
      description: 'The public start of the key, `tpk_<identifier>`, to recognise it (the secret follows it in the key).',
      select: { identifier: true },
      resolve: (k) => `tpk_${k.identifier}`,
    }),
    permissions: t.exposeStringList('permissions', {
      description: 'Permission patterns (wildcards allowed). A request with the key holds those of them its creator still holds.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    lastUsedAt: t.expose('lastUsedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'Recorded at most about once a minute per key and API instance (and when the ip changes): not per request.',
    }),
    lastUsedIp: t.exposeString('lastUsedIp', { nullable: true }),
    active: t.boolean({
      description: 'Neither revoked nor expired.',
      select: { revokedAt: true, expiresAt: true },
      resolve: (k) => !k.revokedAt && (!k.expiresAt || k.expiresAt.getTime() > Date.now()),
    }),
    createdBy: t.relation('creator', { description: 'The key acts as this user, narrowed to the key’s tenant and permissions.' }),
    revokedBy: t.relation('revoker', { nullable: true }),
    tenant: t.relation('tenant'),
  }),
});

builder.prismaObjectFields('Tenant', (t) => ({
  apiKeys: t.relatedConnection('apiKeys', {
    totalCount: true,
    description: 'Newest first, revoked and expired ones included (api_keys:read). Never their secrets.',
    cursor: 'tenantId_id',
    query: () => ({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }),
  }),
}));

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  fields: (t) => ({
    tenantId: t.id({ required: true }),
    name: t.string({ required: true, description: '1–100 characters.' }),
    permissions: t.stringList({
      required: true,
      description: 'Permission strings (`documents:read`) or patterns (`documents:*`, `*:read`, `*:*`), each known and held by you (a pattern: everything it matches).',
    }),
    expiresAt: t.field({ type: 'DateTime', required: false, description: 'In the future; none: the key does not expire.' }),
  }),
});

const CreateApiKeyPayload = builder.objectRef<apiKeys.CreatedApiKey>('CreateApiKeyPayload').implement({
  description: 'A new API key and its secret, shown this once.',
  fields: (t) => ({
    apiKey: t.prismaField({
      type: 'ApiKey',
      resolve: (query, p, _args, ctx) => ctx.db.apiKey.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId: p.tenantId, id: p.id } } }),
    }),
    secret: t.exposeString('secret', {
      description: 'The whole key, `tpk_<identifier>_<secret>`: send it as `Authorization: Bearer …`. Only its keyed hash is kept; it cannot be shown again.',
    }),
  }),
});

builder.mutationFields((t) => ({
  createApiKey: t.field({
    type: CreateApiKeyPayload,
    description: 'Creates an API key bound to the tenant, with a subset of your permissions (api_keys:write).',
    extensions: { permission: 'api_keys:write' },
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      apiKeys.createApiKey(ctx, uuidFromGlobalId('Tenant', String(input.tenantId), 'tenantId'), {
        name: input.name,
        permissions: input.permissions,
        expiresAt: input.expiresAt ?? null,
      }),
  }),
  revokeApiKey: t.prismaField({
    type: 'ApiKey',
    description: 'Revokes an API key at once (api_keys:write): refused from then on by every instance, its sockets closed.',
    extensions: { permission: 'api_keys:write' },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (query, _root, { id }, ctx) => {
      const key = await apiKeys.revokeApiKey(ctx, tenantScopedIdFromGlobalId('ApiKey', String(id), 'id'));
      return ctx.db.apiKey.findUniqueOrThrow({ ...query, where: { tenantId_id: key } });
    },
  }),
}));
