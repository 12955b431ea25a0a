import { dropDueOldCopies } from './move.ts';
import { maintenanceQueue } from '../../jobs/queue.ts';
import { asOwner } from './provisioning.ts';
import { siteSchemaName } from './apps.ts';
import { dropSiteHome, siteHome } from './hosting.ts';
import { deleteSecret } from '../../secrets/store.ts';

/**
 * `site-purge` (maintenance, every 15 minutes, owner role): soft-deleted sites whose retention has ended lose their
 * schema, role and files, and become DELETED. Each site in its own transaction; a crash resumes where it stopped.
 */
export const sitePurgeQueue = maintenanceQueue({
  name: 'site-purge',
  retryLimit: 3,
  retryDelay: 30,
  retryBackoff: true,
  expireInSeconds: 900,
  cron: '*/15 * * * *',
  async run(services) {
    const due = await services.ownerPool.query<{ tenant_id: string; id: string; name: string; cluster_id: string; databaseServerId: string | null; isolation: 'SCHEMA' | 'DATABASE'; databaseName: string | null }>(
      `select tenant_id, id, name, cluster_id, database_server_id as "databaseServerId", isolation, database_name as "databaseName"
         from app_public.sites where status = 'SOFT_DELETED' and retention_until <= now() order by retention_until limit 100`,
    );
    const purged: string[] = [];
    for (const site of due.rows) {
      const schema = siteSchemaName(site.id);
      const { storage } = await services.fleet.storage(site.cluster_id);
      await storage.deletePrefix(`tenants/${site.tenant_id}/sites/${site.id}/`);
      // On its own server: its schema or database, and its login and owner roles.
      // The copies earlier moves left behind, then its home.
      await dropDueOldCopies(services, { tenantId: site.tenant_id, siteId: site.id, now: true });
      if (site.databaseServerId) await dropSiteHome(services, await siteHome(services, { ...site, id: site.id }));
      // One commit: the site is DELETED only with its password gone (a reader seeing DELETED finds no secret).
      await asOwner(services.ownerPool, async (c) => {
        await deleteSecret(c, 'site-password', site.id, site.tenant_id);
        await c.query(`delete from app_public.tenant_schemas where tenant_id = $1 and schema_name = $2`, [site.tenant_id, schema]);
        await c.query(
          `update app_public.sites set status = 'DELETED', schema_name = null, updated_at = now() where tenant_id = $1 and id = $2 and status = 'SOFT_DELETED'`,
          [site.tenant_id, site.id],
        );
      });
      services.log.info({ siteId: site.id, name: site.name }, 'site purged after retention');
      purged.push(site.id);
    }
    return { purged };
  },
});
