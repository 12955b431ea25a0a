import type pg from 'pg';
import { AppFormatError } from './app-format.ts';
import { AppSourceError, fetchApp, type AppSourceRef, type FetchedApp } from './git.ts';
import { packRelease, RELEASE_ARTIFACT, RELEASE_LAYER } from './package.ts';
import { OCI_EMPTY_CONFIG, OCI_MANIFEST, RegistryError, pullBlob, pullManifest, pushBlob, putManifest, type RegistryAccess } from './registry.ts';
import { TrialFailed, trialMigrations } from './trial.ts';

/**
 * A deploy candidate's build (issue 11 §2), start to end, for the job that runs it: fetch each app at its version,
 * check its manifest, run every migration from empty in a scratch schema (trial.ts), pack the release (one
 * deterministic tar), push it to the cluster's registry as an OCI artifact, then pull it back by digest and check
 * every byte. `report` gets each step with a progress figure and log lines; any failure is a BuildFailed whose
 * message says which step and why, with the log so far.
 */
export interface BuildSpec {
  group: { id: string; title: string };
  apps: AppSourceRef[];
  registry: RegistryAccess;
  /** `<namespace>/<group name>`: lowercase, OCI's repository grammar. */
  repository: string;
  tag: string;
  /** The scratch database of the trial: a database server's sites database, as its admin. */
  trialDatabase: pg.ClientConfig;
}

export interface BuiltCandidate {
  imageName: string;
  imageTag: string;
  manifestDigest: string;
  layerDigest: string;
  apps: Array<{ name: string; version: string; commit: string }>;
  log: string[];
}

export type BuildReport = (step: string, progress: number, line?: string) => void | Promise<void>;

export class BuildFailed extends Error {
  constructor(
    message: string,
    readonly log: string[],
  ) {
    super(message);
  }
}

const REPOSITORY = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export async function buildCandidate(spec: BuildSpec, report: BuildReport = () => undefined): Promise<BuiltCandidate> {
  const log: string[] = [];
  const say = async (step: string, progress: number, line: string) => {
    log.push(line);
    await report(step, progress, line);
  };
  const fail = (why: string): never => {
    throw new BuildFailed(why, log);
  };
  if (!REPOSITORY.test(spec.repository)) fail(`"${spec.repository}" is not a registry repository name (lowercase letters, digits, . _ - and /)`);
  if (!TAG.test(spec.tag)) fail(`"${spec.tag}" is not a registry tag`);
  if (spec.apps.length === 0) fail('the release group has no app');

  const apps: Array<{ source: AppSourceRef; app: FetchedApp }> = [];
  for (const [i, source] of spec.apps.entries()) {
    const step = `fetching ${source.repositoryUrl} at ${source.version}`;
    await report(step, Math.round((i / spec.apps.length) * 30));
    try {
      const app = await fetchApp(source);
      if (apps.some((a) => a.app.manifest.name === app.manifest.name)) fail(`two apps of the group are named ${app.manifest.name}`);
      apps.push({ source, app });
      await say(step, Math.round(((i + 1) / spec.apps.length) * 30), `${app.manifest.name} ${app.manifest.version}: ${source.repositoryUrl} ${source.branch} ${source.version} = ${app.commit}`);
    } catch (e) {
      if (e instanceof BuildFailed) throw e;
      if (e instanceof AppSourceError || e instanceof AppFormatError) {
        await say(step, 0, `ERROR ${e.message}`);
        fail(e.message);
      }
      throw e;
    }
  }

  await report('running every migration in a scratch schema', 30);
  try {
    await trialMigrations(
      spec.trialDatabase,
      apps.map((a) => a.app),
      (line) => {
        log.push(line);
        // Not awaited (the trial reports synchronously): a failed report (a cancel) is seen at the next awaited one.
        void Promise.resolve(report('running every migration in a scratch schema', 45, line)).catch(() => undefined);
      },
    );
  } catch (e) {
    if (e instanceof TrialFailed) fail(e.message);
    throw e;
  }

  await report('packing the release', 60);
  const packed = await packRelease({ group: spec.group, apps });
  await say('packing the release', 70, `release ${packed.digest} (${packed.bytes.length} bytes)`);

  const step = `pushing to ${spec.registry.url}/${spec.repository}:${spec.tag}`;
  await report(step, 70);
  let manifestDigest: string;
  try {
    const config = new Uint8Array(Buffer.from('{}'));
    const configDigest = await pushBlob(spec.registry, spec.repository, config);
    await pushBlob(spec.registry, spec.repository, packed.bytes);
    manifestDigest = await putManifest(spec.registry, spec.repository, spec.tag, {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: RELEASE_ARTIFACT,
      config: { mediaType: OCI_EMPTY_CONFIG, digest: configDigest, size: config.length },
      layers: [{ mediaType: RELEASE_LAYER, digest: packed.digest, size: packed.bytes.length, annotations: { 'org.opencontainers.image.title': 'release.tar' } }],
      annotations: { 'org.opencontainers.image.title': spec.group.title, 'dev.tenantplane.release-group': spec.group.id },
    });
    await say(step, 85, `pushed ${spec.repository}:${spec.tag} = ${manifestDigest}`);
    await report('pulling it back to verify', 85);
    const manifest = await pullManifest(spec.registry, spec.repository, manifestDigest);
    const layer = manifest.layers?.find((l) => l.mediaType === RELEASE_LAYER);
    if (layer?.digest !== packed.digest) fail(`the manifest pulled back names layer ${layer?.digest ?? 'none'}, not ${packed.digest}`);
    await pullBlob(spec.registry, spec.repository, packed.digest);
    await say('pulling it back to verify', 100, `verified ${manifestDigest}: every byte matches`);
  } catch (e) {
    if (e instanceof BuildFailed) throw e;
    if (e instanceof RegistryError) {
      await say(step, 85, `ERROR ${e.message}`);
      fail(e.message);
    }
    throw e;
  }
  return {
    imageName: `${new URL(spec.registry.url).host}/${spec.repository}`,
    imageTag: spec.tag,
    manifestDigest,
    layerDigest: packed.digest,
    apps: apps.map(({ app }) => ({ name: app.manifest.name, version: app.manifest.version, commit: app.commit })),
    log,
  };
}
