import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';
import type { TestUser } from './support/client.ts';
import { WorkerProcesses, poll } from './support/workers.ts';
import { SERVER_FIELDS, fleetName, platformStaff } from './support/fleet.ts';
import { defaultServerName, isReachable, machineHostname } from '../src/modules/fleet/app-servers.ts';

/**
 * Issue 10 §1, app servers: `npm run worker` registers its process as an APP server of its cluster and heartbeats;
 * killed, it shows unreachable after three missed beats; stopped cleanly, its row stays and shows unreachable at once.
 * Heartbeats are 0.5 s here (WORKER_HEARTBEAT_SECONDS) to keep the test short.
 */
let app: TestApp;
let staff: TestUser;
let workers: WorkerProcesses;

beforeAll(async () => {
  app = await startTestApp({ WORKER_HEARTBEAT_SECONDS: '0.5' });
  staff = await platformStaff(app);
  workers = new WorkerProcesses(app);
});
afterAll(async () => {
  workers?.killAll();
  await app?.stop();
});

const APP_SERVERS = `{ servers(type: APP, first: 100) { edges { node { ${SERVER_FIELDS} } } } }`;
async function appServer(name: string) {
  const r = await staff.gql.ok(APP_SERVERS);
  return r.servers.edges.map((e: any) => e.node).find((s: any) => s.name === name);
}

describe('app servers', () => {
  it('a worker process registers (configured name, host name and addresses), heartbeats, and is unreachable once killed', { timeout: 90_000 }, async () => {
    const name = fleetName('worker');
    const child = workers.start({ WORKER_NAME: name, WORKER_HOSTNAME: 'worker1.fleet.example.com', WORKER_IP: '198.51.100.7', WORKER_PRIVATE_IP: '10.1.2.3', WORKER_HEARTBEAT_SECONDS: '0.5' });
    const registered = await poll(() => appServer(name), 60_000, `worker ${name} registered: ${(child as any).stderrTail}`);
    expect(registered).toMatchObject({
      type: 'APP',
      status: 'ACTIVE',
      hostname: 'worker1.fleet.example.com',
      ip: '198.51.100.7',
      privateIp: '10.1.2.3',
      reachable: true,
      cluster: { name: 'default' },
      process: { pid: child.pid, heartbeatSeconds: 0.5, version: expect.any(String), node: expect.stringMatching(/^v24/) },
    });
    expect(registered.process.queues).toEqual(expect.arrayContaining(['database-server-check', 'site-provision', 'storage-check']));
    // It beats.
    const first = Date.parse(registered.lastHeartbeatAt);
    await poll(async () => Date.parse((await appServer(name)).lastHeartbeatAt) > first, 10_000, 'a later heartbeat');

    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const gone = await poll(async () => {
      const s = await appServer(name);
      return s.reachable === false ? s : undefined;
    }, 10_000, 'the killed worker unreachable');
    expect(gone).toMatchObject({ status: 'ACTIVE', process: { pid: child.pid } });
    expect(gone.process.stoppedAt).toBeUndefined();
  });

  it('a clean stop keeps the row and shows it unreachable; a restart under the same name takes the row back', { timeout: 90_000 }, async () => {
    const name = fleetName('worker');
    const env = { WORKER_NAME: name, WORKER_HEARTBEAT_SECONDS: '0.5' };
    const child = workers.start(env);
    const registered = await poll(() => appServer(name), 60_000, `worker ${name} registered: ${(child as any).stderrTail}`);
    expect(registered.reachable).toBe(true);
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(0);
    const stopped = await appServer(name);
    expect(stopped).toMatchObject({ id: registered.id, reachable: false, process: { stoppedAt: expect.any(String) } });

    const again = workers.start(env);
    const back = await poll(async () => {
      const s = await appServer(name);
      return s.process.pid === again.pid && s.reachable ? s : undefined;
    }, 60_000, 'the restarted worker');
    expect(back.id).toBe(registered.id);
    again.kill('SIGKILL');
  });

  it('a name held by another type of server, or an unknown cluster, refuses the start in one readable line', { timeout: 90_000 }, async () => {
    const proxy = fleetName('proxy');
    const cluster = await staff.gql.ok(`{ cluster(name: "default") { id } }`);
    await staff.gql.ok(`mutation($i: CreateServerInput!) { createServer(input: $i) { id } }`, {
      i: { clusterId: cluster.cluster.id, type: 'PROXY', name: proxy, hostname: 'edge.fleet.example.com', ip: '203.0.113.1' },
    });
    const clash = workers.start({ WORKER_NAME: proxy });
    const unknown = workers.start({ WORKER_NAME: fleetName('worker'), WORKER_CLUSTER: 'no-such-cluster' });
    const outcome = (c: typeof clash) => new Promise<{ code: number | null; stderr: string }>((r) => c.once('exit', (code) => r({ code, stderr: (c as any).stderrTail })));
    const [a, b] = await Promise.all([outcome(clash), outcome(unknown)]);
    expect(a.code).toBe(1);
    expect(a.stderr, a.stderr).toContain(`Tenantplane could not start: WORKER_NAME "${proxy}" is already a PROXY server: give this worker another name`);
    expect(b.code).toBe(1);
    expect(b.stderr, b.stderr).toContain('Tenantplane could not start: WORKER_CLUSTER names no cluster: there is no cluster "no-such-cluster"');
  });
});

describe('helpers', () => {
  it('derive a table-safe host name and server name', () => {
    expect(machineHostname('My_Laptop.Local')).toBe('my-laptop.local');
    expect(machineHostname('---')).toBe('localhost');
    expect(defaultServerName('worker1.fleet.example.com')).toBe('app-worker1');
  });

  it('reachable: a beat within three intervals and no clean stop', () => {
    const now = Date.now();
    expect(isReachable(new Date(now - 1000), { heartbeatSeconds: 0.5 }, now)).toBe(true);
    expect(isReachable(new Date(now - 1600), { heartbeatSeconds: 0.5 }, now)).toBe(false);
    expect(isReachable(new Date(now - 1000), { heartbeatSeconds: 30, stoppedAt: new Date(now).toISOString() }, now)).toBe(false);
    expect(isReachable(null, {}, now)).toBe(false);
  });
});
