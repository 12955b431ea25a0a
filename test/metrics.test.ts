import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, PASSWORD, createTenant, signUp, type TestUser } from './support/client.ts';
import { uploadDocument, waitForDocument } from './support/uploads.ts';
import { createLogger } from '../src/observability/logger.ts';

/**
 * Observability: GET /metrics (Prometheus text, prom-client) behind METRICS_TOKEN, and the JSON logs (pino): one
 * access line per GraphQL request, the request id carried into jobs, secrets redacted.
 */
const METRICS_TOKEN = 'metrics-token-for-the-test-0123456789';
let app: TestApp;
let user: TestUser;
const lines: Array<Record<string, any>> = [];
const raw: string[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line));
      }
      done();
    },
  });
  app = await startTestApp({ METRICS_TOKEN }, { log: createLogger('info', sink) });
  user = await signUp(app, 'metrics');
});
afterAll(async () => {
  await app?.stop();
});

async function scrape() {
  const res = await fetch(new URL('/metrics', app.url), { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

/** The value of one sample, e.g. value(text, 'graphql_errors_total{code="BAD_USER_INPUT"}'); 0 when absent. */
function value(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

async function until(predicate: () => boolean | Promise<boolean>, ms = 10_000) {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('/metrics', () => {
  it('requires METRICS_TOKEN when it is set', async () => {
    const url = new URL('/metrics', app.url);
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: 'Bearer wrong-token' } })).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status).toBe(200);
  });

  it('exposes every named metric, with the default process metrics', async () => {
    const text = await scrape();
    for (const [name, type] of [
      ['graphql_request_duration_seconds', 'histogram'],
      ['graphql_errors_total', 'counter'],
      ['db_pool_connections', 'gauge'],
      ['jobs_total', 'counter'],
      ['job_duration_seconds', 'histogram'],
      ['websocket_connections', 'gauge'],
      ['subscription_events_total', 'counter'],
      ['process_cpu_user_seconds_total', 'counter'],
      ['process_resident_memory_bytes', 'gauge'],
      ['nodejs_eventloop_lag_seconds', 'gauge'],
    ]) {
      expect(text, name).toContain(`# TYPE ${name} ${type}`);
    }
    for (const state of ['in_use', 'idle', 'waiting']) expect(text).toMatch(new RegExp(`^db_pool_connections\\{state="${state}"\\} \\d+$`, 'm'));
    // The pool has connections after the sign-up; none is in use between requests.
    expect(value(text, 'db_pool_connections{state="idle"}')).toBeGreaterThan(0);
    expect(value(text, 'db_pool_connections{state="in_use"}')).toBe(0);
  });

  it('counts a request by operation name and its duration', async () => {
    const sample = 'graphql_request_duration_seconds_count{operation="MetricsProbe"}';
    const before = value(await scrape(), sample);
    await user.gql.ok(`query MetricsProbe { me { id } }`);
    const after = await scrape();
    expect(value(after, sample)).toBe(before + 1);
    expect(value(after, 'graphql_request_duration_seconds_sum{operation="MetricsProbe"}')).toBeGreaterThan(0);
    expect(value(after, 'graphql_request_duration_seconds_bucket{le="+Inf",operation="MetricsProbe"}')).toBe(before + 1);
  });

  it('counts errors by code (validation, input, authentication, refused before Apollo)', async () => {
    const codes = ['GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT', 'UNAUTHENTICATED', 'BAD_REQUEST'];
    const before = await scrape();
    await user.gql.request(`query NotAValidOperation { nope }`);
    await user.gql.request(`{ tenants(first: 1000) { edges { node { id } } } }`);
    await new Gql(app, 'garbage').request(`{ me { id } }`);
    await fetch(app.url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' }); // CSRF refusal
    const after = await scrape();
    for (const code of codes) expect(value(after, `graphql_errors_total{code="${code}"}`), code).toBe(value(before, `graphql_errors_total{code="${code}"}`) + 1);
    // A client's operation name becomes a label only for a valid operation; refused ones count as `__invalid`.
    expect(after).not.toContain('operation="NotAValidOperation"');
    expect(value(after, 'graphql_request_duration_seconds_count{operation="__invalid"}')).toBeGreaterThan(value(before, 'graphql_request_duration_seconds_count{operation="__invalid"}'));
  });

  it('counts open WebSocket connections', async () => {
    const client = createClient({ url: app.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${user.gql.token}` }, lazy: false, retryAttempts: 0 });
    await new Promise<void>((resolve) => client.on('connected', () => resolve()));
    expect(value(await scrape(), 'websocket_connections')).toBe(1);
    await client.dispose();
    await until(async () => value(await scrape(), 'websocket_connections') === 0);
  });

  it('counts jobs by queue and status, with their duration', async () => {
    const tenant = await createTenant(user, 'metrics');
    const sample = 'jobs_total{queue="document-process",status="completed"}';
    const before = value(await scrape(), sample);
    const { document } = await uploadDocument(user, tenant.id, Buffer.from('hello metrics\n'), { filename: 'm.txt', mimeType: 'text/plain' });
    await waitForDocument(user, document.id);
    await until(async () => value(await scrape(), sample) === before + 1);
    const text = await scrape();
    expect(value(text, 'job_duration_seconds_count{queue="document-process",status="completed"}')).toBe(before + 1);
  });
});

describe('logs', () => {
  it('one JSON access line per GraphQL request: operation, duration, error codes, request id, user id', async () => {
    const res = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.gql.token}` },
      body: JSON.stringify({ query: 'query AccessLogProbe { me { id } nope: tenant(slug: "nope-nope") { id } }' }),
    });
    const requestId = res.headers.get('x-request-id');
    await until(() => lines.some((l) => l.requestId === requestId && l.msg === 'graphql request'));
    const access = lines.filter((l) => l.requestId === requestId && l.msg === 'graphql request');
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ level: 30, operationName: 'AccessLogProbe', status: 200, errorCodes: [], method: 'POST' });
    expect(access[0]!.durationMs).toBeGreaterThanOrEqual(0);
    expect(access[0]!.userId).toMatch(/^[0-9a-f-]{36}$/);

    const refused = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ tenants(first: 500) { edges { node { id } } } }' }) });
    const refusedId = refused.headers.get('x-request-id');
    await until(() => lines.some((l) => l.requestId === refusedId));
    expect(lines.find((l) => l.requestId === refusedId)).toMatchObject({ status: 400, errorCodes: ['BAD_USER_INPUT'], userId: null });
  });

  it('never logs passwords, tokens or Authorization headers', async () => {
    const start = raw.length;
    const session = await new Gql(app).ok(`mutation LogInProbe($input: LogInInput!) { logIn(input: $input) { accessToken refreshToken } }`, { input: { email: user.email, password: PASSWORD } });
    await new Gql(app).request(`mutation($input: LogInInput!) { logIn(input: $input) { accessToken } }`, { input: { email: user.email, password: 'a wrong password here' } });
    await new Gql(app, session.logIn.accessToken).request(`{ me { id } }`);
    // Even a careless log call is redacted.
    app.services.log.info({ headers: { authorization: `Bearer ${session.logIn.accessToken}` }, input: { password: PASSWORD }, refreshToken: session.logIn.refreshToken }, 'careless');
    await until(() => raw.slice(start).some((l) => l.includes('"careless"')));
    const logged = raw.slice(start).join('\n');
    expect(logged).toContain('LogInProbe');
    for (const secret of [PASSWORD, 'a wrong password here', session.logIn.accessToken, session.logIn.refreshToken, 'Bearer ']) {
      expect(logged).not.toContain(secret);
    }
    expect(lines.find((l) => l.msg === 'careless')).toMatchObject({ headers: { authorization: '[redacted]' }, input: { password: '[redacted]' }, refreshToken: '[redacted]' });
  });

  it("carries the request id into the jobs it enqueued", async () => {
    const tenant = await createTenant(user, 'joblog');
    const { document } = await uploadDocument(user, tenant.id, Buffer.from('job log\n'), { filename: 'j.txt', mimeType: 'text/plain' });
    await waitForDocument(user, document.id);
    await until(() => lines.some((l) => l.msg === 'job completed' && l.queue === 'document-process'));
    const requestIds = new Set(lines.filter((l) => l.msg === 'graphql request').map((l) => l.requestId));
    const jobLines = lines.filter((l) => l.msg === 'job completed' && l.queue === 'document-process');
    for (const l of jobLines) {
      expect(l.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(requestIds.has(l.requestId), 'the job line names the request that enqueued it').toBe(true);
    }
  });
});
