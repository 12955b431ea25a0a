import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AppFormatError, MANIFEST_FILE, filesOf, inFolder, parseManifest, type AppBundle } from './app-format.ts';

const run = promisify(execFile);

/** Where an app lives (seed 001 App Source): a repository, the branch it is released from, and a tag or commit on it. */
export interface AppSourceRef {
  repositoryUrl: string;
  branch: string;
  version: string;
  /** The app's folder in the repository ('.' for its root). */
  path: string;
}

export interface FetchedApp extends AppBundle {
  /** The commit `version` named when it was fetched: what a candidate records, so a moved tag is noticed. */
  commit: string;
}

/** A repository that cannot be fetched, or a version that is not there: the build fails with these words. */
export class AppSourceError extends Error {}

/**
 * The real git, never a shell: arguments as an array, no prompt for credentials, the `ext::` transport (which runs
 * commands) refused, a time limit.
 */
export async function git(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}) {
  // No redirects: a public URL must not forward the worker to an address the source check refused.
  const { stdout } = await run('git', ['-c', 'protocol.ext.allow=never', '-c', 'core.hooksPath=/dev/null', '-c', 'http.followRedirects=false', ...args], {
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 64 * 1024 * 1024,
    env: { PATH: process.env.PATH, HOME: os.tmpdir(), GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', LANG: 'C', ...opts.env },
  });
  return stdout;
}

/** git's own complaint, one line (its stderr ends with the reason). */
function reason(e: unknown) {
  const stderr = String((e as { stderr?: string }).stderr ?? '').trim();
  const line = stderr.split('\n').filter((l) => l.trim()).pop();
  if ((e as { killed?: boolean }).killed) return 'timed out';
  return (line ?? (e as Error).message).replace(/^fatal:\s*/, '');
}

/**
 * Fetches one app at one version: a bare clone of the branch, the version resolved to a commit that must lie on that
 * branch, then the manifest and every file it names read from that commit (no checkout, nothing executed).
 */
export async function fetchApp(ref: AppSourceRef): Promise<FetchedApp> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tp-app-source-'));
  try {
    try {
      await git(['clone', '--quiet', '--bare', '--single-branch', '--branch', ref.branch, '--', ref.repositoryUrl, dir]);
    } catch (e) {
      throw new AppSourceError(`could not fetch branch ${ref.branch} of ${ref.repositoryUrl}: ${reason(e)}`);
    }
    // Tags of the branch come with it; a tag elsewhere is fetched by name.
    await git(['-C', dir, 'fetch', '--quiet', 'origin', `+refs/tags/${ref.version}:refs/tags/${ref.version}`]).catch(() => undefined);
    let commit: string;
    try {
      commit = (await git(['-C', dir, 'rev-parse', '--verify', '--quiet', `${ref.version}^{commit}`])).trim();
    } catch {
      throw new AppSourceError(`${ref.repositoryUrl} has no tag or commit "${ref.version}"`);
    }
    try {
      await git(['-C', dir, 'merge-base', '--is-ancestor', commit, `refs/heads/${ref.branch}`]);
    } catch {
      throw new AppSourceError(`version ${ref.version} (${commit.slice(0, 12)}) is not on branch ${ref.branch} of ${ref.repositoryUrl}`);
    }
    const read = async (file: string) => {
      try {
        return await git(['-C', dir, 'show', `${commit}:${file}`]);
      } catch {
        throw new AppFormatError(`${file} is missing at ${ref.version}`);
      }
    };
    const manifest = parseManifest(await read(inFolder(ref.path, MANIFEST_FILE)));
    // A semver tag must name the version the manifest declares (v2.0.0 → 2.0.0).
    const tagged = /^v?(\d+\.\d+\.\d+(?:[-+].*)?)$/.exec(ref.version)?.[1];
    if (tagged && tagged !== manifest.version) throw new AppFormatError(`the tag ${ref.version} holds version ${manifest.version} of ${manifest.name}`);
    const files: Record<string, string> = {};
    for (const file of filesOf(manifest)) files[file] = await read(inFolder(ref.path, file));
    return { manifest, files, commit };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
