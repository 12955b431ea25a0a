import type { QueueDefinition, JobPayload } from '../../jobs/queue.ts';
import type { Services } from '../../services.ts';

export interface DocumentProcessPayload extends JobPayload {
  documentId: string;
}

/** Text extraction reads at most this much; larger text files end PROCESSED without statistics. */
const MAX_TEXT_BYTES = 32 * 1024 * 1024;
const PREVIEW_CHARS = 500;

export function isTextLike(mimeType: string) {
  const m = mimeType.toLowerCase().split(';')[0]!.trim();
  return (
    m.startsWith('text/') ||
    ['application/json', 'application/x-ndjson', 'application/csv', 'application/xml', 'application/yaml', 'application/x-yaml', 'application/markdown'].includes(m) ||
    m.endsWith('+json') ||
    m.endsWith('+xml')
  );
}

/** Character (code point), word and line statistics of a text, `wc`-style for lines: a final newline ends a line. */
export function textStatistics(text: string) {
  const chars = [...text].length;
  const words = text.split(/\s+/u).filter(Boolean).length;
  const breaks = (text.match(/\r\n|\r|\n/g) ?? []).length;
  const lines = text.length === 0 ? 0 : breaks + (/(\r\n|\r|\n)$/.test(text) ? 0 : 1);
  return { chars, words, lines, preview: [...text].slice(0, PREVIEW_CHARS).join('') };
}

/** A failure that retrying cannot fix: the document ends ERROR at once. */
class PoisonedDocument extends Error {}

/**
 * `document-process`: UPLOADED → PROCESSING → PROCESSED | ERROR. Runs as the uploader in the tenant (same RLS
 * context as the request). Idempotent: a document already finished is left alone; a retry redoes the extraction.
 */
export const documentProcessQueue: QueueDefinition<DocumentProcessPayload> = {
  name: 'document-process',
  retryLimit: 3,
  retryDelay: 1,
  retryBackoff: true,
  expireInSeconds: 300,
  async handle(services: Services, data, job) {
    const ctx = { userId: data.userId, tenant: null, requestId: data.requestId };
    const doc = await services.db.withContext(ctx, async (tx) => {
      const d = await tx.document.findUnique({ where: { tenantId_id: { tenantId: data.tenantId, id: data.documentId } }, include: { file: true } });
      if (!d || d.status === 'PROCESSED' || d.status === 'ERROR') return null;
      await tx.document.update({ where: { tenantId_id: { tenantId: d.tenantId, id: d.id } }, data: { status: 'PROCESSING', updatedAt: new Date() }, select: { id: true } });
      return d;
    });
    if (!doc) return { skipped: true };
    const finish = (fields: Record<string, unknown>) =>
      services.db.withContext(ctx, (tx) =>
        tx.document.updateMany({ where: { tenantId: doc.tenantId, id: doc.id }, data: { ...fields, processedAt: new Date(), updatedAt: new Date() } }),
      );
    try {
      if (!isTextLike(doc.mimeType)) {
        await finish({ status: 'PROCESSED', error: null });
        return { text: false };
      }
      if (Number(doc.file.sizeBytes) > MAX_TEXT_BYTES) {
        await finish({ status: 'PROCESSED', error: null });
        return { text: false, reason: 'too large for text extraction' };
      }
      const bytes = await services.storage.read(doc.file.objectKey, MAX_TEXT_BYTES);
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        throw new PoisonedDocument(`the file is declared ${doc.mimeType} but is not valid UTF-8 text`);
      }
      const stats = textStatistics(text.replace(/^\uFEFF/, ''));
      await finish({ status: 'PROCESSED', error: null, charCount: stats.chars, wordCount: stats.words, lineCount: stats.lines, preview: stats.preview });
      return { text: true, ...stats, preview: undefined };
    } catch (e) {
      const lastAttempt = job.retryCount >= job.retryLimit;
      if (e instanceof PoisonedDocument || lastAttempt) {
        const reason = e instanceof PoisonedDocument ? e.message : `processing failed after ${job.retryCount + 1} attempts: ${(e as Error).message}`;
        await finish({ status: 'ERROR', error: reason });
        return { error: reason };
      }
      // Transient (storage or database): back to UPLOADED so the retry starts clean.
      await services.db
        .withContext(ctx, (tx) => tx.document.updateMany({ where: { tenantId: doc.tenantId, id: doc.id, status: 'PROCESSING' }, data: { status: 'UPLOADED' } }))
        .catch(() => undefined);
      throw e;
    }
  },
};
