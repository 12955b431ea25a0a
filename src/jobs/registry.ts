import type { QueueDefinition } from './queue.ts';
import { documentProcessQueue } from '../modules/documents/processing.ts';
import { storageDeleteObjectQueue, uploadExpireQueue } from '../modules/documents/cleanup.ts';
import { authEventExpireQueue } from '../modules/identity/jobs.ts';
import { siteProvisionQueue } from '../modules/sites/provisioning.ts';
import { sitePurgeQueue } from '../modules/sites/purge.ts';
import { siteCredentialsQueue } from '../modules/sites/credentials.ts';
import { siteDropOldCopiesQueue, siteMoveQueue } from '../modules/sites/move.ts';
import { siteApplyPlanQueue, siteMeasureAllQueue, siteMeasureQueue } from '../modules/sites/usage.ts';
import { tenantPurgeQueue } from '../modules/tenants/purge.ts';
import { tenantExportQueue } from '../modules/backups/export.ts';
import { databaseServerCheckQueue, serverActivateQueue, storageCheckQueue } from '../modules/fleet/checks.ts';
import { registryCheckQueue } from '../modules/releases/registries.ts';
import { benchArchiveQueue, benchDeployQueue, deployCandidateBuildQueue } from '../modules/releases/jobs.ts';
import { siteAppChangeQueue, siteModuleJobQueue, siteModuleJobsScheduleQueue, siteUpdateQueue } from '../modules/releases/site-modules.ts';
import { backupDeleteObjectsQueue, backupExpireQueue, siteBackupQueue, siteBackupScheduleQueue, siteRestoreQueue } from '../modules/backups/jobs.ts';

/** Every queue of the deployment, created at start-up with its retry and expiry options. */
export const QUEUES: QueueDefinition[] = [
  documentProcessQueue,
  storageDeleteObjectQueue,
  uploadExpireQueue,
  siteProvisionQueue,
  siteCredentialsQueue,
  siteMeasureQueue,
  siteMeasureAllQueue,
  siteApplyPlanQueue,
  siteMoveQueue,
  siteDropOldCopiesQueue,
  sitePurgeQueue,
  siteBackupQueue,
  siteRestoreQueue,
  siteBackupScheduleQueue,
  backupExpireQueue,
  backupDeleteObjectsQueue,
  tenantExportQueue,
  authEventExpireQueue,
  tenantPurgeQueue,
  databaseServerCheckQueue,
  storageCheckQueue,
  serverActivateQueue,
  registryCheckQueue,
  deployCandidateBuildQueue,
  benchDeployQueue,
  benchArchiveQueue,
  siteAppChangeQueue,
  siteUpdateQueue,
  siteModuleJobQueue,
  siteModuleJobsScheduleQueue,
];
