import { maintenanceQueue, tenantQueue } from '../../jobs/queue.ts';
import type { WorkerServices } from '../../services.ts';
import { isReachable } from '../fleet/app-servers.ts';
import { PermanentJobError, type JobRun } from '../jobs/run.ts';
import { BuildFailed, buildCandidate, type BuildReport } from './build.ts';
import { clusterRegistry } from './registries.ts';
import { resolveSource } from './sources.ts';

/**
 * The jobs of releases (issue 11 §2–§3), tracked like every tenant job (live progress, step, log, cancel):
 * `deploy-candidate-build` builds a candidate (build.ts) and `bench-deploy` waits for every app server of the
 * bench's cluster to pull and verify the candidate (artifacts.ts). Both read what they work on as the member who
 * asked (RLS); what they find — the image and its digests, ACTIVE or BROKEN — is written with the owner pool, as the
 * request role may not write it (sql/0036).
 */

async function setCandidateStatus(run: JobRun<unknown>, candidateId: string, status: 'RUNNING' | 'PENDING' | 'FAILURE', error: string | null = null) {
  await run.withDb((tx) => tx.deployCandidate.updateMany({ where: { tenantId: run.tenantId, id: candidateId, status: { notIn: ['SUCCESS', 'FAILURE'] } }, data: { status, error, updatedAt: new Date() } }));
}

/** The first active, checked database server of the cluster, as its admin: where the trial's scratch schema goes. */
async function trialDatabase(services: WorkerServices, clusterId: string) {
  const { rows } = await services.ownerPool.query<{ server_id: string }>(
    `select d.server_id::text from app_public.database_servers d join app_public.servers s on s.id = d.server_id
      where s.cluster_id = $1 and s.status = 'ACTIVE' and d.check_status = 'PASSED' order by d.created_at limit 1`,
    [clusterId],
  );
  if (!rows[0]) throw new PermanentJobError('the cluster has no active, checked database server to try the migrations on');
  const endpoint = await services.fleet.server(rows[0].server_id);
  return services.fleet.clientConfig(endpoint, endpoint.sitesDatabase);
}

export const deployCandidateBuildQueue = tenantQueue({
  name: 'deploy-candidate-build',
  retryLimit: 2,
  retryDelay: 2,
  retryBackoff: true,
  expireInSeconds: 1800,
  heartbeatSeconds: 10,
  async run(run) {
    const { candidateId } = run.args;
    const candidate = await run.withDb((tx) =>
      tx.deployCandidate.findUnique({
        where: { tenantId_id: { tenantId: run.tenantId, id: candidateId } },
        include: {
          group: { include: { tenant: { select: { slug: true } }, apps: { orderBy: { position: 'asc' }, include: { source: true } } } },
          cluster: { select: { name: true } },
        },
      }),
    );
    if (!candidate) throw new PermanentJobError('the deploy candidate no longer exists');
    if (candidate.status === 'SUCCESS') return { imageName: candidate.imageName, imageTag: candidate.imageTag, manifestDigest: candidate.manifestDigest, resumed: 'already built' };
    if (candidate.status === 'FAILURE') throw new PermanentJobError(candidate.error ?? 'the build failed');
    if (candidate.status === 'DRAFT') throw new PermanentJobError('the candidate is a draft');
    await setCandidateStatus(run, candidateId, 'RUNNING');
    await run.progress(1, 'preparing', `building ${candidate.group.title} for cluster ${candidate.cluster.name}: ${candidate.group.apps.length} app${candidate.group.apps.length === 1 ? '' : 's'}`);
    const services = run.services;
    let registry;
    try {
      registry = await clusterRegistry(services, candidate.clusterId);
    } catch (e) {
      throw new PermanentJobError((e as Error).message);
    }
    const apps = [];
    for (const { source } of candidate.group.apps) {
      try {
        apps.push(await resolveSource(services.config, { repositoryUrl: source.repositoryUrl, branch: source.branch, version: source.version, path: source.path }));
      } catch (e) {
        throw new PermanentJobError((e as Error).message);
      }
    }
    const report: BuildReport = (step, progress, line) => run.progress(progress, step, line);
    let built;
    try {
      built = await buildCandidate(
        {
          group: { id: candidate.groupId, title: candidate.group.title },
          apps,
          registry,
          repository: `${registry.namespace}/${candidate.group.tenant.slug}/${candidate.group.name}`,
          tag: candidateId,
          trialDatabase: await trialDatabase(services, candidate.clusterId),
        },
        report,
      );
    } catch (e) {
      // A build that failed on its own terms (a manifest, a migration, the registry) is not retried: it would fail again.
      if (e instanceof BuildFailed) throw new PermanentJobError(e.message);
      throw e;
    }
    const updated = await services.ownerPool.query(
      `update app_public.deploy_candidates
          set status = 'SUCCESS', image_name = $3, image_tag = $4, manifest_digest = $5, layer_digest = $6, apps = $7::jsonb, error = null, updated_at = now()
        where tenant_id = $1 and id = $2 and status = 'RUNNING'`,
      [run.tenantId, candidateId, built.imageName, built.imageTag, built.manifestDigest, built.layerDigest, JSON.stringify(built.apps)],
    );
    if (!updated.rowCount) throw new PermanentJobError('the candidate changed while it was built');
    return { imageName: built.imageName, imageTag: built.imageTag, manifestDigest: built.manifestDigest, layerDigest: built.layerDigest, apps: built.apps };
  },
  async onFailed(run, error) {
    await setCandidateStatus(run, run.args.candidateId, 'FAILURE', error).catch(() => undefined);
  },
  async onCancelled(run) {
    await setCandidateStatus(run, run.args.candidateId, 'FAILURE', 'cancelled').catch(() => undefined);
  },
});

async function finishBench(services: WorkerServices, tenantId: string, benchId: string, status: 'ACTIVE' | 'BROKEN', reason: string | null) {
  await services.ownerPool.query(
    `update app_public.benches set status = $3::app_public.bench_status, reason = $4, updated_at = now(), activated_at = case when $3::text = 'ACTIVE' then now() end
      where tenant_id = $1 and id = $2 and status = 'PENDING'`,
    [tenantId, benchId, status, reason],
  );
}

export const benchDeployQueue = tenantQueue({
  name: 'bench-deploy',
  retryLimit: 2,
  retryDelay: 2,
  retryBackoff: true,
  expireInSeconds: 3600,
  heartbeatSeconds: 10,
  async run(run) {
    const { benchId } = run.args;
    const services = run.services;
    const bench = await run.withDb((tx) =>
      tx.bench.findUnique({ where: { tenantId_id: { tenantId: run.tenantId, id: benchId } }, include: { candidate: { select: { imageName: true, imageTag: true, layerDigest: true } }, cluster: { select: { name: true } } } }),
    );
    if (!bench) throw new PermanentJobError('the bench no longer exists');
    if (bench.status !== 'PENDING') return { status: bench.status, reason: bench.reason, resumed: 'already decided' };
    // The app servers asked to pull: the cluster's active ones that beat lately (asked once; a retry keeps the list).
    const { rows: servers } = await services.ownerPool.query<{ id: string; name: string; last_heartbeat_at: Date | null; process: unknown }>(
      `select id::text, name, last_heartbeat_at, process from app_public.servers where cluster_id = $1 and type = 'APP' and status = 'ACTIVE' order by name`,
      [bench.clusterId],
    );
    const reachable = servers.filter((s) => isReachable(s.last_heartbeat_at, s.process));
    await services.ownerPool.query(
      `insert into app_public.bench_servers (tenant_id, bench_id, server_id, server_name) select $1, $2, s.id, s.name from unnest($3::uuid[], $4::text[]) as s (id, name)
       on conflict do nothing`,
      [run.tenantId, benchId, reachable.map((s) => s.id), reachable.map((s) => s.name)],
    );
    const { rows: asked } = await services.ownerPool.query<{ server_id: string }>(`select server_id::text from app_public.bench_servers where tenant_id = $1 and bench_id = $2`, [run.tenantId, benchId]);
    if (!asked.length) {
      const why = `no app server of cluster ${bench.cluster.name} is reachable: start a worker there (npm run worker with WORKER_CLUSTER=${bench.cluster.name})`;
      await finishBench(services, run.tenantId, benchId, 'BROKEN', why);
      return { status: 'BROKEN', reason: why };
    }
    const names = new Map(servers.map((s) => [s.id, s.name]));
    await run.progress(5, 'waiting for the app servers to pull', `${bench.candidate.imageName}:${bench.candidate.imageTag} (${bench.candidate.layerDigest}) on ${asked.map((a) => names.get(a.server_id) ?? a.server_id).join(', ')}`);
    const deadline = bench.createdAt.getTime() + services.config.releases.benchDeployTimeoutSeconds * 1000;
    const seen = new Set<string>();
    for (;;) {
      const { rows } = await services.ownerPool.query<{ server_id: string; status: string; digest: string | null; error: string | null }>(
        `select server_id::text, status::text, digest, error from app_public.bench_servers where tenant_id = $1 and bench_id = $2`,
        [run.tenantId, benchId],
      );
      for (const r of rows.filter((r) => r.status !== 'PENDING' && !seen.has(r.server_id))) {
        seen.add(r.server_id);
        const name = names.get(r.server_id) ?? r.server_id;
        await run.progress(5 + Math.round((seen.size / rows.length) * 90), 'waiting for the app servers to pull', r.status === 'PULLED' ? `${name}: pulled and verified ${r.digest}` : `${name}: ${r.error}`);
      }
      const failed = rows.filter((r) => r.status === 'FAILED' || (r.status === 'PULLED' && r.digest !== bench.candidate.layerDigest));
      if (failed.length) {
        const why = failed.map((r) => `${names.get(r.server_id) ?? r.server_id}: ${r.error ?? `reported ${r.digest}, not ${bench.candidate.layerDigest}`}`).join('; ');
        await finishBench(services, run.tenantId, benchId, 'BROKEN', why);
        return { status: 'BROKEN', reason: why };
      }
      if (rows.every((r) => r.status === 'PULLED')) {
        await finishBench(services, run.tenantId, benchId, 'ACTIVE', null);
        await run.progress(100, 'active', `every app server holds ${bench.candidate.layerDigest}`);
        return { status: 'ACTIVE', servers: rows.length };
      }
      if (Date.now() > deadline) {
        const silent = rows.filter((r) => r.status === 'PENDING').map((r) => names.get(r.server_id) ?? r.server_id);
        const why = `${silent.join(', ')} did not report within ${services.config.releases.benchDeployTimeoutSeconds} s (BENCH_DEPLOY_TIMEOUT_SECONDS)`;
        await finishBench(services, run.tenantId, benchId, 'BROKEN', why);
        return { status: 'BROKEN', reason: why };
      }
      await run.checkpoint();
      await new Promise((r) => setTimeout(r, 500));
    }
  },
  async onFailed(run, error) {
    await finishBench(run.services, run.tenantId, run.args.benchId, 'BROKEN', error).catch(() => undefined);
  },
  async onCancelled(run) {
    await finishBench(run.services, run.tenantId, run.args.benchId, 'BROKEN', 'cancelled').catch(() => undefined);
  },
});

/**
 * `bench-archive` (every 15 minutes): a bench stays while sites run it (issue 11 §3). Once no live site uses it and
 * a newer ACTIVE bench of its group exists in its cluster, it is ARCHIVED: no new site goes to it, updates leave it.
 */
export const benchArchiveQueue = maintenanceQueue({
  name: 'bench-archive',
  cron: '*/15 * * * *',
  retryLimit: 1,
  retryDelay: 60,
  retryBackoff: false,
  expireInSeconds: 300,
  async run(services, _data, job) {
    const { rows } = await services.ownerPool.query<{ tenant_id: string; id: string }>(
      `update app_public.benches b set status = 'ARCHIVED', updated_at = now()
        where b.status in ('ACTIVE', 'BROKEN')
          and not exists (select 1 from app_public.sites s where s.bench_tenant_id = b.tenant_id and s.bench_id = b.id and s.status <> 'DELETED')
          and exists (select 1 from app_public.benches n
                       where n.tenant_id = b.tenant_id and n.group_id = b.group_id and n.cluster_id = b.cluster_id and n.status = 'ACTIVE'
                         and n.activated_at > coalesce(b.activated_at, b.created_at))
        returning b.tenant_id::text, b.id::text`,
    );
    if (rows.length) job.log.info({ benches: rows.map((r) => r.id) }, 'benches archived');
    return { archived: rows.length };
  },
});
