import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import pg from 'pg';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { freeLocalPort, startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { tenantScopedGlobalId, uuidFromGlobalId } from '../src/graphql/ids.ts';
import { startApiProcess, type ApiProcess } from './support/api-process.ts';
import { signUp, createTenant, type TestUser } from './support/client.ts';
import { poll } from './support/workers.ts';

/**
 * The API's PostgreSQL stopped and started again under a running API process with open subscriptions. The database
 * is this file's own embedded server (stopping the shared one would break the other test files).
 */
let dir: string;
let port: number;
let server: EmbeddedDatabase;
let api: ApiProcess;
let owner: TestUser;
let other: TestUser;
let tenant: { id: string; slug: string };
const sockets: Client[] = [];

const owned = async <T,>(fn: (c: pg.Client) => Promise<T>) => {
  const c = new pg.Client({ connectionString: server.url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
};

const ready = async () => {
  const started = Date.now();
  const res = await fetch(`${api.base}/health/ready`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as { status: string }, ms: Date.now() - started };
};

/** A subscription's payloads as they arrive, and whatever ended it. */
function watch(query: string, variables: Record<string, unknown>) {
  const client = createClient({
    url: api.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${owner.gql.token}` },
    retryAttempts: 0,
  });
  sockets.push(client);
  const events: any[] = [];
  const ended: unknown[] = [];
  client.subscribe({ query, variables }, { next: (v) => events.push(v), error: (e) => ended.push(e), complete: () => ended.push('complete') });
  return { events, ended };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantplane-restart-'));
  fs.chmodSync(dir, 0o755);
  port = await freeLocalPort();
  server = await startEmbeddedPostgres(path.join(dir, 'postgres'), port);
  await migrate(server.url);
  api = await startApiProcess({
    DATABASE_URL: server.url,
    S3_ENDPOINT: inject('s3Endpoint'),
    S3_BUCKET: `tp-test-${crypto.randomBytes(6).toString('hex')}`,
    WORKERS: 'true',
  });
  owner = await signUp(api.app, 'restart');
  other = await signUp(api.app, 'revoked');
  tenant = await createTenant(owner, 'restart');
}, 120_000);
afterAll(async () => {
  for (const s of sockets) await s.dispose();
  await api?.stop();
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('PostgreSQL restarted under a running API', () => {
  it('recovers without a restart: readiness 503 then 200, requests 503 then served, a job finished during the outage reaches its subscribers, workers pick up again', async () => {
    const tenantUuid = uuidFromGlobalId('Tenant', tenant.id, 'tenantId');
    const userUuid = uuidFromGlobalId('User', owner.id, 'id');
    // A tracked job the test itself moves (no pg-boss job behind it: no worker touches it).
    const jobUuid = await owned(async (c) => {
      const r = await c.query(
        `insert into app_public.jobs (tenant_id, type, status, max_attempts, requested_by, started_at) values ($1, 'tenant-export', 'RUNNING', 1, $2, now()) returning id`,
        [tenantUuid, userUuid],
      );
      return r.rows[0].id as string;
    });
    const jobId = tenantScopedGlobalId('Job', tenantUuid, jobUuid);
    const one = watch(`subscription($j: ID!) { jobUpdated(jobId: $j) { id status progress } }`, { j: jobId });
    const all = watch(`subscription($t: ID!) { tenantJobs(tenantId: $t) { id status progress } }`, { t: tenant.id });
    const latest = (w: { events: any[] }, field: string) => w.events.filter((e) => e.data?.[field]?.id === jobId).at(-1)?.data[field];
    // Both live: a progress change arrives through NOTIFY.
    for (let p = 1; !(latest(one, 'jobUpdated')?.progress > 0 && latest(all, 'tenantJobs')?.progress > 0); p++) {
      expect(p).toBeLessThan(100);
      await owned((c) => c.query(`update app_public.jobs set progress = $3, updated_at = now() where tenant_id = $1 and id = $2`, [tenantUuid, jobUuid, p]));
      await new Promise((r) => setTimeout(r, 100));
    }
    // Another user's socket, whose session is revoked while nobody listens.
    const closed: number[] = [];
    const revoked = createClient({
      url: api.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${other.gql.token}` },
      retryAttempts: 0,
      lazy: false,
      onNonLazyError: () => undefined, // the 4401 close is what this socket waits for
      on: { closed: (e) => closed.push((e as { code: number }).code) },
    });
    sockets.push(revoked);
    await new Promise<void>((resolve) => revoked.on('connected', () => resolve()));
    expect((await ready()).status).toBe(200);

    await server.stop();
    // The outage: the process stays up, readiness says so (promptly), requests answer a retryable 503.
    const down = await ready();
    expect(down).toMatchObject({ status: 503, body: { status: 'database unreachable' } });
    expect(down.ms).toBeLessThan(5_000);
    const during = await owner.gql.request(`{ me { email } }`);
    expect(during.status).toBe(503);
    expect(during.errors?.[0]).toMatchObject({ message: 'the database is unreachable, try again', extensions: { code: 'SERVICE_UNAVAILABLE' } });
    await new Promise((r) => setTimeout(r, 1500));
    expect(api.exit()).toBeUndefined();

    server = await startEmbeddedPostgres(path.join(dir, 'postgres'), port);
    // The job finishes and the other session is revoked while the API's LISTEN connection is not there: their
    // NOTIFYs reach nobody. Whether or not the API has reconnected since the restart, its LISTEN backend is
    // terminated (and waited for) in the same transaction, so the commit's notices are certainly missed.
    // Terminated last, right before the commit, and tried again should the API have listened again meanwhile (a
    // reconnect can land between the terminate and the commit on a loaded machine).
    const { missed, revocation } = await owned(async (c) => {
      for (let attempt = 1; ; attempt++) {
        await c.query('begin');
        const missed = await c.query(
          `update app_public.jobs set status = 'COMPLETED', progress = 100, completed_at = now(), updated_at = now() where tenant_id = $1 and id = $2`,
          [tenantUuid, jobUuid],
        );
        const revocation = await c.query(`update app_private.refresh_tokens set revoked_at = now() where user_id = $1 and revoked_at is null`, [
          uuidFromGlobalId('User', other.id, 'id'),
        ]);
        await c.query(`select pg_terminate_backend(pid, 5000) from pg_stat_activity where application_name = 'tenantplane-listen'`);
        const listening = await c.query(`select count(*)::int as n from pg_stat_activity where application_name = 'tenantplane-listen'`);
        if (listening.rows[0].n === 0) {
          await c.query('commit');
          return { missed, revocation };
        }
        await c.query('rollback');
        expect(attempt, 'the API listened again before the commit, every time').toBeLessThan(20);
      }
    });
    expect(missed.rowCount).toBe(1);
    expect(revocation.rowCount).toBeGreaterThan(0);

    // Once LISTEN is back, every subscription re-reads its state: both subscribers see the job COMPLETED.
    await poll(async () => latest(one, 'jobUpdated')?.status === 'COMPLETED' && latest(all, 'tenantJobs')?.status === 'COMPLETED', 20_000, 'the resync');
    expect(latest(one, 'jobUpdated')).toEqual({ id: jobId, status: 'COMPLETED', progress: 100 });
    expect(one.ended).toEqual([]);
    expect(all.ended).toEqual([]);
    // The session revoked meanwhile was looked up again: its socket is closed as if the notice had arrived.
    await poll(async () => closed.includes(4401), 10_000, 'the revoked session’s socket to close');

    await poll(async () => (await ready()).status === 200, 20_000, 'readiness');
    expect((await owner.gql.ok(`{ me { email } }`)).me.email).toBe(owner.email);

    // The job workers picked up again: a new job runs to the end, and its changes reach the subscribers live.
    const exported = await owner.gql.ok(`mutation($t: ID!) { exportTenant(tenantId: $t) { id status } }`, { t: tenant.id });
    const exportId = exported.exportTenant.id;
    await poll(
      async () => all.events.some((e) => e.data?.tenantJobs?.id === exportId && e.data.tenantJobs.status === 'COMPLETED'),
      60_000,
      'the export job to complete (seen by the subscriber)',
    );
    expect(api.exit()).toBeUndefined();
  }, 120_000);
});
