import crypto from 'node:crypto';
import type { Context } from '../../graphql/context.ts';
import { badInput, notFound } from '../../graphql/errors.ts';
import { tenantQueue } from '../../jobs/queue.ts';
import type { WorkerServices } from '../../services.ts';
import { getSecret, putSiteSecret } from '../../secrets/store.ts';
import { requirePermission } from '../access/permissions.ts';
import { audited, recordAudit } from '../audit/service.ts';
import { PermanentJobError } from '../jobs/run.ts';
import { enqueueTrackedJob } from '../jobs/service.ts';
import { endLoginSessions, inTransaction, setLoginPassword, siteHome, type SiteHome } from './hosting.ts';

/** 32 characters of base64url (192 bits): strong, and safe in a connection URL without escaping. */
export function generateSitePassword() {
  return crypto.randomBytes(24).toString('base64url');
}

/** In a request: a new password for the site, sealed and stored (app.put_site_secret); the caller shows it once. */
export async function newSitePassword(ctx: Context, tenantId: string, siteId: string) {
  const password = generateSitePassword();
  await putSiteSecret(ctx.db, ctx.services.secrets, tenantId, siteId, password);
  return password;
}

/** In a job: gives the site's login role on its server the stored password (as a SCRAM verifier). */
export async function applySitePassword(services: WorkerServices, tenantId: string, siteId: string, home: SiteHome) {
  const password = await getSecret(services.ownerPool, services.secrets, 'site-password', siteId, tenantId);
  if (password === null) throw new PermanentJobError('the site has no password stored');
  await inTransaction(await services.fleet.pool(home.serverId), (c) => setLoginPassword(c, home, password));
}

/**
 * resetSitePassword: a new password, shown once in the answer; the `site-credentials` job gives it to the site's
 * login role and ends the sessions opened with the old one. Until that job completes, the old password still works.
 */
export function resetSitePassword(ctx: Context, tenantId: string, siteId: string) {
  return audited(ctx, { tenantId, action: 'resetSitePassword', targetType: 'Site', targetId: siteId }, async () => {
    await requirePermission(ctx, tenantId, 'sites:write');
    const site = await ctx.db.site.findUnique({ where: { tenantId_id: { tenantId, id: siteId } }, select: { status: true, loginRole: true } });
    if (!site) throw notFound('site');
    if (!site.loginRole || site.status === 'SOFT_DELETED' || site.status === 'DELETED') {
      throw badInput('siteId', `the site is ${site.status}: it has no login to reset`);
    }
    if (site.status === 'MOVING') throw badInput('siteId', 'the site is moving: reset its password once the move has ended');
    const password = await newSitePassword(ctx, tenantId, siteId);
    const job = await enqueueTrackedJob(ctx, 'site-credentials', { tenantId, siteId, args: { siteId } });
    await recordAudit(ctx, { tenantId, action: 'resetSitePassword', targetType: 'Site', targetId: siteId });
    return { password, job };
  });
}

/** `site-credentials`: applies the stored password to the site's login role and ends its other sessions. */
export const siteCredentialsQueue = tenantQueue({
  name: 'site-credentials',
  retryLimit: 3,
  retryDelay: 2,
  retryBackoff: true,
  expireInSeconds: 300,
  async run(run) {
    const services = run.services;
    const site = await run.withDb((tx) => tx.site.findUnique({ where: { tenantId_id: { tenantId: run.tenantId, id: run.args.siteId } } }));
    if (!site?.databaseServerId) throw new PermanentJobError('the site is not placed on a database server');
    const home = await siteHome(services, site);
    await run.progress(30, 'setting the password');
    await applySitePassword(services, site.tenantId, site.id, home);
    await run.progress(70, 'ending old sessions');
    const pool = await services.fleet.pool(home.serverId);
    return { login: home.loginRole, sessionsEnded: await endLoginSessions(pool, home) };
  },
});
