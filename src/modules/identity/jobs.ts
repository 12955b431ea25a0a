import { maintenanceQueue } from '../../jobs/queue.ts';

/** Rows deleted per statement: bounded locks and WAL per step, however many are due. */
const BATCH = 5_000;

/**
 * `auth-event-expire` (maintenance, hourly): authentication events older than AUTH_EVENT_RETENTION_DAYS are deleted
 * (oldest first, through auth_events_created_at, in batches). Login throttling reads only the last 15 minutes.
 */
export const authEventExpireQueue = maintenanceQueue({
  name: 'auth-event-expire',
  retryLimit: 3,
  retryDelay: 60,
  retryBackoff: true,
  expireInSeconds: 600,
  cron: '41 * * * *',
  async run(services, _data, job) {
    const days = services.config.auth.authEventRetentionDays;
    let deleted = 0;
    for (;;) {
      const r = await services.ownerPool.query(
        `delete from app_private.auth_events where id in
           (select id from app_private.auth_events where created_at < now() - make_interval(days => $1) order by created_at limit $2)`,
        [days, BATCH],
      );
      deleted += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < BATCH || job.signal.aborted) break;
    }
    return { deleted, retentionDays: days };
  },
});
