import crypto from 'node:crypto';

/**
 * The few calls of the OCI Distribution API that releases need (issue 11 §2), against a registry with basic auth —
 * the CNCF distribution registry (Debian's docker-registry) in tests and CI. No kept JavaScript client covers
 * pushing OCI artifacts (the npm ones are pull-only or unmaintained), so the HTTP calls live here and nowhere else.
 * Every byte is content-addressed: pushes name their sha256 digest, pulls are checked against it.
 */
export interface RegistryAccess {
  url: string;
  username: string;
  password: string;
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json';

export class RegistryError extends Error {}

export const digestOf = (bytes: Uint8Array) => `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;

async function call(reg: RegistryAccess, pathOrUrl: string, init: RequestInit & { expect: number[] }) {
  const url = new URL(pathOrUrl, reg.url.replace(/\/?$/, '/'));
  const headers = new Headers(init.headers);
  headers.set('authorization', `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}`);
  let res: Response;
  try {
    res = await fetch(url, { ...init, headers, redirect: 'follow', signal: AbortSignal.timeout(60_000) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new RegistryError(`the registry at ${reg.url} is unreachable: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
  }
  if (res.status === 401) throw new RegistryError(`the registry at ${reg.url} refused the username or password`);
  if (!init.expect.includes(res.status)) {
    const body = await res.text().catch(() => '');
    const message = (() => {
      try {
        return (JSON.parse(body) as { errors?: Array<{ code: string; message: string }> }).errors?.map((x) => `${x.code}: ${x.message}`).join('; ');
      } catch {
        return undefined;
      }
    })();
    throw new RegistryError(`the registry answered ${res.status} to ${init.method ?? 'GET'} ${url.pathname}${message ? ` (${message})` : ''}`);
  }
  return res;
}

/** GET /v2/: the registry answers and accepts these credentials. */
export async function checkRegistry(reg: RegistryAccess) {
  await call(reg, 'v2/', { method: 'GET', expect: [200] });
}

/** Uploads a blob unless the repository has it already; answers its digest. */
export async function pushBlob(reg: RegistryAccess, repository: string, bytes: Uint8Array) {
  const digest = digestOf(bytes);
  const head = await call(reg, `v2/${repository}/blobs/${digest}`, { method: 'HEAD', expect: [200, 404] });
  if (head.status === 200) return digest;
  const started = await call(reg, `v2/${repository}/blobs/uploads/`, { method: 'POST', expect: [202] });
  const location = new URL(started.headers.get('location') ?? '', reg.url);
  location.searchParams.set('digest', digest);
  await call(reg, location.href, { method: 'PUT', body: Buffer.from(bytes), headers: { 'content-type': 'application/octet-stream' }, expect: [201] });
  return digest;
}

/** Puts a manifest under a tag; answers its digest, checked against the registry's own. */
export async function putManifest(reg: RegistryAccess, repository: string, tag: string, manifest: object) {
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = digestOf(bytes);
  const res = await call(reg, `v2/${repository}/manifests/${tag}`, { method: 'PUT', body: bytes, headers: { 'content-type': OCI_MANIFEST }, expect: [201] });
  const theirs = res.headers.get('docker-content-digest');
  if (theirs && theirs !== digest) throw new RegistryError(`the registry stored the manifest as ${theirs}, not ${digest}`);
  return digest;
}

/** A manifest by digest, refused unless its bytes hash to that digest. */
export async function pullManifest(reg: RegistryAccess, repository: string, digest: string) {
  const res = await call(reg, `v2/${repository}/manifests/${digest}`, { method: 'GET', headers: { accept: OCI_MANIFEST }, expect: [200, 404] });
  if (res.status === 404) throw new RegistryError(`the registry has no manifest ${digest} in ${repository}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (digestOf(bytes) !== digest) throw new RegistryError(`the manifest pulled from ${repository} does not match its digest ${digest}: refused`);
  return JSON.parse(Buffer.from(bytes).toString()) as { layers?: Array<{ digest: string; size: number; mediaType: string; annotations?: Record<string, string> }>; annotations?: Record<string, string> };
}

/** A blob by digest, refused unless its bytes hash to that digest. */
export async function pullBlob(reg: RegistryAccess, repository: string, digest: string) {
  const res = await call(reg, `v2/${repository}/blobs/${digest}`, { method: 'GET', expect: [200, 404] });
  if (res.status === 404) throw new RegistryError(`the registry has no blob ${digest} in ${repository}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (digestOf(bytes) !== digest) throw new RegistryError(`the artifact pulled from ${repository} does not match its digest ${digest}: refused`);
  return bytes;
}
