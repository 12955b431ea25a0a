import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { WorkerServices } from '../../services.ts';
import { describeFailure } from '../../faults.ts';
import { parseManifest, type AppBundle } from './app-format.ts';
import { RELEASE_LAYER } from './package.ts';
import { unpackRelease } from './package.ts';
import { digestOf, pullBlob, pullManifest, RegistryError } from './registry.ts';
import { clusterRegistry } from './registries.ts';

/**
 * A deploy candidate's artifact on an app server (issue 11 §3): pulled from its cluster's registry by manifest digest,
 * the manifest's layer checked against the digest the build recorded, every byte of the layer checked against it,
 * then kept under RELEASES_DIR/artifacts/<sha256>.tar — content-addressed, so a cached file is checked again when it is
 * read and a corrupt one is pulled anew.
 */
export interface CandidateImage {
  clusterId: string;
  imageName: string;
  manifestDigest: string;
  layerDigest: string;
}

const cachePath = (services: WorkerServices, digest: string) => path.join(services.config.releases.dir, 'artifacts', `${digest.replace(/^sha256:/, '')}.tar`);

/** `<registry host>/<repository>` → the repository. */
function repositoryOf(imageName: string) {
  const slash = imageName.indexOf('/');
  return slash < 0 ? imageName : imageName.slice(slash + 1);
}

/** Pulls (or finds in the cache) and verifies the candidate's release tar. */
export async function pullArtifact(services: WorkerServices, image: CandidateImage): Promise<Uint8Array> {
  const file = cachePath(services, image.layerDigest);
  const cached = await fs.readFile(file).catch(() => null);
  if (cached && digestOf(cached) === image.layerDigest) return new Uint8Array(cached);
  const registry = await clusterRegistry(services, image.clusterId);
  const repository = repositoryOf(image.imageName);
  const manifest = await pullManifest(registry, repository, image.manifestDigest);
  const layer = manifest.layers?.find((l) => l.mediaType === RELEASE_LAYER);
  if (layer?.digest !== image.layerDigest) throw new RegistryError(`the manifest ${image.manifestDigest} names layer ${layer?.digest ?? 'none'}, not the built ${image.layerDigest}: refused`);
  const bytes = await pullBlob(registry, repository, image.layerDigest);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.partial`;
  await fs.writeFile(partial, bytes);
  await fs.rename(partial, file);
  return bytes;
}

/** The apps of a release tar, in the order release.json lists them. */
export async function releaseApps(bytes: Uint8Array): Promise<AppBundle[]> {
  const files = await unpackRelease(bytes);
  const release = JSON.parse(files['release.json'] ?? '{"apps":[]}') as { apps: Array<{ name: string }> };
  return release.apps.map(({ name }) => {
    const manifest = parseManifest(files[`${name}/tenantplane-app.json`] ?? '');
    const own: Record<string, string> = {};
    for (const [file, text] of Object.entries(files)) if (file.startsWith(`${name}/`) && file !== `${name}/tenantplane-app.json`) own[file.slice(name.length + 1)] = text;
    return { manifest, files: own };
  });
}

interface PendingPull extends CandidateImage {
  tenantId: string;
  benchId: string;
}

/**
 * The app server's side of a bench deploy: every BENCH_PULL_POLL_SECONDS it takes the pulls asked of it
 * (bench_servers PENDING with its server id), pulls and verifies each artifact, and reports PULLED with the digest
 * or FAILED with the reason. A pull that fails on a dropped connection is reported as such; the deploy decides.
 */
export function startBenchPuller(services: WorkerServices, serverId: () => string, log: Logger) {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let lastWarning = 0;
  const tick = async () => {
    try {
      const { rows } = await services.ownerPool.query<PendingPull>(
        `select bs.tenant_id as "tenantId", bs.bench_id as "benchId", c.cluster_id as "clusterId", c.image_name as "imageName",
                c.manifest_digest as "manifestDigest", c.layer_digest as "layerDigest"
           from app_public.bench_servers bs
           join app_public.benches b on b.tenant_id = bs.tenant_id and b.id = bs.bench_id
           join app_public.deploy_candidates c on c.tenant_id = b.tenant_id and c.id = b.candidate_id
          where bs.server_id = $1 and bs.status = 'PENDING' and c.status = 'SUCCESS'`,
        [serverId()],
      );
      for (const pull of rows) {
        if (stopped) return;
        let error: string | null = null;
        try {
          await pullArtifact(services, pull);
        } catch (e) {
          error = e instanceof RegistryError ? e.message : describeFailure(e);
        }
        await services.ownerPool.query(
          `update app_public.bench_servers set status = $4, digest = $5, error = $6, reported_at = now()
            where tenant_id = $1 and bench_id = $2 and server_id = $3 and status = 'PENDING'`,
          [pull.tenantId, pull.benchId, serverId(), error ? 'FAILED' : 'PULLED', error ? null : pull.layerDigest, error],
        );
        log.info({ benchId: pull.benchId, digest: pull.layerDigest, error }, error ? 'bench pull failed' : 'bench pulled');
      }
    } catch (err) {
      if (Date.now() - lastWarning > 60_000) {
        lastWarning = Date.now();
        log.warn({ reason: describeFailure(err) }, 'bench pulls could not be read (retrying)');
      }
    }
  };
  const timer = setInterval(() => {
    running = running.then(tick);
  }, services.config.releases.benchPullPollSeconds * 1000);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
