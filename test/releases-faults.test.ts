import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';
import { createTenant, rowUuid, signUp, type TestUser } from './support/client.ts';
import { platformStaff } from './support/fleet.ts';
import { startRegistry, type TestRegistry } from './support/registry.ts';
import { WorkerProcesses, poll } from './support/workers.ts';

/**
 * Faults of releases with real processes: the API runs no workers; worker processes (`src/main.ts worker`) build,
 * deploy and update. A worker SIGKILLed in the middle of a site's update, after its backup: another worker resumes
 * the job, does not back the half-done site up again, and finishes the update — the data migrated once.
 */
let app: TestApp;
let registry: TestRegistry;
let workers: WorkerProcesses;
let db: pg.Client;
let tmp: string;
let owner: TestUser;
let tenant: { id: string; slug: string };

const JOB = `query($id: ID!) { node(id: $id) { ... on Job { id status error attempts logs } } }`;

async function job(id: string, ms = 90_000) {
  return poll(
    async () => {
      const j = (await owner.gql.ok(JOB, { id })).node;
      return j.status === 'COMPLETED' || j.status === 'FAILED' ? j : undefined;
    },
    ms,
    'the job to end',
  );
}

function workerEnv(extra: Record<string, string> = {}) {
  return { RELEASES_DIR: path.join(tmp, 'releases'), BENCH_PULL_POLL_SECONDS: '0.3', WORKER_HEARTBEAT_SECONDS: '1', WORKER_NAME: 'app-releases', ...extra };
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-releases-faults-'));
  [app, registry] = await Promise.all([startTestApp({ WORKERS: 'false' }), startRegistry()]);
  workers = new WorkerProcesses(app);
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  const staff = await platformStaff(app);
  owner = await signUp(app, 'rel-faults');
  tenant = await createTenant(owner, 'rel-faults');
  const cluster = (await staff.gql.ok(`{ clusters { edges { node { id isDefault } } } }`)).clusters.edges.map((e: any) => e.node).find((c: any) => c.isDefault);
  await staff.gql.ok(`mutation($i: CreateRegistryInput!) { createRegistry(input: $i) { id } }`, {
    i: { clusterId: cluster.id, url: registry.url, namespace: 'tp', username: registry.username, password: registry.password },
  });
}, 60_000);

afterAll(async () => {
  workers?.killAll();
  await db?.end();
  await app?.stop();
  await registry?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('releases when a worker dies', () => {
  it('a worker SIGKILLed mid-update, after the backup: another resumes it, backs up nothing twice, the site ends updated', async () => {
    const steady = workers.start(workerEnv());
    const source = async (version: string) =>
      (await owner.gql.ok(`mutation($i: CreateAppSourceInput!) { createAppSource(input: $i) { id } }`, { i: { tenantId: tenant.id, repositoryUrl: 'builtin:notes', branch: 'main', version } })).createAppSource.id;
    const release = async (group: string) => {
      const b = (await owner.gql.ok(`mutation($g: ID!) { buildDeployCandidate(groupId: $g) { candidate { id } job { id } } }`, { g: group })).buildDeployCandidate;
      expect((await job(b.job.id)).status).toBe('COMPLETED');
      const d = (await owner.gql.ok(`mutation($c: ID!) { deployBench(candidateId: $c) { bench { id } job { id } } }`, { c: b.candidate.id })).deployBench;
      expect((await job(d.job.id)).status).toBe('COMPLETED');
      return d.bench.id as string;
    };
    const group = (await owner.gql.ok(`mutation($i: CreateReleaseGroupInput!) { createReleaseGroup(input: $i) { id } }`, { i: { tenantId: tenant.id, name: 'notes', title: 'Notes', apps: [await source('v1.0.0')] } }))
      .createReleaseGroup.id;
    await release(group);
    const created = (await owner.gql.ok(`mutation($i: CreateSiteInput!) { createSite(input: $i) { password site { id } job { id } } }`, {
      i: { tenantId: tenant.id, name: `notes-${process.pid}`, displayName: 'Notes', releaseGroup: group },
    })).createSite;
    expect((await job(created.job.id)).status).toBe('COMPLETED');
    const siteId = created.site.id;
    const conn = (await owner.gql.ok(`query($id: ID!) { node(id: $id) { ... on Site { connection { host port database user } } } }`, { id: siteId })).node.connection;
    const site = new pg.Client({ ...conn, password: created.password });
    await site.connect();
    try {
      await site.query(`insert into notes (title, tags) values ('groceries', '{home,todo}'), ('taxes', '{todo}')`);
      await owner.gql.ok(`mutation($g: ID!, $a: [ID!]) { updateReleaseGroup(groupId: $g, input: { apps: $a }) { id } }`, { g: group, a: [await source('v2.0.0')] });
      const bench2 = await release(group);

      // The update goes to a slow worker, killed once its backup is taken.
      steady.kill('SIGTERM');
      await new Promise((r) => steady.once('exit', r));
      const slow = workers.start(workerEnv({ JOB_STEP_DELAY_MS: '1500' }));
      const update = (await owner.gql.ok(`mutation($s: ID!) { updateSite(siteId: $s) { id } }`, { s: siteId })).updateSite;
      const jobUuid = rowUuid(update.id);
      await poll(async () => (await db.query(`select progress from app_public.jobs where id = $1`, [jobUuid])).rows[0]?.progress >= 45, 60_000, 'the update to be past its backup');
      slow.kill('SIGKILL');
      await new Promise((r) => slow.once('exit', r));
      expect((await db.query(`select status from app_public.sites where id = $1`, [rowUuid(siteId)])).rows[0].status).toBe('UPDATING');

      workers.start(workerEnv());
      const done = await job(update.id, 120_000);
      expect(done).toMatchObject({ status: 'COMPLETED', attempts: 2 });
      const after = (await owner.gql.ok(`query($id: ID!) { node(id: $id) { ... on Site { status bench { id } modules { name status version } backups { edges { node { status } } } } } }`, { id: siteId })).node;
      expect(after).toMatchObject({ status: 'HEALTHY', bench: { id: bench2 }, modules: [{ name: 'notes', status: 'ENABLED', version: '2.0.0' }] });
      // One backup, taken by the first attempt; the second did not archive the site again.
      expect(after.backups.edges.map((e: any) => e.node.status)).toEqual(['SUCCESS']);
      expect(done.logs.filter((l: string) => l.startsWith('timings:'))).toHaveLength(1);
      await site.end().catch(() => undefined);
      const again = new pg.Client({ ...conn, password: created.password });
      await again.connect();
      try {
        expect((await again.query(`select n.title, array_agg(t.tag order by t.tag) as tags from notes n join note_tags t on t.note_id = n.id group by n.title order by n.title`)).rows).toEqual([
          { title: 'groceries', tags: ['home', 'todo'] },
          { title: 'taxes', tags: ['todo'] },
        ]);
      } finally {
        await again.end();
      }
    } finally {
      await site.end().catch(() => undefined);
    }
  }, 300_000);
});
