import { maintenanceQueue } from '../../jobs/queue.ts';
import { RefusedJob } from '../jobs/run.ts';

/**
 * `storage-delete-object` (maintenance): removes bytes after the transaction that stopped referencing them
 * committed — enqueued by the database itself (sql/0014: a file row deleted, or an upload completed onto a file
 * that already held its bytes), never by a request. It deletes only an object of the named tenant's own prefix that
 * no file row and no unfinished upload points to, so a forged, repeated or racing job never loses data.
 */
export const storageDeleteObjectQueue = maintenanceQueue({
  name: 'storage-delete-object',
  retryLimit: 5,
  retryDelay: 2,
  retryBackoff: true,
  expireInSeconds: 120,
  async run(services, data) {
    const key = new RegExp(`^tenants/${data.tenantId}/objects/[0-9a-f-]{36}$`);
    if (!key.test(data.objectKey)) throw new RefusedJob('the object key is not an object of the tenant it names');
    const { rows } = await services.ownerPool.query<{ files: number; open: number; multipart: string[] }>(
      `select (select count(*)::int from app_public.files where tenant_id = $1 and object_key = $2) as files,
              (select count(*)::int from app_public.uploads
                where tenant_id = $1 and object_key = $2 and completed_at is null and expires_at > now()) as open,
              array(select multipart_upload_id from app_public.uploads
                     where tenant_id = $1 and object_key = $2 and multipart_upload_id is not null) as multipart`,
      [data.tenantId, data.objectKey],
    );
    const { files, open, multipart } = rows[0]!;
    if (files > 0 || open > 0) return { kept: true };
    for (const id of multipart) await services.storage.abortMultipart(data.objectKey, id).catch(() => undefined);
    await services.storage.delete(data.objectKey);
    return { deleted: data.objectKey };
  },
});

/**
 * `upload-expire` (maintenance, every 15 minutes): uploads announced but never completed lose their row once
 * expired (completeUpload refuses them anyway); the uploads_delete_abandoned_object trigger (sql/0015) then enqueues
 * the deletion of whatever bytes the client sent, so an abandoned upload neither reserves quota nor keeps storage.
 */
export const uploadExpireQueue = maintenanceQueue({
  name: 'upload-expire',
  retryLimit: 3,
  retryDelay: 60,
  retryBackoff: true,
  expireInSeconds: 600,
  cron: '*/15 * * * *',
  async run(services) {
    const expired = await services.ownerPool.query(
      `delete from app_public.uploads where (tenant_id, id) in
         (select tenant_id, id from app_public.uploads where completed_at is null and expires_at <= now() order by expires_at limit 1000)`,
    );
    return { expired: expired.rowCount };
  },
});
