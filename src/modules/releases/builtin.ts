import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { MANIFEST_FILE, filesOf, parseManifest, type AppManifest } from './app-format.ts';
import { git } from './git.ts';

/** The project's own apps (apps/<name>/), shipped as app sources like any other. */
export const BUILTIN_APPS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'apps');

/**
 * Turns each built-in app folder into a real git repository under `into`, one commit per released version, tagged
 * `v<version>`: the older versions' manifests in apps/<name>/releases/<version>.json (each naming the migrations it
 * had), then the folder's current manifest. Commits are made with a fixed author and date, so the same folder gives
 * the same commit ids on every machine and every start; an existing repository is rebuilt only when they differ.
 * Returns the repository URL of each app (file://…, branch main).
 */
export async function buildBuiltinRepositories(into: string, from = BUILTIN_APPS_DIR): Promise<Record<string, string>> {
  await fs.mkdir(into, { recursive: true });
  const out: Record<string, string> = {};
  for (const name of (await fs.readdir(from)).sort()) {
    const folder = path.join(from, name);
    if (!(await fs.stat(path.join(folder, MANIFEST_FILE)).catch(() => null))) continue;
    out[name] = await buildRepository(folder, path.join(into, `${name}.git`));
  }
  return out;
}

async function buildRepository(folder: string, bare: string) {
  const current = parseManifest(await fs.readFile(path.join(folder, MANIFEST_FILE), 'utf8'));
  const older = await Promise.all(
    (await fs.readdir(path.join(folder, 'releases')).catch(() => [] as string[]))
      .filter((f) => f.endsWith('.json'))
      .map(async (f) => parseManifest(await fs.readFile(path.join(folder, 'releases', f), 'utf8'))),
  );
  const versions = [...older, current].sort((a, b) => semver.compare(a.version, b.version));
  const work = `${bare}.build-${process.pid}`;
  await fs.rm(work, { recursive: true, force: true });
  await fs.mkdir(work, { recursive: true });
  // A fixed author (and, per commit, date): deterministic commit ids.
  const author = { GIT_AUTHOR_NAME: 'Tenantplane', GIT_AUTHOR_EMAIL: 'apps@tenantplane.invalid', GIT_COMMITTER_NAME: 'Tenantplane', GIT_COMMITTER_EMAIL: 'apps@tenantplane.invalid' };
  const inWork = (args: string[], date?: string) => git(['-C', work, ...args], { env: { ...author, ...(date ? { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date } : {}) } });
  try {
    await inWork(['init', '--quiet', '--initial-branch=main']);
    for (const [i, m] of versions.entries()) {
      await writeVersion(folder, work, m);
      await inWork(['add', '-A']);
      // One second per version from a fixed epoch: deterministic ids.
      await inWork(['commit', '--quiet', '--no-gpg-sign', '-m', `${m.name} ${m.version}`], `${1_700_000_000 + i} +0000`);
      await inWork(['tag', `v${m.version}`]);
    }
    const head = (await inWork(['rev-parse', 'HEAD'])).trim();
    const existing = await git(['-C', bare, 'rev-parse', 'refs/heads/main']).then((out) => out.trim(), () => null);
    if (existing !== head) {
      // Cloned beside it and swapped in: another process building the same repository meanwhile loses nothing.
      const fresh = `${bare}.new-${process.pid}`;
      await git(['clone', '--quiet', '--bare', work, fresh]);
      await fs.rm(bare, { recursive: true, force: true });
      await fs.rename(fresh, bare).catch(async (e) => {
        await fs.rm(fresh, { recursive: true, force: true });
        if (!(await fs.stat(bare).catch(() => null))) throw e;
      });
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  return `file://${bare}`;
}

/** The worktree holds exactly this version: its manifest and the files it names. */
async function writeVersion(folder: string, work: string, m: AppManifest) {
  for (const entry of await fs.readdir(work)) if (entry !== '.git') await fs.rm(path.join(work, entry), { recursive: true, force: true });
  await fs.writeFile(path.join(work, MANIFEST_FILE), `${JSON.stringify(m, null, 2)}\n`);
  for (const file of filesOf(m)) {
    await fs.mkdir(path.dirname(path.join(work, file)), { recursive: true });
    await fs.copyFile(path.join(folder, file), path.join(work, file));
  }
}
