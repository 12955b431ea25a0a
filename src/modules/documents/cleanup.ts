import type { QueueDefinition, JobPayload } from '../../jobs/queue.ts';

export interface DeleteObjectPayload extends JobPayload {
  objectKey: string;
  multipartUploadId?: string | null;
}

/**
 * `storage-delete-object`: removes bytes after the transaction that stopped referencing them committed
 * (enqueued in that transaction). Skips objects a file row still points to, so a retry or a race never loses data.
 */
export const storageDeleteObjectQueue: QueueDefinition<DeleteObjectPayload> = {
  name: 'storage-delete-object',
  retryLimit: 5,
  retryDelay: 2,
  retryBackoff: true,
  expireInSeconds: 120,
  async handle(services, data) {
    if (!data.objectKey.startsWith(`tenants/${data.tenantId}/`)) throw new Error('object key outside the tenant prefix');
    const stillUsed = await services.db.withContext({ userId: data.userId, requestId: data.requestId }, (tx) =>
      tx.file.count({ where: { tenantId: data.tenantId, objectKey: data.objectKey } }),
    );
    if (stillUsed > 0) return { kept: true };
    if (data.multipartUploadId) await services.storage.abortMultipart(data.objectKey, data.multipartUploadId);
    await services.storage.delete(data.objectKey);
    return { deleted: data.objectKey };
  },
};
