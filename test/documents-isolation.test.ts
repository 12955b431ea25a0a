import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { signUp, createTenant, type TestUser } from './support/client.ts';
import { createUpload, putBytes, uploadDocument, COMPLETE_UPLOAD, DOCUMENT, sha256hex } from './support/uploads.ts';

/** Documents across tenants: nothing of B is reachable from A, including through storage and dedup. */
let app: TestApp;
let userA: TestUser, userB: TestUser;
let tenantA: { id: string; slug: string }, tenantB: { id: string; slug: string };
let docB: any;
let pendingUploadB: any;
const secret = Buffer.from(`B's secret ${crypto.randomUUID()}`);

beforeAll(async () => {
  // No job workers here: the statement count below must see this file's requests only.
  app = await startTestApp({ WORKERS: 'false' });
  userA = await signUp(app, 'a');
  userB = await signUp(app, 'b');
  tenantA = await createTenant(userA, 'doc-a');
  tenantB = await createTenant(userB, 'doc-b');
  docB = (await uploadDocument(userB, tenantB.id, secret, { filename: 'secret.txt' })).document;
  pendingUploadB = await createUpload(userB, tenantB.id, Buffer.from('pending in B'), { filename: 'pending.txt' });
  await putBytes(pendingUploadB, Buffer.from('pending in B'));
});
afterAll(async () => {
  await app?.stop();
});

describe('documents across tenants', () => {
  it('A cannot see, complete, rename, delete or upload into B', async () => {
    const q = userA.gql;
    expect((await q.ok(DOCUMENT, { id: docB.id })).node).toBeNull();
    expect((await q.request(COMPLETE_UPLOAD, { u: pendingUploadB.id })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(await q.code(`mutation($i: RenameDocumentInput!) { renameDocument(input: $i) { id } }`, { i: { documentId: docB.id, filename: 'x' } })).toBe('NOT_FOUND');
    expect(await q.code(`mutation($d: ID!) { deleteDocument(documentId: $d) }`, { d: docB.id })).toBe('NOT_FOUND');
    expect(
      await q.code(`mutation($i: CreateUploadInput!) { createUpload(input: $i) { id } }`, {
        i: { tenantId: tenantB.id, filename: 'x.txt', sizeBytes: 1, mimeType: 'text/plain', sha256: sha256hex(Buffer.from('x')) },
      }),
    ).toBe('NOT_FOUND');
    expect((await q.ok(`query($s: String!) { tenant(slug: $s) { documents { totalCount } usage { storageBytes } } }`, { s: tenantB.slug })).tenant).toBeNull();
    // B's document and pending upload are intact.
    const b = await userB.gql.ok(DOCUMENT, { id: docB.id });
    expect(b.node.filename).toBe('secret.txt');
    expect((await userB.gql.ok(COMPLETE_UPLOAD, { u: pendingUploadB.id })).completeUpload.filename).toBe('pending.txt');
  });

  it('dedup is per tenant: A learns nothing from B’s files and stores its own copy', async () => {
    const ticket = await createUpload(userA, tenantA.id, secret, { filename: 'guess.txt' });
    expect(ticket.alreadyStored).toBe(false);
    expect(ticket.url).toBeTruthy();
  });

  it('presigned URLs name only the caller’s tenant prefix', async () => {
    const c = new pg.Client({ connectionString: app.databaseUrl });
    await c.connect();
    const ids = Object.fromEntries((await c.query(`select slug, id from app_public.tenants`)).rows.map((r) => [r.slug, r.id]));
    await c.end();
    const mine = await uploadDocument(userA, tenantA.id, Buffer.from('mine'), { filename: 'mine.txt' });
    const url = new URL((await userA.gql.ok(DOCUMENT, { id: mine.document.id })).node.downloadUrl);
    expect(decodeURIComponent(url.pathname)).toContain(`/tenants/${ids[tenantA.slug]}/objects/`);
    expect(url.href).not.toContain(ids[tenantB.slug]);
    const upload = await createUpload(userA, tenantA.id, Buffer.from('another'), { filename: 'another.txt' });
    expect(decodeURIComponent(new URL(upload.url).pathname)).toContain(`/tenants/${ids[tenantA.slug]}/objects/`);
    // A forged user filename never reaches a key: the key is built from ids only.
    const forged = await createUpload(userA, tenantA.id, Buffer.from('forged'), { filename: `../../tenants/${ids[tenantB.slug]}/objects/x` });
    expect(decodeURIComponent(new URL(forged.url).pathname)).toMatch(new RegExp(`/tenants/${ids[tenantA.slug]}/objects/[0-9a-f-]{36}$`));
  });
});

describe('batching', () => {
  it('50 documents with uploader and file cost the same statements as 5', async () => {
    const LIST = `query($s: String!, $n: Int!) { tenant(slug: $s) { documents(first: $n) { edges { node { filename status uploader { email name } file { sha256 sizeBytes } downloadUrl } } } } }`;
    const owner = await signUp(app, 'many');
    const t = await createTenant(owner, 'many-docs');
    const c = new pg.Client({ connectionString: app.databaseUrl });
    await c.connect();
    const tid = (await c.query(`select id from app_public.tenants where slug = $1`, [t.slug])).rows[0].id;
    const uid = (await c.query(`select id from app_public.users where email = $1`, [owner.email])).rows[0].id;
    // Seed rows directly (the upload path is tested elsewhere): 50 documents over 50 files.
    await c.query(
      `with f as (insert into app_public.files (tenant_id, sha256, size_bytes, mime_type, object_key)
                  select $1::uuid, encode(sha256(g::text::bytea), 'hex'), 10, 'text/plain', 'tenants/' || $1::text || '/objects/' || gen_random_uuid()
                    from generate_series(1, 50) g returning id)
       insert into app_public.documents (tenant_id, file_id, uploader_id, filename, original_name, size_bytes, mime_type)
       select $1::uuid, f.id, $2::uuid, 'doc-' || row_number() over (), 'doc', 10, 'text/plain' from f`,
      [tid, uid],
    );
    await c.end();
    const run = async (n: number) => {
      await owner.gql.ok(LIST, { s: t.slug, n });
      const before = app.services.db.statements;
      const r = await owner.gql.ok(LIST, { s: t.slug, n });
      expect(r.tenant.documents.edges.length).toBe(n);
      return app.services.db.statements - before;
    };
    const five = await run(5);
    const fifty = await run(50);
    expect(fifty).toBe(five);
    // Round trips: BEGIN with the context statement, one SELECT for tenant + page + uploaders + files
    // (relationJoins), COMMIT.
    expect(fifty).toBe(3);
  });
});
