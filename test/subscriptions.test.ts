import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from './support/app.ts';
import { signUp, createTenant, addMember, type TestUser } from './support/client.ts';
import { uuidFromGlobalId } from '../src/graphql/ids.ts';
import { JobRun } from '../src/modules/jobs/run.ts';

/** auditEvents over graphql-ws: delivered to admins and owners, re-checked per event under the subscriber's context. */
let app: TestApp;
let owner: TestUser;
let admin: TestUser;
let tenant: { id: string; slug: string };
const clients: Client[] = [];

function connect(token?: string) {
  const client = createClient({
    url: app.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
  clients.push(client);
  return client;
}

/** Subscribes and collects events; resolves `ready` once the server has confirmed the subscription by a probe. */
function watch(client: Client, tenantId: string) {
  const events: any[] = [];
  const errors: any[] = [];
  let done = false;
  const stop = client.subscribe(
    { query: `subscription($t: ID!) { auditEvents(tenantId: $t) { action targetId outcome actor { email } } }`, variables: { t: tenantId } },
    {
      next: (v) => (v.errors ? errors.push(...v.errors) : events.push(v.data!.auditEvents)),
      error: (e) => errors.push(e),
      complete: () => (done = true),
    },
  );
  return { events, errors, stop, isDone: () => done };
}

async function until(predicate: () => boolean, ms = 5000) {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const rename = (u: TestUser, name: string) =>
  u.gql.ok(`mutation($i: UpdateTenantInput!) { updateTenant(input: $i) { name } }`, { i: { tenantId: tenant.id, name } });

beforeAll(async () => {
  app = await startTestApp();
  owner = await signUp(app, 'owner');
  admin = await signUp(app, 'admin');
  tenant = await createTenant(owner, 'subs');
  await addMember(owner, tenant.id, admin, 'ADMIN');
});
afterAll(async () => {
  for (const c of clients) await c.dispose();
  await app?.stop();
});

describe('auditEvents subscription', () => {
  it('streams each new entry to admins, and stops the moment the subscriber is no longer an admin', async () => {
    const w = watch(connect(admin.gql.token), tenant.id);
    // The subscription is live once the first event arrives: keep renaming until it does.
    for (let i = 0; i < 50 && w.events.length === 0; i++) {
      await rename(owner, `Renamed ${i}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(w.events[0]).toMatchObject({ action: 'updateTenant', outcome: 'SUCCESS', actor: { email: owner.email } });
    // Demoted to MEMBER: the next entries are re-read under the admin's own context and not delivered.
    await owner.gql.ok(`mutation($i: ChangeMemberRoleInput!) { changeMemberRole(input: $i) { role } }`, {
      i: { tenantId: tenant.id, userId: admin.id, role: 'MEMBER' },
    });
    await new Promise((r) => setTimeout(r, 300)); // let the demotion's own entry arrive (or not) first
    const seen = w.events.length;
    const ownerWatch = watch(connect(owner.gql.token), tenant.id);
    for (let i = 0; i < 50 && ownerWatch.events.length === 0; i++) {
      await rename(owner, `After demotion ${i}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(ownerWatch.events.length).toBeGreaterThan(0);
    expect(w.events.slice(seen).filter((e) => e.action === 'updateTenant')).toEqual([]);
    w.stop();
    ownerWatch.stop();
  });

  it('members (not admins) are refused with FORBIDDEN', async () => {
    const member = await signUp(app, 'member');
    await addMember(owner, tenant.id, member, 'MEMBER');
    const w = watch(connect(member.gql.token), tenant.id);
    await until(() => w.errors.length > 0 || w.isDone());
    expect(w.errors[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('a bad token closes the connection (4403), no token cannot subscribe', async () => {
    const bad = connect('not-a-token');
    const closed = await new Promise<number>((resolve) => {
      bad.on('closed', (e: any) => resolve(e.code));
      bad.subscribe({ query: `subscription($t: ID!) { auditEvents(tenantId: $t) { action } }`, variables: { t: tenant.id } }, { next() {}, error() {}, complete() {} });
    });
    expect(closed).toBe(4403);
    const anon = watch(connect(), tenant.id);
    await until(() => anon.errors.length > 0 || anon.isDone());
    expect(anon.errors[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('tenantJobs: reads shared by the subscribers of one principal, never across principals', () => {
  it('every connection gets every update; a member removed mid-stream stops receiving while the others go on', async () => {
    const member = await signUp(app, 'jobs-member');
    const other = await signUp(app, 'jobs-other');
    const jobsTenant = await createTenant(owner, 'jobs');
    await addMember(owner, jobsTenant.id, member, 'MEMBER');
    await addMember(owner, jobsTenant.id, other, 'MEMBER');
    const tenantId = uuidFromGlobalId('Tenant', jobsTenant.id, 'tenantId');
    const ownerId = uuidFromGlobalId('User', owner.id, 'userId');
    const job = (await app.services.ownerPool.query(`insert into app_public.jobs (tenant_id, type, requested_by, max_attempts) values ($1, 'site-provision', $2, 1) returning id`, [tenantId, ownerId])).rows[0] as { id: string };
    const run = new JobRun(app.services, { tenantId, userId: ownerId, requestId: 'test', jobId: job.id, args: {} }, 1, 1, new AbortController().signal);
    expect(await run.begin()).toBe(true);

    // Three connections of the member (one principal: one read per event), one of another member, one of the owner.
    const watchJobs = (token: string) => {
      const steps: string[] = [];
      const errors: unknown[] = [];
      const client = connect(token);
      client.subscribe(
        { query: `subscription($t: ID!) { tenantJobs(tenantId: $t) { id progress step } }`, variables: { t: jobsTenant.id } },
        { next: (v) => (v.errors ? errors.push(...v.errors) : steps.push((v.data as any).tenantJobs.step)), error: (e) => errors.push(e), complete: () => undefined },
      );
      return { steps, errors };
    };
    const mine = [watchJobs(member.gql.token!), watchJobs(member.gql.token!), watchJobs(member.gql.token!)];
    const theirs = watchJobs(other.gql.token!);
    const owners = watchJobs(owner.gql.token!);
    const all = [...mine, theirs, owners];
    let progress = 0;
    // Live once every connection has an event.
    for (let i = 0; i < 50 && all.some((w) => w.steps.length === 0); i++) {
      await run.progress(++progress, `warm-up ${progress}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // An event re-reads the row when it is delivered, so a late notice can carry a newer state (or repeat one):
    // each update waits for every connection, and the states seen are compared without repeats.
    const seen = (w: { steps: string[] }, prefix: string) => [...new Set(w.steps.filter((s) => s.startsWith(prefix)))];
    await new Promise((r) => setTimeout(r, 300)); // the warm-up's last notices delivered
    const executions = async () => {
      // Copied at once: prom-client hands out its live counters.
      const counts = new Map((await app.services.metrics.subscriptionEvents.get()).values.map((v) => [v.labels.execution, v.value]));
      return (label: string) => counts.get(label) ?? 0;
    };
    const before = await executions();
    for (let i = 1; i <= 3; i++) {
      await run.progress(++progress, `before ${i}`);
      await until(() => all.every((w) => w.steps.includes(`before ${i}`)));
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const w of all) expect(seen(w, 'before')).toEqual(['before 1', 'before 2', 'before 3']);
    // Five connections, three principals: per event 3 executions, the member's other 2 connections reuse theirs.
    const after = await executions();
    const own = after('own') - before('own');
    const shared = after('shared') - before('shared');
    expect(own).toBeGreaterThanOrEqual(9);
    expect(shared * 3).toBe(own * 2);

    await owner.gql.ok(`mutation($i: RemoveMemberInput!) { removeMember(input: $i) }`, { i: { tenantId: jobsTenant.id, userId: member.id } });
    for (let i = 1; i <= 3; i++) {
      await run.progress(++progress, `after ${i}`);
      await until(() => theirs.steps.includes(`after ${i}`) && owners.steps.includes(`after ${i}`));
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const w of [theirs, owners]) expect(seen(w, 'after')).toEqual(['after 1', 'after 2', 'after 3']);
    for (const w of mine) expect(seen(w, 'after')).toEqual([]);
    for (const w of all) expect(w.errors).toEqual([]);
    await run.complete();
  });
});

describe('tenantJobs: one transaction per subscriber per event', () => {
  it('loads the payload, a relation included, once under the subscriber’s context: the load is the visibility check', async () => {
    const member = await signUp(app, 'one-read-member');
    const oneTenant = await createTenant(owner, 'one-read');
    await addMember(owner, oneTenant.id, member, 'MEMBER');
    const tenantId = uuidFromGlobalId('Tenant', oneTenant.id, 'tenantId');
    const ownerId = uuidFromGlobalId('User', owner.id, 'userId');
    const job = (await app.services.ownerPool.query(`insert into app_public.jobs (tenant_id, type, requested_by, max_attempts) values ($1, 'site-provision', $2, 1) returning id`, [tenantId, ownerId])).rows[0] as { id: string };
    const run = new JobRun(app.services, { tenantId, userId: ownerId, requestId: 'test', jobId: job.id, args: {} }, 1, 1, new AbortController().signal);
    expect(await run.begin()).toBe(true);
    const events: any[] = [];
    const errors: unknown[] = [];
    connect(member.gql.token!).subscribe(
      { query: `subscription($t: ID!) { tenantJobs(tenantId: $t) { id step requestedBy { email } } }`, variables: { t: oneTenant.id } },
      { next: (v) => (v.errors ? errors.push(...v.errors) : events.push((v.data as any).tenantJobs)), error: (e) => errors.push(e), complete: () => undefined },
    );
    let progress = 0;
    for (let i = 0; i < 50 && events.length === 0; i++) {
      await run.progress(++progress, `warm-up ${progress}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 200));

    // The statements that read this job, while one update reaches the one subscriber.
    const seen: string[] = [];
    app.services.db.observer = (q) => {
      const { text, values } = typeof q === 'string' ? { text: q, values: [] } : (q as { text: string; values?: unknown[] });
      if (/^\s*SELECT/i.test(text) && text.includes('"app_public"."jobs"') && (values ?? []).includes(job.id)) seen.push(text);
    };
    try {
      await run.progress(++progress, 'measured');
      await until(() => events.some((e) => e.step === 'measured'));
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      app.services.db.observer = undefined;
    }
    const payloadReads = seen.filter((t) => t.includes('"step"'));
    expect(seen.filter((t) => /count\(/i.test(t))).toEqual([]);
    expect(payloadReads).toHaveLength(1);
    expect(events.find((e) => e.step === 'measured')).toMatchObject({ requestedBy: { email: owner.email } });
    expect(errors).toEqual([]);
    await run.complete();
  });
});
