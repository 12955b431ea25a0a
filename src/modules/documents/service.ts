import crypto from 'node:crypto';
import { z } from 'zod';
import type { Context } from '../../graphql/context.ts';
import { AppError, badInput, conflict, forbidden, notFound, quotaExceeded, translateDatabaseError } from '../../graphql/errors.ts';
import { parseInput } from '../../graphql/validate.ts';
import { MULTIPART_THRESHOLD, PART_SIZE, Storage } from '../../storage/s3.ts';
import { audited, recordAudit } from '../audit/service.ts';
import { requireUser } from '../tenants/access.ts';
import { requireOwnOrAny, requirePermission } from '../access/permissions.ts';
import { enqueueJob } from '../jobs/service.ts';

/** Objects above this size are refused outright (S3's single-object limit is 5 TiB; we keep uploads sane). */
const MAX_UPLOAD_BYTES = 5 * 1024 * 1024 * 1024;

/** A stored filename: the user's name with path separators and control characters replaced. */
export function sanitizeFilename(name: string) {
  const cleaned = name
    .normalize('NFC')
    .replace(/[\u0000-\u001f\u007f/\\]/g, '_')
    .trim()
    .replace(/^\.+$/, '_');
  return [...cleaned].slice(0, 255).join('');
}

const Filename = z
  .string()
  .trim()
  .min(1, 'the filename cannot be empty')
  .max(255, 'the filename has at most 255 characters');

const CreateUploadInput = z.object({
  filename: Filename,
  sizeBytes: z.number().int('sizeBytes is a whole number of bytes').min(0, 'sizeBytes cannot be negative').max(MAX_UPLOAD_BYTES, 'files are limited to 5 GiB'),
  mimeType: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}(\s*;.*)?$/, 'this is not a MIME type (e.g. text/plain)'),
  sha256: z.string().trim().toLowerCase().regex(/^[0-9a-f]{64}$/, 'sha256 is 64 hexadecimal characters'),
});

export interface UploadTicket {
  id: string;
  tenantId: string;
  url: string | null;
  headers: Record<string, string>;
  expiresAt: Date;
  alreadyStored: boolean;
  parts: Array<{ partNumber: number; url: string; sizeBytes: number }>;
  partSize: number | null;
}

async function storageUsed(ctx: Context, tenantId: string) {
  const r = await ctx.db.file.aggregate({ where: { tenantId }, _sum: { sizeBytes: true } });
  return Number(r._sum.sizeBytes ?? 0n);
}

/**
 * Starts an upload: a presigned PUT (or presigned parts above 16 MiB), or `alreadyStored` when the tenant already
 * holds these bytes (dedup by sha256). Quota counts stored bytes once, plus what this upload would add.
 */
export function createUpload(ctx: Context, tenantId: string, raw: unknown): Promise<UploadTicket> {
  return audited(ctx, { tenantId, action: 'createUpload', targetType: 'Upload' }, async () => {
    const userId = requireUser(ctx);
    await requirePermission(ctx, tenantId, 'documents:write');
    const input = parseInput(CreateUploadInput, raw);
    const filename = sanitizeFilename(input.filename);
    const taken = await ctx.db.document.findFirst({ where: { tenantId, uploaderId: userId, filename }, select: { id: true } });
    if (taken) throw conflict(`you already have a document named "${filename}"`, 'filename');

    const existing = await ctx.db.file.findUnique({ where: { tenantId_sha256: { tenantId, sha256: input.sha256 } } });
    if (existing && Number(existing.sizeBytes) !== input.sizeBytes) {
      throw badInput('sizeBytes', 'a stored file has this sha256 with another size: check sizeBytes and sha256');
    }
    if (!existing) {
      const plan = await ctx.db.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { plan: { select: { name: true, maxStorageBytes: true } } } });
      const used = await storageUsed(ctx, tenantId);
      if (used + input.sizeBytes > Number(plan.plan.maxStorageBytes)) {
        throw quotaExceeded(`the ${plan.plan.name} plan stores ${plan.plan.maxStorageBytes} bytes; ${used} are used and this file needs ${input.sizeBytes}`);
      }
    }

    const id = crypto.randomUUID();
    const ttl = ctx.services.config.storage.uploadUrlTtl;
    const expiresAt = new Date(Date.now() + ttl * 1000);
    const objectKey = Storage.objectKey(tenantId, id);
    const storage = ctx.services.storage;
    let multipartUploadId: string | null = null;
    let url: string | null = null;
    const parts: UploadTicket['parts'] = [];
    if (!existing) {
      if (input.sizeBytes > MULTIPART_THRESHOLD) {
        multipartUploadId = await storage.startMultipart(objectKey, input.mimeType);
        const count = Math.ceil(input.sizeBytes / PART_SIZE);
        for (let n = 1; n <= count; n++) {
          parts.push({ partNumber: n, url: await storage.presignPart(objectKey, multipartUploadId, n, ttl), sizeBytes: Math.min(PART_SIZE, input.sizeBytes - (n - 1) * PART_SIZE) });
        }
      } else {
        url = await storage.presignPut(objectKey, input.mimeType, input.sizeBytes, ttl);
      }
    }
    // A multipart upload started here would outlive a rolled-back request (the storage quota trigger may refuse the
    // insert below): abort it then.
    if (multipartUploadId) ctx.afterRollback.push(() => storage.abortMultipart(objectKey, multipartUploadId!));
    await ctx.db.upload.create({
      data: {
        tenantId,
        id,
        uploaderId: userId,
        filename,
        originalName: input.filename,
        mimeType: input.mimeType,
        sizeBytes: BigInt(input.sizeBytes),
        sha256: input.sha256,
        objectKey,
        multipartUploadId,
        fileId: existing?.id ?? null,
        expiresAt,
      },
      select: { id: true },
    });
    await recordAudit(ctx, { tenantId, action: 'createUpload', targetType: 'Upload', targetId: id, details: { filename, sizeBytes: input.sizeBytes, alreadyStored: !!existing } });
    return {
      id,
      tenantId,
      url,
      headers: url ? { 'content-type': input.mimeType } : ({} as Record<string, string>),
      expiresAt,
      alreadyStored: !!existing,
      parts,
      partSize: multipartUploadId ? PART_SIZE : null,
    };
  });
}

/** After a refused completion: the upload row and the stray bytes go (in their own transaction; the request's rolled back). */
function discardUpload(ctx: Context, upload: { tenantId: string; id: string; objectKey: string; multipartUploadId: string | null; fileId: string | null }) {
  ctx.afterRollback.push(async () => {
    await ctx.services.db.withContext({ userId: ctx.userId, tenant: ctx.apiKeyId ? ctx.tenant : null, apiKeyId: ctx.apiKeyId, requestId: ctx.requestId }, (tx) =>
      tx.upload.deleteMany({ where: { tenantId: upload.tenantId, id: upload.id } }),
    );
    if (upload.fileId) return; // deduplicated: these bytes belong to a stored file
    if (upload.multipartUploadId) await ctx.services.storage.abortMultipart(upload.objectKey, upload.multipartUploadId);
    await ctx.services.storage.delete(upload.objectKey).catch(() => undefined);
  });
}

/**
 * Completes an upload: checks the object exists, its size and its sha256 (computed from the stored bytes), then
 * creates the file (unless deduplicated) and the document, and enqueues its processing — all in this transaction.
 */
export async function completeUpload(ctx: Context, tenantId: string, uploadId: string, parts?: Array<{ partNumber: number; etag: string }>) {
  const userId = requireUser(ctx);
  const upload = await ctx.db.upload.findUnique({ where: { tenantId_id: { tenantId, id: uploadId } } });
  if (!upload) throw notFound('upload');
  return audited(ctx, { tenantId, action: 'completeUpload', targetType: 'Upload', targetId: uploadId }, async () => {
    if (upload.completedAt) throw conflict('this upload is already complete');
    await requirePermission(ctx, tenantId, 'documents:write');
    const storage = ctx.services.storage;
    const refuse = (field: string, message: string): never => {
      discardUpload(ctx, upload);
      throw badInput(field, message);
    };
    if (upload.expiresAt <= new Date()) refuse('uploadId', 'this upload has expired: start a new one');

    let fileId = upload.fileId;
    if (!fileId) {
      if (upload.multipartUploadId) {
        const expectedParts = Math.max(1, Math.ceil(Number(upload.sizeBytes) / PART_SIZE));
        const ok = await storage.completeMultipart(upload.objectKey, upload.multipartUploadId, expectedParts, parts ?? undefined);
        if (!ok) refuse('parts', `the multipart upload is incomplete: send the ETag of each of its ${expectedParts} parts`);
      }
      const size = await storage.size(upload.objectKey);
      if (size === null) refuse('uploadId', 'nothing was uploaded for this upload');
      if (size !== Number(upload.sizeBytes)) refuse('sizeBytes', `the uploaded object has ${size} bytes, not the ${upload.sizeBytes} announced`);
      const sha = await storage.sha256(upload.objectKey);
      if (sha !== upload.sha256) refuse('sha256', 'the uploaded bytes do not match the announced sha256');
      // Another upload of the same bytes may have completed meanwhile: keep one copy.
      const twin = await ctx.db.file.findUnique({ where: { tenantId_sha256: { tenantId, sha256: upload.sha256 } }, select: { id: true } });
      if (twin) {
        // This upload's own copy goes once the upload is marked complete onto the twin (trigger, sql/0014).
        fileId = twin.id;
      } else {
        const file = await ctx.db.file.create({
          data: { tenantId, sha256: upload.sha256, sizeBytes: upload.sizeBytes, mimeType: upload.mimeType, objectKey: upload.objectKey },
          select: { id: true },
        });
        fileId = file.id;
      }
    }
    const documentId = crypto.randomUUID();
    try {
      await ctx.db.document.create({
        data: {
          tenantId,
          id: documentId,
          fileId: fileId!,
          uploaderId: userId,
          filename: upload.filename,
          originalName: upload.originalName,
          sizeBytes: upload.sizeBytes,
          mimeType: upload.mimeType,
        },
        select: { id: true },
      });
    } catch (e) {
      discardUpload(ctx, upload);
      translateDatabaseError(e, { uniqueViolation: conflict(`you already have a document named "${upload.filename}"`, 'filename') });
    }
    await ctx.db.upload.updateMany({ where: { tenantId, id: uploadId }, data: { completedAt: new Date(), fileId } });
    await enqueueJob(ctx, 'document-process', { tenantId, args: { documentId } });
    await recordAudit(ctx, { tenantId, action: 'completeUpload', targetType: 'Document', targetId: documentId, details: { filename: upload.filename } });
    return documentId;
  });
}

async function findDocument(ctx: Context, tenantId: string, documentId: string) {
  const doc = await ctx.db.document.findUnique({ where: { tenantId_id: { tenantId, id: documentId } } });
  if (!doc) throw notFound('document');
  return doc;
}

/** documents:write changes your own documents; documents:manage anyone's. */
function requireDocumentWrite(ctx: Context, tenantId: string, uploaderId: string) {
  return requireOwnOrAny(ctx, tenantId, uploaderId === ctx.userId, 'documents:write', 'documents:manage');
}

export function renameDocument(ctx: Context, tenantId: string, documentId: string, rawName: unknown) {
  return audited(ctx, { tenantId, action: 'renameDocument', targetType: 'Document', targetId: documentId }, async () => {
    const doc = await findDocument(ctx, tenantId, documentId);
    await requireDocumentWrite(ctx, tenantId, doc.uploaderId);
    const filename = sanitizeFilename(parseInput(z.object({ filename: Filename }), { filename: rawName }).filename);
    await ctx.db.document
      .update({ where: { tenantId_id: { tenantId, id: documentId } }, data: { filename, updatedAt: new Date() }, select: { id: true } })
      .catch((e) => translateDatabaseError(e, { uniqueViolation: conflict(`a document named "${filename}" already exists for its uploader`, 'filename') }));
    await recordAudit(ctx, { tenantId, action: 'renameDocument', targetType: 'Document', targetId: documentId, details: { from: doc.filename, to: filename } });
    return documentId;
  });
}

/** Deletes a document; the file and its bytes go too when no other document references them. */
export function deleteDocument(ctx: Context, tenantId: string, documentId: string) {
  return audited(ctx, { tenantId, action: 'deleteDocument', targetType: 'Document', targetId: documentId }, async () => {
    const doc = await findDocument(ctx, tenantId, documentId);
    await requireDocumentWrite(ctx, tenantId, doc.uploaderId);
    await recordAudit(ctx, { tenantId, action: 'deleteDocument', targetType: 'Document', targetId: documentId, details: { filename: doc.filename } });
    await ctx.db.document.delete({ where: { tenantId_id: { tenantId, id: documentId } }, select: { id: true } }).catch((e) => translateDatabaseError(e));
    const others = await ctx.db.document.count({ where: { tenantId, fileId: doc.fileId } });
    if (others === 0) {
      // Its bytes go after the commit: the files_delete_object trigger (sql/0014) enqueues their deletion.
      await ctx.db.file.delete({ where: { tenantId_id: { tenantId, id: doc.fileId } }, select: { id: true } });
    }
    return true;
  });
}

export async function downloadUrl(ctx: Context, doc: { tenantId: string; fileId: string; filename: string }) {
  const file = await ctx.db.file.findUnique({ where: { tenantId_id: { tenantId: doc.tenantId, id: doc.fileId } }, select: { objectKey: true } });
  if (!file) throw new AppError('NOT_FOUND', 'file not found');
  return ctx.services.storage.presignGet(file.objectKey, doc.filename, ctx.services.config.storage.downloadUrlTtl);
}

