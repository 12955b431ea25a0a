import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startEmbeddedS3, type EmbeddedS3 } from '../src/storage/embedded.ts';
import { freeLocalPort } from '../src/db/embedded.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import { WorkerProcesses, poll } from './support/workers.ts';
import { signUp, createTenant, rowUuid, type TestUser } from './support/client.ts';
import { COMPLETE_UPLOAD, createUpload, putBytes, uploadDocument, waitForDocument } from './support/uploads.ts';

/**
 * Object storage unreachable (this file's own s3rver, stopped and started on the same port and directory): a request
 * needing it answers the retryable SERVICE_UNAVAILABLE in words, and a job's failure says it was object storage.
 */
let dir: string;
let port: number;
let s3: EmbeddedS3 | undefined;
let app: TestApp;
let workers: WorkerProcesses;
let owner: TestUser;
let tenant: { id: string; slug: string };
let sql: pg.Client;
const bucket = `tp-test-${crypto.randomBytes(6).toString('hex')}`;

const startS3 = async () => (s3 = await startEmbeddedS3(dir, port, bucket));
const stopS3 = async () => {
  await s3?.stop();
  s3 = undefined;
};

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantplane-s3-faults-'));
  port = await freeLocalPort();
  await startS3();
  // No workers in this process: the test decides when a job runs (in a worker process, below).
  app = await startTestApp({ WORKERS: 'false', S3_ENDPOINT: s3!.endpoint, S3_BUCKET: bucket });
  workers = new WorkerProcesses(app);
  owner = await signUp(app, 'storage');
  tenant = await createTenant(owner, 'storage');
  sql = new pg.Client({ connectionString: app.databaseUrl });
  await sql.connect();
});
afterAll(async () => {
  workers?.killAll();
  await sql?.end();
  await app?.stop();
  await stopS3();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('object storage unreachable', () => {
  it('completeUpload answers SERVICE_UNAVAILABLE "object storage is unreachable, try again", and succeeds once it is back', async () => {
    const bytes = Buffer.from('hello while storage is down\n');
    const ticket = await createUpload(owner, tenant.id, bytes);
    await putBytes(ticket, bytes);
    await stopS3();
    const r = await owner.gql.request(COMPLETE_UPLOAD, { u: ticket.id });
    expect(r.status).toBe(503);
    expect(r.data).toBeNull();
    expect(r.errors).toEqual([
      expect.objectContaining({ message: 'object storage is unreachable, try again', extensions: { code: 'SERVICE_UNAVAILABLE', requestId: expect.any(String) } }),
    ]);
    const ready = await fetch(`${app.url.replace(/\/graphql$/, '')}/health/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'storage unreachable' });

    // Nothing was lost: the same upload completes once storage answers again.
    await startS3();
    const done = await owner.gql.ok(COMPLETE_UPLOAD, { u: ticket.id });
    expect(done.completeUpload).toMatchObject({ status: 'UPLOADED', sizeBytes: bytes.length });
  });

  it("a job's failure reason names object storage in words, not the socket error", async () => {
    // A worker process, proven ready by a first document (a worker does not start while storage is down: it checks
    // the bucket at start-up), then paused while the next document is uploaded and storage goes away.
    const worker = workers.start();
    const warmUp = await uploadDocument(owner, tenant.id, Buffer.from('warm-up\n'));
    await waitForDocument(owner, warmUp.document.id, (d) => d.status === 'PROCESSED', 60_000);
    worker.kill('SIGSTOP');
    const bytes = Buffer.from('processed while storage is down\n');
    const ticket = await createUpload(owner, tenant.id, bytes);
    await putBytes(ticket, bytes);
    const doc = (await owner.gql.ok(COMPLETE_UPLOAD, { u: ticket.id })).completeUpload;
    await stopS3();
    worker.kill('SIGCONT');
    // Every attempt fails on storage (3 retries with backoff), then the job and the document fail with the reason.
    const job = await poll(
      async () => {
        const r = await sql.query(`select j.status, j.error, j.logs from app_public.jobs j where j.type = 'document-process' and j.args->>'documentId' = $1`, [rowUuid(doc.id)]);
        return r.rows[0]?.status === 'FAILED' ? r.rows[0] : null;
      },
      60_000,
      'the document job to fail',
    );
    const expected = new RegExp(`^object storage is unreachable \\(connection refused at 127\\.0\\.0\\.1:${port}\\)$`);
    expect(job.error).toMatch(expected);
    expect(job.logs.join('\n')).toMatch(/attempt 1 failed: object storage is unreachable \(connection refused at 127\.0\.0\.1:\d+\); retrying/);
    expect(job.logs.join('\n')).not.toMatch(/ECONNREFUSED/);
    const failed = await waitForDocument(owner, doc.id, (d) => d.status === 'ERROR');
    expect(failed.error).toMatch(expected);
  }, 90_000);
});
