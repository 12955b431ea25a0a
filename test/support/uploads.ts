import crypto from 'node:crypto';
import type { TestUser } from './client.ts';

export const sha256hex = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

export const CREATE_UPLOAD = `mutation($i: CreateUploadInput!) { createUpload(input: $i) { id url headers { name value } expiresAt alreadyStored partSize parts { partNumber url sizeBytes } } }`;
export const COMPLETE_UPLOAD = `mutation($u: ID!, $parts: [CompletedPartInput!]) { completeUpload(uploadId: $u, parts: $parts) { id filename status sizeBytes mimeType uploader { email } file { sha256 sizeBytes } } }`;
export const DOCUMENT = `query($id: ID!) { node(id: $id) { ... on Document { id filename originalName status error charCount wordCount lineCount preview processedAt downloadUrl sizeBytes } } }`;

/** Sends the bytes where createUpload said: one PUT, or one PUT per part (returning the parts' ETags). */
export async function putBytes(ticket: any, bytes: Buffer): Promise<Array<{ partNumber: number; etag: string }> | undefined> {
  if (ticket.url) {
    const headers = Object.fromEntries(ticket.headers.map((h: any) => [h.name, h.value]));
    const res = await fetch(ticket.url, { method: 'PUT', headers, body: new Uint8Array(bytes) });
    if (!res.ok) throw new Error(`PUT failed: ${res.status} ${await res.text()}`);
    return;
  }
  let offset = 0;
  const etags = [];
  for (const part of ticket.parts) {
    const res = await fetch(part.url, { method: 'PUT', body: new Uint8Array(bytes.subarray(offset, offset + part.sizeBytes)) });
    if (!res.ok) throw new Error(`part ${part.partNumber} failed: ${res.status}`);
    etags.push({ partNumber: part.partNumber, etag: res.headers.get('etag')! });
    offset += part.sizeBytes;
  }
  return etags;
}

export async function createUpload(user: TestUser, tenantId: string, bytes: Buffer, opts: { filename?: string; mimeType?: string; sizeBytes?: number; sha256?: string } = {}) {
  const r = await user.gql.ok(CREATE_UPLOAD, {
    i: {
      tenantId,
      filename: opts.filename ?? `file-${crypto.randomBytes(4).toString('hex')}.txt`,
      sizeBytes: opts.sizeBytes ?? bytes.length,
      mimeType: opts.mimeType ?? 'text/plain',
      sha256: opts.sha256 ?? sha256hex(bytes),
    },
  });
  return r.createUpload;
}

/** The whole client side of an upload: announce, send, complete. */
export async function uploadDocument(user: TestUser, tenantId: string, bytes: Buffer, opts: { filename?: string; mimeType?: string } = {}) {
  const ticket = await createUpload(user, tenantId, bytes, opts);
  const parts = ticket.alreadyStored ? undefined : await putBytes(ticket, bytes);
  const done = await user.gql.ok(COMPLETE_UPLOAD, { u: ticket.id, parts });
  return { ticket, document: done.completeUpload };
}

export async function waitForDocument(user: TestUser, id: string, done: (d: any) => boolean = (d) => d.status === 'PROCESSED' || d.status === 'ERROR', ms = 15000) {
  const start = Date.now();
  for (;;) {
    const d = (await user.gql.ok(DOCUMENT, { id })).node;
    if (d && done(d)) return d;
    if (Date.now() - start > ms) throw new Error(`document ${id} still ${d?.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
