import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { signUp, createTenant, addMember, type TestUser, rowUuid } from './support/client.ts';
import { poll } from './support/workers.ts';
import { sha256hex, createUpload, putBytes, uploadDocument, waitForDocument, COMPLETE_UPLOAD, DOCUMENT } from './support/uploads.ts';

/** Documents and files through the real S3 endpoint: round trips, dedup, lying clients, quota, processing, roles. */
let app: TestApp;
let owner: TestUser, member: TestUser, viewer: TestUser, admin: TestUser;
let tenant: { id: string; slug: string };
let sql: pg.Client;

beforeAll(async () => {
  app = await startTestApp();
  [owner, member, viewer, admin] = await Promise.all(['owner', 'member', 'viewer', 'admin'].map((n) => signUp(app, n)));
  tenant = await createTenant(owner, 'docs');
  await addMember(owner, tenant.id, member, 'MEMBER');
  await addMember(owner, tenant.id, viewer, 'VIEWER');
  await addMember(owner, tenant.id, admin, 'ADMIN');
  sql = new pg.Client({ connectionString: app.databaseUrl });
  await sql.connect();
});
afterAll(async () => {
  await sql?.end();
  await app?.stop();
});

const count = async (table: string) => (await sql.query(`select count(*)::int as n from app_public.${table}`)).rows[0].n as number;
const objectExists = async (key: string) => (await app.services.storage.size(key)) !== null;
async function download(url: string) {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('upload round trip', () => {
  it('a small text file: stored, verified, processed with the right counts, downloadable byte for byte', async () => {
    const text = 'Hello tenant world\nsecond line has five words\n\nlast line without newline';
    const bytes = Buffer.from(text);
    const { document } = await uploadDocument(member, tenant.id, bytes, { filename: 'notes.txt', mimeType: 'text/plain' });
    expect(document).toMatchObject({ filename: 'notes.txt', status: 'UPLOADED', sizeBytes: bytes.length, uploader: { email: member.email }, file: { sha256: sha256hex(bytes) } });
    const done = await waitForDocument(member, document.id);
    expect(done).toMatchObject({ status: 'PROCESSED', error: null, lineCount: 4, wordCount: 12, charCount: [...text].length });
    expect(done.preview).toBe(text);
    const back = await download(done.downloadUrl);
    expect(sha256hex(back)).toBe(sha256hex(bytes));
    expect(back.equals(bytes)).toBe(true);
  });

  it('a 20 MiB file goes multipart and comes back identical', async () => {
    const bytes = crypto.randomBytes(20 * 1024 * 1024);
    const ticket = await createUpload(member, tenant.id, bytes, { filename: 'big.bin', mimeType: 'application/octet-stream' });
    expect(ticket.url).toBeNull();
    expect(ticket.parts.length).toBe(3);
    const parts = await putBytes(ticket, bytes);
    const doc = (await member.gql.ok(COMPLETE_UPLOAD, { u: ticket.id, parts })).completeUpload;
    expect(doc.sizeBytes).toBe(bytes.length);
    const done = await waitForDocument(member, doc.id);
    expect(done.status).toBe('PROCESSED'); // not text: no statistics
    expect(done.charCount).toBeNull();
    const back = await download(done.downloadUrl);
    expect(back.length).toBe(bytes.length);
    expect(sha256hex(back)).toBe(sha256hex(bytes));
  });

  it('an identical file is stored once: the second upload sends nothing and counts no extra storage', async () => {
    const bytes = Buffer.from(`dedup me ${crypto.randomUUID()}`);
    const first = await uploadDocument(member, tenant.id, bytes, { filename: 'a.txt' });
    const usageBefore = (await member.gql.ok(`query($s: String!) { tenant(slug: $s) { usage { storageBytes documents } } }`, { s: tenant.slug })).tenant.usage;
    const ticket = await createUpload(owner, tenant.id, bytes, { filename: 'b.txt' });
    expect(ticket).toMatchObject({ alreadyStored: true, url: null, parts: [] });
    const second = (await owner.gql.ok(COMPLETE_UPLOAD, { u: ticket.id })).completeUpload;
    expect(second.file.sha256).toBe(first.document.file.sha256);
    const usageAfter = (await member.gql.ok(`query($s: String!) { tenant(slug: $s) { usage { storageBytes documents members } } }`, { s: tenant.slug })).tenant.usage;
    expect(usageAfter.storageBytes).toBe(usageBefore.storageBytes);
    expect(usageAfter.documents).toBe(usageBefore.documents + 1);
    expect(usageAfter.members).toBe(4);
    const files = await sql.query(`select count(*)::int as n from app_public.files where sha256 = $1`, [sha256hex(bytes)]);
    expect(files.rows[0].n).toBe(1);
  });
});

describe('lying clients', () => {
  async function expectRefused(ticket: any, field: string, parts?: unknown) {
    const before = { docs: await count('documents'), files: await count('files') };
    const r = await member.gql.request(COMPLETE_UPLOAD, { u: ticket.id, parts });
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(await count('documents')).toBe(before.docs);
    expect(await count('files')).toBe(before.files);
    // The upload is gone and so are its bytes: completing again finds nothing.
    expect((await member.gql.request(COMPLETE_UPLOAD, { u: ticket.id })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const { rows } = await sql.query(`select count(*)::int as n from app_public.uploads where object_key like '%' || $1`, [ticket.id]);
    expect(rows[0].n).toBe(0);
  }
  const keyOf = async (ticketId: string) => {
    const id = rowUuid(ticketId);
    return `tenants/${(await sql.query(`select id from app_public.tenants where slug = $1`, [tenant.slug])).rows[0].id}/objects/${id}`;
  };

  it('wrong size', async () => {
    const bytes = Buffer.from('twelve bytes');
    const ticket = await createUpload(member, tenant.id, bytes, { sizeBytes: 13 });
    await fetch(ticket.url, { method: 'PUT', body: new Uint8Array(bytes) }).catch(() => undefined);
    await expectRefused(ticket, 'sizeBytes');
    expect(await objectExists(await keyOf(ticket.id))).toBe(false);
  });

  it('wrong sha256', async () => {
    const bytes = Buffer.from('some honest bytes');
    const ticket = await createUpload(member, tenant.id, bytes, { sha256: sha256hex(Buffer.from('other bytes')) });
    await putBytes(ticket, bytes);
    await expectRefused(ticket, 'sha256');
    expect(await objectExists(await keyOf(ticket.id))).toBe(false);
  });

  it('never uploaded', async () => {
    const ticket = await createUpload(member, tenant.id, Buffer.from('never sent'));
    await expectRefused(ticket, 'uploadId');
  });

  it('expired upload', async () => {
    const bytes = Buffer.from('too late');
    const ticket = await createUpload(member, tenant.id, bytes);
    await putBytes(ticket, bytes);
    await sql.query(`update app_public.uploads set expires_at = now() - interval '1 second' where object_key like '%' || $1`, [
      rowUuid(ticket.id),
    ]);
    await expectRefused(ticket, 'uploadId');
    expect(await objectExists(await keyOf(ticket.id))).toBe(false);
  });

  it('an incomplete multipart upload', async () => {
    const bytes = crypto.randomBytes(17 * 1024 * 1024);
    const ticket = await createUpload(member, tenant.id, bytes, { filename: 'partial.bin', mimeType: 'application/octet-stream' });
    const res = await fetch(ticket.parts[0].url, { method: 'PUT', body: new Uint8Array(bytes.subarray(0, ticket.parts[0].sizeBytes)) });
    await expectRefused(ticket, 'parts', [{ partNumber: 1, etag: res.headers.get('etag') }]);
  });

  it('bad announcements are refused before any URL is issued', async () => {
    const base = { tenantId: tenant.id, filename: 'x.txt', sizeBytes: 1, mimeType: 'text/plain', sha256: 'a'.repeat(64) };
    const Q = `mutation($i: CreateUploadInput!) { createUpload(input: $i) { id } }`;
    for (const [patch, field] of [
      [{ sizeBytes: -1 }, 'sizeBytes'],
      [{ sha256: 'xyz' }, 'sha256'],
      [{ mimeType: 'not a mime' }, 'mimeType'],
      [{ filename: '' }, 'filename'],
    ] as const) {
      const r = await member.gql.request(Q, { i: { ...base, ...patch } });
      expect(r.errors?.[0]?.extensions, JSON.stringify(patch)).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
  });
});

describe('rules', () => {
  it('a duplicate filename for the same uploader is a CONFLICT; another uploader may use it', async () => {
    await uploadDocument(member, tenant.id, Buffer.from(`x ${crypto.randomUUID()}`), { filename: 'same.txt' });
    const r = await member.gql.request(`mutation($i: CreateUploadInput!) { createUpload(input: $i) { id } }`, {
      i: { tenantId: tenant.id, filename: 'same.txt', sizeBytes: 3, mimeType: 'text/plain', sha256: sha256hex(Buffer.from('abc')) },
    });
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', field: 'filename' });
    await uploadDocument(admin, tenant.id, Buffer.from(`y ${crypto.randomUUID()}`), { filename: 'same.txt' });
  });

  it('the storage quota counts stored bytes and refuses what would exceed it', async () => {
    await sql.query(`insert into app_public.plans (id, name, max_members, max_storage_bytes, max_sites) values ('tiny', 'Tiny', 10, 100, 1) on conflict do nothing`);
    const small = await createTenant(owner, 'tiny');
    await sql.query(`update app_public.tenants set plan_id = 'tiny' where slug = $1`, [small.slug]);
    await uploadDocument(owner, small.id, Buffer.alloc(60, 'a'), { filename: 'sixty.txt' });
    const r = await owner.gql.request(`mutation($i: CreateUploadInput!) { createUpload(input: $i) { id } }`, {
      i: { tenantId: small.id, filename: 'more.txt', sizeBytes: 41, mimeType: 'text/plain', sha256: sha256hex(Buffer.alloc(41, 'b')) },
    });
    expect(r.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
    expect(r.errors?.[0]?.message).toMatch(/Tiny plan/);
    // A duplicate of stored bytes needs no quota.
    const dup = await createUpload(owner, small.id, Buffer.alloc(60, 'a'), { filename: 'again.txt' });
    expect(dup.alreadyStored).toBe(true);
  });

  it('viewers read only; members delete their own; admins delete anyone’s; bytes go with the last reference', async () => {
    const bytes = Buffer.from(`owned by member ${crypto.randomUUID()}`);
    const { document } = await uploadDocument(member, tenant.id, bytes, { filename: 'mine.txt' });
    const r = await viewer.gql.request(`mutation($i: CreateUploadInput!) { createUpload(input: $i) { id } }`, {
      i: { tenantId: tenant.id, filename: 'v.txt', sizeBytes: 1, mimeType: 'text/plain', sha256: sha256hex(Buffer.from('v')) },
    });
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await viewer.gql.ok(DOCUMENT, { id: document.id })).node.filename).toBe('mine.txt');
    expect(await viewer.gql.code(`mutation($d: ID!) { deleteDocument(documentId: $d) }`, { d: document.id })).toBe('FORBIDDEN');
    const other = await signUp(app, 'other-member');
    await addMember(owner, tenant.id, other, 'MEMBER');
    expect(await other.gql.code(`mutation($d: ID!) { deleteDocument(documentId: $d) }`, { d: document.id })).toBe('FORBIDDEN');
    expect(await other.gql.code(`mutation($i: RenameDocumentInput!) { renameDocument(input: $i) { id } }`, { i: { documentId: document.id, filename: 'x' } })).toBe('FORBIDDEN');
    // the owner of the document renames it
    const renamed = await member.gql.ok(`mutation($i: RenameDocumentInput!) { renameDocument(input: $i) { filename } }`, { i: { documentId: document.id, filename: 'renamed/../x.txt' } });
    expect(renamed.renameDocument.filename).toBe('renamed_.._x.txt');
    const key = (await sql.query(`select f.object_key from app_public.files f where f.sha256 = $1`, [sha256hex(bytes)])).rows[0].object_key;
    expect(await objectExists(key)).toBe(true);
    expect((await admin.gql.ok(`mutation($d: ID!) { deleteDocument(documentId: $d) }`, { d: document.id })).deleteDocument).toBe(true);
    expect((await member.gql.ok(DOCUMENT, { id: document.id })).node).toBeNull();
    // The bytes are removed by a job after the commit.
    for (let i = 0; i < 100 && (await objectExists(key)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await objectExists(key)).toBe(false);
  });

  it('a shared file survives the deletion of one of its documents', async () => {
    const bytes = Buffer.from(`shared ${crypto.randomUUID()}`);
    const a = await uploadDocument(member, tenant.id, bytes, { filename: 'shared-a.txt' });
    await uploadDocument(owner, tenant.id, bytes, { filename: 'shared-b.txt' });
    await member.gql.ok(`mutation($d: ID!) { deleteDocument(documentId: $d) }`, { d: a.document.id });
    const key = (await sql.query(`select object_key from app_public.files where sha256 = $1`, [sha256hex(bytes)])).rows[0].object_key;
    await new Promise((r) => setTimeout(r, 500));
    expect(await objectExists(key)).toBe(true);
  });
});

describe('processing', () => {
  it('JSON, CSV and Markdown are text; an undecodable "text" file ends ERROR without retrying forever', async () => {
    const json = await uploadDocument(member, tenant.id, Buffer.from('{"a": [1, 2, 3]}\n'), { filename: 'd.json', mimeType: 'application/json' });
    const csv = await uploadDocument(member, tenant.id, Buffer.from('a,b\n1,2\n3,4\n'), { filename: 'd.csv', mimeType: 'text/csv' });
    const md = await uploadDocument(member, tenant.id, Buffer.from('# Title\n\nSome *words* here.\n'), { filename: 'd.md', mimeType: 'text/markdown' });
    const bad = await uploadDocument(member, tenant.id, Buffer.from([0xff, 0xfe, 0xfd, 0x00, 0xc3, 0x28]), { filename: 'bad.txt', mimeType: 'text/plain' });
    expect((await waitForDocument(member, json.document.id)).lineCount).toBe(1);
    expect((await waitForDocument(member, csv.document.id)).lineCount).toBe(3);
    expect((await waitForDocument(member, md.document.id)).wordCount).toBe(5);
    const failed = await waitForDocument(member, bad.document.id);
    expect(failed.status).toBe('ERROR');
    expect(failed.error).toMatch(/not valid UTF-8/);
    // One attempt: a poisoned file is not retried. The document is ERROR before pg-boss records the job's end, so
    // wait for the job to leave 'active' (CI once read it in between), then look.
    const jobs = await poll(async () => {
      const r = await sql.query(`select retry_count, state from pgboss.job where name = 'document-process' and data->>'documentId' = $1`, [
        rowUuid(bad.document.id),
      ]);
      return r.rows.every((j) => j.state !== 'active' && j.state !== 'created') && r;
    }, 10_000, 'the processing job of the undecodable file to end');
    expect(jobs.rows).toEqual([{ retry_count: 0, state: 'completed' }]);
  });

  it('lists documents newest first, filtered by status and search', async () => {
    const r = await member.gql.ok(`query($s: String!) { tenant(slug: $s) { documents(first: 100, search: "D.") { totalCount edges { node { filename status } } } } }`, { s: tenant.slug });
    const names = r.tenant.documents.edges.map((e: any) => e.node.filename);
    expect(names.slice(0, 4)).toEqual(['bad.txt', 'd.md', 'd.csv', 'd.json']);
    const errors = await member.gql.ok(`query($s: String!) { tenant(slug: $s) { documents(status: ERROR) { edges { node { filename } } } } }`, { s: tenant.slug });
    expect(errors.tenant.documents.edges.map((e: any) => e.node.filename)).toEqual(['bad.txt']);
  });
});
