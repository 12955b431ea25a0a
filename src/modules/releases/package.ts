import tar from 'tar-stream';
import { MANIFEST_FILE } from './app-format.ts';
import type { FetchedApp, AppSourceRef } from './git.ts';
import { digestOf } from './registry.ts';

/** The media type of a release artifact's one layer: a plain tar of every app's manifest and files. */
export const RELEASE_LAYER = 'application/vnd.tenantplane.release.layer.v1.tar';
export const RELEASE_ARTIFACT = 'application/vnd.tenantplane.release.v1';

export interface ReleaseContents {
  group: { id: string; title: string };
  apps: Array<{ source: AppSourceRef; app: FetchedApp }>;
}

/**
 * The release as one deterministic tar (issue 11 §2: content-addressed): `release.json` (each app's name, version,
 * source and commit), then `<app>/tenantplane-app.json` and its files, in sorted order, with fixed times, modes and
 * owners — the same apps at the same commits always give the same bytes, hence the same digest.
 */
export async function packRelease(contents: ReleaseContents): Promise<{ bytes: Uint8Array; digest: string }> {
  const entries: Array<[string, string]> = [
    [
      'release.json',
      `${JSON.stringify(
        {
          group: contents.group,
          apps: contents.apps.map(({ source, app }) => ({ name: app.manifest.name, version: app.manifest.version, commit: app.commit, repositoryUrl: source.repositoryUrl, branch: source.branch, path: source.path })),
        },
        null,
        2,
      )}\n`,
    ],
  ];
  for (const { app } of [...contents.apps].sort((a, b) => a.app.manifest.name.localeCompare(b.app.manifest.name))) {
    entries.push([`${app.manifest.name}/${MANIFEST_FILE}`, `${JSON.stringify(app.manifest, null, 2)}\n`]);
    for (const file of Object.keys(app.files).sort()) entries.push([`${app.manifest.name}/${file}`, app.files[file]!]);
  }
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const [name, text] of entries) {
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' }, text, (e) => (e ? reject(e) : resolve())),
    );
  }
  pack.finalize();
  await done;
  const bytes = new Uint8Array(Buffer.concat(chunks));
  return { bytes, digest: digestOf(bytes) };
}

/** Reads a release tar back: its release.json and every file, by path. */
export async function unpackRelease(bytes: Uint8Array): Promise<Record<string, string>> {
  const extract = tar.extract();
  const files: Record<string, string> = {};
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (c) => parts.push(c as Buffer));
      stream.on('end', () => {
        files[header.name] = Buffer.concat(parts).toString('utf8');
        next();
      });
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(Buffer.from(bytes));
  await done;
  return files;
}
