import { tenantQueue } from '../../jobs/queue.ts';
import { PermanentJobError } from '../jobs/run.ts';

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

/**
 * `document-process`: UPLOADED → PROCESSING → PROCESSED | ERROR, a tracked job like every tenant job. Runs as the
 * uploader in the tenant (same RLS context as the request). Idempotent: a document already finished is left alone;
 * a retry redoes the extraction. A file that is not what it claims ends ERROR at once; transient failures retry.
 */
export const documentProcessQueue = tenantQueue({
  name: 'document-process',
  retryLimit: 3,
  retryDelay: 1,
  retryBackoff: true,
  expireInSeconds: 300,
  // A worker (or its database connection) lost mid-job: another retries after 10 s, not after the 300 s expiry.
  heartbeatSeconds: 10,
  async run(run) {
    const { tenantId } = run;
    const doc = await run.withDb(async (tx) => {
      const d = await tx.document.findUnique({ where: { tenantId_id: { tenantId, id: run.args.documentId } }, include: { file: true } });
      if (!d || d.status === 'PROCESSED' || d.status === 'ERROR') return null;
      await tx.document.update({ where: { tenantId_id: { tenantId, id: d.id } }, data: { status: 'PROCESSING', updatedAt: new Date() }, select: { id: true } });
      return d;
    });
    if (!doc) return { skipped: true };
    const finish = (fields: Record<string, unknown>) =>
      run.withDb((tx) => tx.document.updateMany({ where: { tenantId, id: doc.id }, data: { ...fields, processedAt: new Date(), updatedAt: new Date() } }));
    try {
      if (!isTextLike(doc.mimeType)) {
        await finish({ status: 'PROCESSED', error: null });
        return { text: false };
      }
      if (Number(doc.file.sizeBytes) > MAX_TEXT_BYTES) {
        await finish({ status: 'PROCESSED', error: null });
        return { text: false, reason: 'too large for text extraction' };
      }
      const bytes = await run.services.storage.read(doc.file.objectKey, MAX_TEXT_BYTES);
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        throw new PermanentJobError(`the file is declared ${doc.mimeType} but is not valid UTF-8 text`);
      }
      const stats = textStatistics(text.replace(/^\uFEFF/, ''));
      await finish({ status: 'PROCESSED', error: null, charCount: stats.chars, wordCount: stats.words, lineCount: stats.lines, preview: stats.preview });
      return { text: true, ...stats, preview: undefined };
    } catch (e) {
      // Back to UPLOADED so a retry starts clean; after the last attempt onFailed makes it ERROR.
      if (!(e instanceof PermanentJobError)) {
        await run
          .withDb((tx) => tx.document.updateMany({ where: { tenantId, id: doc.id, status: 'PROCESSING' }, data: { status: 'UPLOADED' } }))
          .catch(() => undefined);
      }
      throw e;
    }
  },
  async onFailed(run, error) {
    await run.withDb((tx) =>
      tx.document.updateMany({
        where: { tenantId: run.tenantId, id: run.args.documentId, status: { in: ['UPLOADED', 'PROCESSING'] } },
        data: { status: 'ERROR', error, processedAt: new Date(), updatedAt: new Date() },
      }),
    );
  },
});
