import { builder } from '../../graphql/builder.ts';
import { tenantScopedGlobalId, tenantScopedIdFromGlobalId, uuidFromGlobalId } from '../../graphql/ids.ts';
import * as documents from './service.ts';

const DocumentStatusEnum = builder.enumType('DocumentStatus', {
  description: 'UPLOADED → PROCESSING → PROCESSED | ERROR',
  values: ['UPLOADED', 'PROCESSING', 'PROCESSED', 'ERROR'] as const,
});

// `select` mode: a query fetches only the columns its selection needs (Prisma's default fetches every column,
// each built into JSON by the relation join and parsed again here).
builder.prismaNode('File', {
  id: { field: 'tenantId_id' },
  select: { tenantId: true, id: true },
  nullable: true,
  description: 'Stored bytes, shared by every document of the tenant with the same sha256.',
  fields: (t) => ({
    sha256: t.exposeString('sha256'),
    sizeBytes: t.expose('sizeBytes', { type: 'BigInt' }),
    mimeType: t.exposeString('mimeType'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.prismaNode('Document', {
  id: { field: 'tenantId_id' },
  select: { tenantId: true, id: true },
  nullable: true,
  fields: (t) => ({
    filename: t.exposeString('filename', { description: 'Unique per uploader in the tenant.' }),
    originalName: t.exposeString('originalName'),
    sizeBytes: t.expose('sizeBytes', { type: 'BigInt' }),
    mimeType: t.exposeString('mimeType'),
    status: t.expose('status', { type: DocumentStatusEnum }),
    error: t.exposeString('error', { nullable: true, description: 'Why processing ended in ERROR.' }),
    processedAt: t.expose('processedAt', { type: 'DateTime', nullable: true }),
    charCount: t.exposeInt('charCount', { nullable: true }),
    wordCount: t.exposeInt('wordCount', { nullable: true }),
    lineCount: t.exposeInt('lineCount', { nullable: true }),
    preview: t.exposeString('preview', { nullable: true, description: 'The first 500 characters of extracted text.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    uploader: t.relation('uploader'),
    file: t.relation('file'),
    downloadUrl: t.string({
      description: 'A short-lived presigned GET URL for the bytes (DOWNLOAD_URL_TTL_SECONDS).',
      select: { filename: true, file: { select: { objectKey: true } } },
      resolve: (doc, _args, ctx) => ctx.services.storage.presignGet(doc.file.objectKey, doc.filename, ctx.services.config.storage.downloadUrlTtl),
    }),
  }),
});

const UploadPart = builder
  .objectRef<documents.UploadTicket['parts'][number]>('UploadPart')
  .implement({
    description: 'One part of a multipart upload: PUT exactly sizeBytes bytes to url.',
    fields: (t) => ({ partNumber: t.exposeInt('partNumber'), url: t.exposeString('url'), sizeBytes: t.exposeInt('sizeBytes') }),
  });

const HeaderPair = builder.objectRef<{ name: string; value: string }>('HttpHeader').implement({
  fields: (t) => ({ name: t.exposeString('name'), value: t.exposeString('value') }),
});

const Upload = builder.objectRef<documents.UploadTicket>('Upload').implement({
  description:
    'Where to send the bytes. Single PUT to `url` with `headers`; or, for large files, a PUT of each of `parts`; or nothing when `alreadyStored`. Then call completeUpload.',
  fields: (t) => ({
    id: t.id({ resolve: (u) => tenantScopedGlobalId('Upload', u.tenantId, u.id) }),
    url: t.exposeString('url', { nullable: true }),
    headers: t.field({ type: [HeaderPair], resolve: (u) => Object.entries(u.headers).map(([name, value]) => ({ name, value })) }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
    alreadyStored: t.exposeBoolean('alreadyStored', { description: 'The tenant already holds these bytes: upload nothing.' }),
    partSize: t.exposeInt('partSize', { nullable: true }),
    parts: t.field({ type: [UploadPart], resolve: (u) => u.parts }),
  }),
});

/** Upload ids carry their tenant, like every tenant-owned node id. */
const parseUploadId = (raw: string) => tenantScopedIdFromGlobalId('Upload', raw, 'uploadId');
const parseDocumentId = (raw: string) => tenantScopedIdFromGlobalId('Document', raw, 'documentId');

const CreateUploadInput = builder.inputType('CreateUploadInput', {
  fields: (t) => ({
    tenantId: t.id({ required: true }),
    filename: t.string({ required: true }),
    sizeBytes: t.int({ required: true }),
    mimeType: t.string({ required: true }),
    sha256: t.string({ required: true, description: 'Hex sha256 of the bytes; verified against the stored object.' }),
  }),
});

const CompletedPartInput = builder.inputType('CompletedPartInput', {
  fields: (t) => ({ partNumber: t.int({ required: true }), etag: t.string({ required: true, description: 'The ETag header S3 answered to the part’s PUT.' }) }),
});

const RenameDocumentInput = builder.inputType('RenameDocumentInput', {
  fields: (t) => ({ documentId: t.id({ required: true }), filename: t.string({ required: true }) }),
});

builder.mutationFields((t) => ({
  createUpload: t.field({
    extensions: { permission: 'documents:write' },
    type: Upload,
    args: { input: t.arg({ type: CreateUploadInput, required: true }) },
    resolve: (_root, { input }, ctx) => documents.createUpload(ctx, uuidFromGlobalId('Tenant', String(input.tenantId), 'tenantId'), input),
  }),
  completeUpload: t.prismaField({
    extensions: { permission: 'documents:write' },
    type: 'Document',
    description: 'Verifies the uploaded object (exists, size, sha256) and creates the document; its processing starts.',
    args: {
      uploadId: t.arg.id({ required: true }),
      parts: t.arg({ type: [CompletedPartInput], description: 'For multipart uploads: the ETag of every part.' }),
    },
    resolve: async (query, _root, { uploadId, parts }, ctx) => {
      const { tenantId, id } = parseUploadId(String(uploadId));
      const documentId = await documents.completeUpload(ctx, tenantId, id, parts ?? undefined);
      return ctx.db.document.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId, id: documentId } } });
    },
  }),
  renameDocument: t.prismaField({
    extensions: { permission: 'documents:write' },
    type: 'Document',
    args: { input: t.arg({ type: RenameDocumentInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const { tenantId, id } = parseDocumentId(String(input.documentId));
      await documents.renameDocument(ctx, tenantId, id, input.filename);
      return ctx.db.document.findUniqueOrThrow({ ...query, where: { tenantId_id: { tenantId, id } } });
    },
  }),
  deleteDocument: t.boolean({
    extensions: { permission: 'documents:write' },
    args: { documentId: t.arg.id({ required: true }) },
    resolve: (_root, { documentId }, ctx) => {
      const { tenantId, id } = parseDocumentId(String(documentId));
      return documents.deleteDocument(ctx, tenantId, id);
    },
  }),
}));

const TenantUsage = builder.objectRef<{ tenantId: string }>('TenantUsage').implement({
  fields: (t) => ({
    storageBytes: t.field({
      type: 'BigInt',
      description: 'Bytes stored, each deduplicated file counted once.',
      resolve: async ({ tenantId }, _args, ctx) => (await ctx.db.file.aggregate({ where: { tenantId }, _sum: { sizeBytes: true } }))._sum.sizeBytes ?? 0n,
    }),
    documents: t.int({ resolve: ({ tenantId }, _args, ctx) => ctx.db.document.count({ where: { tenantId } }) }),
    members: t.int({ resolve: ({ tenantId }, _args, ctx) => ctx.db.membership.count({ where: { tenantId } }) }),
  }),
});

builder.prismaObjectFields('Tenant', (t) => ({
  documents: t.relatedConnection('documents', {
    totalCount: true,
    description: 'Newest first; filter by status and by a case-insensitive search in the filename.',
    args: { status: t.arg({ type: DocumentStatusEnum }), search: t.arg.string() },
    cursor: 'tenantId_id',
    query: (args) => ({
      where: {
        ...(args.status ? { status: args.status } : {}),
        ...(args.search ? { filename: { contains: args.search, mode: 'insensitive' as const } } : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    }),
  }),
  usage: t.field({ type: TenantUsage, select: { id: true }, resolve: (tenant) => ({ tenantId: tenant.id }) }),
}));
