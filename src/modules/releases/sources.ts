import dns from 'node:dns/promises';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import ipaddr from 'ipaddr.js';
import type { Config } from '../../config.ts';
import { buildBuiltinRepositories } from './builtin.ts';
import type { AppSourceRef } from './git.ts';

/**
 * Where an app source's repository may be (issue 11 §1). A tenant names the URL and a worker clones it, so the URL is
 * a capability: https:// reaches what the machine can reach; file:/// only inside the folders the operator lists in
 * APP_SOURCE_FILE_ROOTS (never the rest of the worker's disk); builtin:<name> is an app shipped with Tenantplane,
 * whose repository each worker builds for itself (deterministically: the same commits everywhere). An https host
 * that is, or resolves to, a loopback, private or link-local address is refused unless APP_SOURCE_ALLOWED_HOSTS
 * names it: a tenant does not get to make a worker fetch from the deployment's own network.
 */
export const BUILTIN_SCHEME = 'builtin:';

/** Why a repository URL is refused, or null when it is allowed. */
export function repositoryUrlProblem(config: Config, url: string): string | null {
  if (url.startsWith(BUILTIN_SCHEME)) {
    return /^builtin:[a-z][a-z0-9-]{0,62}$/.test(url) ? null : 'a built-in app is named builtin:<app name>, e.g. builtin:notes';
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'the repository is a URL: https://…, file:///… (inside APP_SOURCE_FILE_ROOTS) or builtin:<app>';
  }
  if (parsed.protocol === 'https:') {
    if (parsed.username || parsed.password) return 'credentials do not go in the repository URL';
    const host = parsed.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    if (config.releases.allowedHosts.includes(host)) return null;
    if (host === 'localhost' || host.endsWith('.localhost') || (ipaddr.isValid(host) && !isPublic(host))) return privateHost(host);
    return null;
  }
  if (parsed.protocol === 'file:') {
    if (parsed.host) return 'a file URL names a local path: file:///…';
    const local = path.resolve(fileURLToPath(parsed));
    const inside = config.releases.fileRoots.some((root) => local === root || local.startsWith(root + path.sep));
    return inside ? null : config.releases.fileRoots.length ? `file:// repositories must be inside ${config.releases.fileRoots.join(', ')} (APP_SOURCE_FILE_ROOTS)` : 'file:// repositories are not allowed here (APP_SOURCE_FILE_ROOTS is not set)';
  }
  return `${parsed.protocol}// repositories are not supported: use https://, file:/// (inside APP_SOURCE_FILE_ROOTS) or builtin:<app>`;
}

/** A unicast address on the internet (not loopback, private, link-local, unique-local, reserved…). */
function isPublic(address: string) {
  const ip = ipaddr.process(address);
  return ip.range() === 'unicast';
}

const privateHost = (host: string) => `${host} is a loopback, private or link-local address: list it in APP_SOURCE_ALLOWED_HOSTS to fetch from it`;

/** At fetch time (the worker): every address the host resolves to must be public, unless it is allowed. */
async function checkResolvedHost(config: Config, url: string) {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (config.releases.allowedHosts.includes(host)) return;
  let addresses: Array<{ address: string }>;
  try {
    addresses = await dns.lookup(host, { all: true });
  } catch (e) {
    throw new Error(`${host} cannot be resolved: ${(e as { code?: string }).code ?? (e as Error).message}`);
  }
  if (addresses.some((a) => !isPublic(a.address))) throw new Error(privateHost(host));
}

let builtin: Promise<Record<string, string>> | undefined;
let builtinDir: string | undefined;

/** The built-in apps' repositories of this process (built once, under RELEASES_DIR/builtin). */
export function builtinRepositories(config: Config): Promise<Record<string, string>> {
  const dir = path.join(config.releases.dir, 'builtin');
  if (!builtin || builtinDir !== dir) {
    builtinDir = dir;
    builtin = buildBuiltinRepositories(dir);
    builtin.catch(() => (builtin = undefined));
  }
  return builtin;
}

/** The ref git.ts fetches: builtin:<name> made a file URL of this worker's own copy; anything else checked again. */
export async function resolveSource(config: Config, ref: AppSourceRef): Promise<AppSourceRef> {
  const problem = repositoryUrlProblem(config, ref.repositoryUrl);
  if (problem) throw new Error(`${ref.repositoryUrl}: ${problem}`);
  if (ref.repositoryUrl.startsWith('https:')) await checkResolvedHost(config, ref.repositoryUrl);
  if (!ref.repositoryUrl.startsWith(BUILTIN_SCHEME)) return ref;
  const name = ref.repositoryUrl.slice(BUILTIN_SCHEME.length);
  const url = (await builtinRepositories(config))[name];
  if (!url) throw new Error(`there is no built-in app named ${name}`);
  return { ...ref, repositoryUrl: url.startsWith('file:') ? url : pathToFileURL(url).toString() };
}
