/**
 * Subscription fan-out: N graphql-ws subscribers of `tenantJobs` on one tenant, one job of that tenant whose progress
 * is updated through the worker's own code path (`JobRun.progress`: an UPDATE under the requester's RLS context,
 * whose trigger NOTIFYs), and the time from the update to each client's receipt. Target at 1,000 subscribers:
 * p99 < 100 ms, no missed event; memory per connection.
 *
 * Phases, one after the other in the same run (ratios against the first):
 *  - BENCH_FANOUT_SIZES (default 1,100,1000) subscribers on tenant 1 as its 5 seeded members (connection i signs
 *    in as member i mod 5), BENCH_FANOUT_UPDATES (20) measured updates each;
 *  - BENCH_FANOUT_DISTINCT (default 1000, 0 skips) subscribers that are as many different members of a temporary
 *    tenant (created as the privileged role, dropped at the end), BENCH_FANOUT_DISTINCT_UPDATES (5) updates: the
 *    case where no two subscribers are the same principal to the database;
 *  - BENCH_FANOUT_PROCESSES (default 2, 0 skips) server processes: the largest size of BENCH_FANOUT_SIZES on tenant 1
 *    (5 principals) again, the clients connected to `src/main.ts serve` with HTTP_PROCESSES=n (startServerProcesses,
 *    node:cluster, each process LISTENs itself) instead of the API in this process; the producer is unchanged (here,
 *    through the database's NOTIFY). The in-process listener count cannot see those processes: the phase starts once
 *    every client has received an update (BENCH_FANOUT_READY_MS between tries), then the usual warm-up.
 * The clients live in a child process (bench/subscription-clients.ts); the API runs here (startBenchApp), or in the
 * server processes for the last phase.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import type { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import pg from 'pg';
import WebSocket from 'ws';
import { startBenchApp, startServerProcesses, type BenchApp } from './app.ts';
import { exitCleanly } from './common.ts';
import { benchTenantId, benchUserId, uuidOf } from './seed.ts';
import { JobRun } from '../src/modules/jobs/run.ts';
import type { ChildMessage, ParentMessage } from './subscription-clients.ts';

/** What a jobs dashboard shows of every job of its tenant, live. */
export const FANOUT_QUERY = `subscription Dashboard($t: ID!) { tenantJobs(tenantId: $t) { id type status progress step } }`;

const SIZES = (process.env.BENCH_FANOUT_SIZES ?? '1,100,1000').split(',').map(Number);
const UPDATES = Number(process.env.BENCH_FANOUT_UPDATES ?? 20);
const DISTINCT = Number(process.env.BENCH_FANOUT_DISTINCT ?? 1000);
const DISTINCT_UPDATES = Number(process.env.BENCH_FANOUT_DISTINCT_UPDATES ?? 5);
const WARMUP_UPDATES = Number(process.env.BENCH_FANOUT_WARMUP ?? 2);
/** Quiet time between the end of one update's fan-out (every client has it) and the next update. */
const GAP_MS = Number(process.env.BENCH_FANOUT_GAP_MS ?? 250);
/** An update not received by every client within this time is counted as missed by those that lack it. */
const UPDATE_TIMEOUT_MS = Number(process.env.BENCH_FANOUT_TIMEOUT_MS ?? 20_000);
const CONNECT_BATCH = Number(process.env.BENCH_FANOUT_CONNECT_BATCH ?? 100);
/** Server processes (HTTP_PROCESSES) for the phase served out of process; 0 skips it. */
const PROCESSES = Number(process.env.BENCH_FANOUT_PROCESSES ?? 2);
/** Out of process: an update every this many ms until every client has received one (every subscription is live). */
const READY_RETRY_MS = Number(process.env.BENCH_FANOUT_READY_MS ?? 1000);

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');

export interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function stats(values: number[]): Stats {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const at = (q: number) => (v.length ? v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)]! : NaN);
  return { n: v.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: v.length ? v[v.length - 1]! : NaN, mean: v.reduce((a, b) => a + b, 0) / (v.length || 1) };
}

/** Who subscribes: a tenant, the member whose job is updated, and the tokens the connections cycle over. */
interface Population {
  label: string;
  tenantId: string;
  ownerId: string;
  tokens: string[];
}

export interface PhaseResult {
  label: string;
  subscribers: number;
  principals: number;
  /** 1: the API in the benchmark process; n: `src/main.ts serve` with HTTP_PROCESSES=n (see `servers`). */
  processes: number;
  updates: number;
  expected: number;
  received: number;
  missed: number;
  /** update sent → client receipt, every (client, update) pair. */
  latency: Stats;
  /** Per update: sent → the NOTIFY reaches the API's LISTEN connection (out of process: the benchmark process's). */
  toNotify: Stats;
  /** Per update: sent → the API hands the first / the last subscriber's message to its WebSocket (ws `send`; NaN out of process). */
  toFirstSend: Stats;
  toLastSend: Stats;
  /** Per update: sent → the last client has it. */
  toLastClient: Stats;
  /**
   * Memory of the API process after the N clients subscribed minus before, per connection (bytes). Out of process:
   * the server processes' RSS (/proc, no gc), heap and external NaN, before/after absent.
   */
  memory: { rssPerConnection: number; heapPerConnection: number; externalPerConnection: number; before?: NodeJS.MemoryUsage; after?: NodeJS.MemoryUsage };
  /** Out of process only: the HTTP processes (node:cluster children), their share of the sockets, CPU and RSS. */
  servers?: { pids: number[]; primaryPid: number; connections: number[]; cpuMsPerUpdate: number[]; primaryCpuMsPerUpdate: number; rssBefore: number[]; rssAfter: number[]; readyUpdates: number; readyMs: number };
  /** SQL round trips the API sent per update, the producer's own, and per subscriber (out of process: the producer's only, per subscriber NaN). */
  statementsPerUpdate: number;
  producerStatements: number;
  statementsPerSubscriberEvent: number;
  /**
   * API process CPU (user + system) per update (out of process: the server processes', primary included, from /proc),
   * and the PostgreSQL backends' CPU (API pool + LISTEN, of every process) per update.
   */
  apiCpuMsPerUpdate: number;
  pgCpuMsPerUpdate: number | null;
  /** A backend closed during the measurement: pgCpuMsPerUpdate is a lower bound. */
  pgCpuPartial: boolean;
  /** API event-loop delay during the measured updates (ms; out of process: the benchmark process's, i.e. the producer's). */
  loopDelay: { p50: number; p99: number; max: number };
  maxPoolWaiting: number;
  connectMs: number;
  /**
   * The machine during the measured updates (cores busy on average, /proc/stat), and its share by who: the API
   * (this process, or the server processes and this process, the producer), its PostgreSQL backends, the client
   * process, and everything else (other work on the machine). null when /proc is not readable.
   */
  machine: { coresBusy: number; apiCores: number; pgCores: number; clientCores: number; otherCores: number } | null;
  errors: string[];
  otherEvents: number;
}

export interface FanoutResult {
  poolSize: number;
  phases: PhaseResult[];
}

/** gc() when it can be had (--expose-gc at run time), else undefined. */
function getGc(): (() => void) | undefined {
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

async function settledMemory(gc: (() => void) | undefined) {
  await sleep(300);
  gc?.();
  await sleep(100);
  gc?.();
  await sleep(200);
  return process.memoryUsage();
}

/** utime + stime (ms) of a local process, from /proc; undefined when not readable (gone, or a remote server). */
function cpuMsOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ = 100 on Linux
  } catch {
    return undefined;
  }
}

/** PostgreSQL backend pids of the API's pool and LISTEN connection (for their CPU time). */
async function apiBackendPids(url: string): Promise<number[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ pid: number }>(
      `select pid from pg_stat_activity where datname = current_database() and application_name in ('tenantplane', 'tenantplane-listen')`,
    );
    return rows.map((r) => r.pid);
  } finally {
    await c.end();
  }
}

/**
 * CPU time of the API's PostgreSQL backends between start() and stop(): backends present at both ends count their
 * difference, backends opened in between all of theirs; one closed in between (pool idle timeout) loses its share,
 * so the figure is then a lower bound (`partial`). null when /proc does not show them (remote server).
 */
async function backendCpu(url: string) {
  const start = new Map<number, number>();
  for (const pid of await apiBackendPids(url)) {
    const t = cpuMsOf(pid);
    if (t !== undefined) start.set(pid, t);
  }
  return async (): Promise<{ ms: number; partial: boolean } | null> => {
    if (start.size === 0) return null;
    const end = await apiBackendPids(url);
    let ms = 0;
    for (const pid of end) ms += (cpuMsOf(pid) ?? 0) - (start.get(pid) ?? 0);
    return { ms, partial: [...start.keys()].some((pid) => !end.includes(pid)) };
  };
}

/** CPU time (ms, every core) the machine spent busy so far (/proc/stat: all but idle and iowait); undefined without /proc. */
function machineBusyMs(): number | undefined {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const busy = f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3]! - f[4]!; // user … steal, minus idle and iowait
    return (busy * 1000) / 100; // USER_HZ = 100
  } catch {
    return undefined;
  }
}

/** pid → parent pid of every process in /proc. */
function processTable(): Map<number, number> {
  const table = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      table.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  return table;
}

/**
 * The server processes startServerProcesses spawned from this process: the primary (`src/main.ts serve`, a child of
 * this process) and its node:cluster children (the HTTP processes that hold the sockets).
 */
function serverPids(): { primary: number; workers: number[] } {
  const table = processTable();
  const cmdline = (pid: number) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return '';
    }
  };
  const primary = [...table].find(([pid, ppid]) => ppid === process.pid && cmdline(pid).includes('src/main.ts'))?.[0];
  if (primary === undefined) throw new Error('the server processes are not children of this process (/proc)');
  return { primary, workers: [...table].filter(([, ppid]) => ppid === primary).map(([pid]) => pid) };
}

/** Resident set size of a process (bytes), NaN when not readable. */
function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Established TCP connections to 127.0.0.1:port held by each of pids (its server side), from /proc/net/tcp and the fds. */
function connectionsOf(pids: number[], port: number): number[] {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && f[1]!.endsWith(`:${hexPort}`) && f[3] === '01') inodes.add(f[9]!);
  }
  return pids.map((pid) => {
    let n = 0;
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        try {
          const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
          if (m && inodes.has(m[1]!)) n++;
        } catch {
          // closed meanwhile
        }
      }
    } catch {
      return NaN;
    }
    return n;
  });
}

/** Where the clients connect when the API does not run in this process (startServerProcesses). */
interface Remote {
  processes: number;
  url: string;
}

/**
 * When the API hands each measured message to a subscriber's socket: ws' WebSocket#send, patched for the
 * measurement (the server's sockets are instances of this very module's class; the clients are another process).
 */
function watchSends() {
  const proto = WebSocket.prototype as unknown as { send: (data: unknown, ...rest: unknown[]) => void };
  const original = proto.send;
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const marker = /"step":"fanout:(\d+):/;
  proto.send = function (this: unknown, data: unknown, ...rest: unknown[]) {
    if (typeof data === 'string') {
      const m = marker.exec(data);
      if (m) {
        const seq = Number(m[1]);
        const t = now();
        if (!first.has(seq)) first.set(seq, t);
        last.set(seq, t);
      }
    }
    return original.call(this, data, ...rest);
  };
  return { first, last, restore: () => (proto.send = original) };
}

class ClientProcess {
  readonly child: ChildProcess;
  private readonly waiters = new Map<string, Array<(m: ChildMessage) => void>>();
  private readonly completed = new Set<number>();
  private readonly completeWaiters = new Map<number, () => void>();
  private exited = false;
  private isReady = false;
  private readyWaiter: (() => void) | undefined;

  constructor() {
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'subscription-clients.ts');
    this.child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') {
        this.isReady = true;
        this.readyWaiter?.();
        return;
      }
      if (m.type === 'complete') {
        this.completed.add(m.seq);
        this.completeWaiters.get(m.seq)?.();
        return;
      }
      if (m.type === 'fatal') {
        for (const list of this.waiters.values()) for (const w of list.splice(0)) w(m);
        return;
      }
      this.waiters.get(m.type)?.shift()?.(m);
    });
    this.child.on('exit', () => {
      this.exited = true;
      const fatal: ChildMessage = { type: 'fatal', error: 'client process exited' };
      for (const list of this.waiters.values()) for (const w of list.splice(0)) w(fatal);
    });
  }

  send(m: ParentMessage) {
    this.child.send(m);
  }

  next<T extends ChildMessage['type']>(type: T, timeoutMs: number): Promise<Extract<ChildMessage, { type: T }>> {
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(new Error('client process exited'));
      const timer = setTimeout(() => reject(new Error(`client process: no ${type} within ${timeoutMs} ms`)), timeoutMs);
      const list = this.waiters.get(type) ?? [];
      list.push((m) => {
        clearTimeout(timer);
        if (m.type === 'fatal') reject(new Error(`client process: ${m.error}`));
        else resolve(m as Extract<ChildMessage, { type: T }>);
      });
      this.waiters.set(type, list);
    });
  }

  /** Resolves when every client has received at least one update (true), or after timeoutMs (false). */
  ready(timeoutMs: number): Promise<boolean> {
    if (this.isReady) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.readyWaiter = undefined;
        resolve(false);
      }, timeoutMs);
      this.readyWaiter = () => {
        clearTimeout(timer);
        this.readyWaiter = undefined;
        resolve(true);
      };
    });
  }

  /** Resolves when every client has received update `seq` (true), or after timeoutMs (false). */
  complete(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.completed.has(seq)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.completeWaiters.delete(seq);
        resolve(false);
      }, timeoutMs);
      this.completeWaiters.set(seq, () => {
        clearTimeout(timer);
        this.completeWaiters.delete(seq);
        resolve(true);
      });
    });
  }

  async stop() {
    if (this.exited) return;
    this.send({ type: 'stop' });
    await this.next('stopped', 30_000).catch(() => undefined);
    if (!this.exited) this.child.kill();
  }
}

async function sign(b: BenchApp, userId: string) {
  const t = await b.app.services.tokens.sign(userId);
  return typeof t === 'string' ? t : (t as { token: string }).token;
}

/** Tenant 1 of the seed, its members in a fixed order. */
async function seededTenant(url: string, b: BenchApp): Promise<Population> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ user_id: string }>(`select user_id from app_public.memberships where tenant_id = $1 order by created_at, user_id`, [benchTenantId()]);
    const tokens: string[] = [];
    for (const r of rows) tokens.push(await sign(b, r.user_id));
    return { label: `tenant 1, ${rows.length} members`, tenantId: benchTenantId(), ownerId: benchUserId(), tokens };
  } finally {
    await c.end();
  }
}

/** A temporary tenant with n members (the first its owner), written as the privileged role; drop() removes it all. */
async function distinctTenant(url: string, b: BenchApp, n: number): Promise<Population & { drop(): Promise<void> }> {
  const tenantId = uuidOf('fanout-tenant');
  const userId = (i: number) => uuidOf(`fanout-user-${i}`);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const drop = async () => {
    await c.query(`delete from app_public.tenants where id = $1`, [tenantId]);
    await c.query(`delete from app_public.users where email like 'fanout-%@bench.example'`);
  };
  try {
    await drop();
    await c.query('begin');
    await c.query(`insert into app_public.tenants (id, slug, name, plan_id) values ($1, 'bench-fanout', 'Bench fan-out', 'enterprise')`, [tenantId]);
    await c.query(
      `insert into app_public.users (id, email, name) select md5('fanout-user-' || i)::uuid, 'fanout-' || i || '@bench.example', 'Fan-out ' || i
         from generate_series(1, $1::int) i`,
      [n],
    );
    await c.query(
      `insert into app_public.memberships (tenant_id, user_id, role, created_at)
       select $1, md5('fanout-user-' || i)::uuid, (case when i = 1 then 'OWNER' else 'MEMBER' end)::app_public.tenant_role,
              timestamptz '2026-01-01' + i * interval '1 second'
         from generate_series(1, $2::int) i`,
      [tenantId, n],
    );
    await c.query('commit');
    await c.query('analyze app_public.memberships, app_public.users, app_public.tenants');
  } catch (e) {
    await c.query('rollback').catch(() => undefined);
    await c.end();
    throw e;
  }
  const tokens: string[] = [];
  for (let i = 1; i <= n; i++) tokens.push(await sign(b, userId(i)));
  return {
    label: `temporary tenant, ${n} distinct members`,
    tenantId,
    ownerId: userId(1),
    tokens,
    async drop() {
      try {
        await drop();
      } finally {
        await c.end();
      }
    },
  };
}

async function phase(
  url: string,
  b: BenchApp,
  who: Population,
  subscribers: number,
  updates: number,
  gc: (() => void) | undefined,
  opts: { trace: boolean; profile: boolean; remote?: Remote },
  log: (m: string) => void,
): Promise<PhaseResult> {
  const { remote } = opts;
  const { services } = b.app;
  const { tenantId, ownerId } = who;
  // A job of the tenant, created and started as a worker would (its owner requested it) before anyone subscribes.
  const job = (await services.ownerPool.query(`insert into app_public.jobs (tenant_id, type, requested_by, max_attempts) values ($1, 'bench-fanout', $2, 1) returning id`, [tenantId, ownerId])).rows[0] as { id: string };
  const run = new JobRun(services, { tenantId, userId: ownerId, requestId: crypto.randomUUID(), jobId: job.id, args: {} }, 1, 1, new AbortController().signal);
  if (!(await run.begin())) throw new Error('the benchmark job could not be started');
  // The producer's own round trips per update (JobRun.progress: its UPDATE and its checkpoint), nobody listening.
  const producer0 = services.db.statements;
  await run.progress(1, 'calibrate');
  const producerStatements = services.db.statements - producer0;

  // Notices as the API's LISTEN connection hands them out (the same hub the subscriptions read from).
  const abort = new AbortController();
  const noticeTimes: number[] = [];
  const observer = (async () => {
    for await (const n of services.events.notices('job', tenantId, abort.signal)) if (n.id === job.id) noticeTimes.push(now());
  })();
  const emitter = (services.events as unknown as { emitter?: EventEmitter }).emitter;
  const listeners = () => emitter?.listenerCount(`job:${tenantId}`) ?? NaN;

  // Out of process: the HTTP processes (their RSS before anyone connects); in process: this process's memory after gc.
  const servers = remote ? serverPids() : undefined;
  const rssBefore = servers ? servers.workers.map(rssOf) : [];
  const before = remote ? undefined : await settledMemory(gc);
  const clients = new ClientProcess();
  const sends = watchSends();
  try {
    clients.send({
      type: 'start',
      wsUrl: (remote ? remote.url : b.app.url).replace(/^http/, 'ws'),
      tokens: who.tokens,
      query: FANOUT_QUERY,
      variables: { t: Buffer.from(`Tenant:${tenantId}`).toString('base64') },
      field: 'tenantJobs',
      count: subscribers,
      batch: CONNECT_BATCH,
    });
    const connected = await clients.next('connected', 180_000);
    if (connected.failures.length) throw new Error(`connection failures: ${connected.failures.slice(0, 5).join('; ')}`);
    const principals = Math.min(subscribers, who.tokens.length);
    let seq = 0;
    let progress = 1;
    const update = async () => {
      const s = seq++;
      const sent = now();
      await run.progress(++progress, `fanout:${s}:${sent.toFixed(3)}`);
      return { s, sent };
    };
    let memory: PhaseResult['memory'];
    let ready = { updates: 0, ms: 0 };
    if (!remote) {
      // Every subscription is live once the hub has one listener per subscriber (plus the observer above).
      const t0 = Date.now();
      while (!(listeners() >= subscribers + 1)) {
        if (Date.now() - t0 > 60_000) throw new Error(`only ${listeners() - 1} of ${subscribers} subscriptions are listening`);
        await sleep(20);
      }
      const after = await settledMemory(gc);
      memory = {
        rssPerConnection: (after.rss - before!.rss) / subscribers,
        heapPerConnection: (after.heapUsed - before!.heapUsed) / subscribers,
        externalPerConnection: (after.external - before!.external) / subscribers,
        before,
        after,
      };
      log(
        `  ${subscribers} subscriber(s) as ${principals} principal(s) (${who.label}) connected in ${connected.connectMs} ms; API memory ` +
          `+${f1((after.rss - before!.rss) / 2 ** 20)} MiB RSS, +${f1((after.heapUsed - before!.heapUsed) / 2 ** 20)} MiB heap → ` +
          `${f1(memory.rssPerConnection / 1024)} KiB RSS, ${f1(memory.heapPerConnection / 1024)} KiB heap per connection${gc ? '' : ' (no gc: settle delay only)'}`,
      );
    } else {
      // The server processes' hubs are not visible from here: every subscription is live once every client has
      // received an update. Updates until then (not measured), one every READY_RETRY_MS at most.
      const t0 = Date.now();
      while (!(await clients.ready(0))) {
        if (Date.now() - t0 > 120_000) throw new Error(`not every client received an update within 120 s (${ready.updates} updates)`);
        await update();
        ready.updates++;
        await clients.ready(READY_RETRY_MS);
      }
      ready.ms = Date.now() - t0;
      await sleep(500);
      const rssAfter = servers!.workers.map(rssOf);
      const grown = rssAfter.reduce((a, x, k) => a + x - rssBefore[k]!, 0);
      memory = { rssPerConnection: grown / subscribers, heapPerConnection: NaN, externalPerConnection: NaN };
      log(
        `  ${subscribers} subscriber(s) as ${principals} principal(s) (${who.label}) on ${remote.processes} server processes (pids ` +
          `${servers!.workers.join(', ')}), connected in ${connected.connectMs} ms, every client had an update ${ready.ms} ms later ` +
          `(${ready.updates} update(s)); sockets per process ${connectionsOf(servers!.workers, Number(new URL(remote.url).port)).join(' / ')}; ` +
          `server RSS +${f1(grown / 2 ** 20)} MiB → ${f1(memory.rssPerConnection / 1024)} KiB per connection (no gc)`,
      );
    }
    // Warm-up updates (not measured): each must reach every client too.
    for (let w = 0; w < WARMUP_UPDATES; w++) {
      // The SQL of the first warm-up update, as the driver sends it (Database's observer, where it has one).
      const db = services.db as unknown as { observer?: (q: unknown) => void };
      const trace: string[] = [];
      const tracing = w === 0 && opts.trace;
      if (tracing) db.observer = (q) => trace.push(typeof q === 'string' ? q : String((q as { text?: string })?.text ?? JSON.stringify(q)));
      const { s } = await update();
      if (!(await clients.complete(s, UPDATE_TIMEOUT_MS))) log(`  warm-up update ${s} did not reach every client within ${UPDATE_TIMEOUT_MS} ms`);
      if (tracing) {
        db.observer = undefined;
        if (trace.length) {
          log(`  SQL of one update with ${subscribers} subscriber(s) (${trace.length} round trips, the producer's included):`);
          for (const t of trace) log(`    ${t.replace(/\s+/g, ' ').slice(0, 150)}${t.length > 150 ? ' …' : ''}`);
        }
      }
      await sleep(GAP_MS);
    }

    // Measured updates, each once the previous one reached every client (or timed out) and GAP_MS passed.
    const sentAt = new Map<number, number>();
    const noticesBefore = noticeTimes.length;
    const statements0 = services.db.statements;
    const pgCpu = await backendCpu(url);
    const cpu0 = process.cpuUsage();
    const machine0 = { at: performance.now(), busy: machineBusyMs(), clients: cpuMsOf(clients.child.pid ?? -1) };
    const serverCpu0 = servers ? [...servers.workers, servers.primary].map((pid) => cpuMsOf(pid) ?? NaN) : [];
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    let maxPoolWaiting = 0;
    const sampler = setInterval(() => (maxPoolWaiting = Math.max(maxPoolWaiting, services.db.pool.waitingCount)), 5);
    const profile = process.env.BENCH_CPU_PROF && opts.profile ? new Session() : undefined;
    if (profile) {
      profile.connect();
      await profile.post('Profiler.enable');
      await profile.post('Profiler.start');
    }
    const measured: number[] = [];
    for (let u = 0; u < updates; u++) {
      const { s, sent } = await update();
      sentAt.set(s, sent);
      measured.push(s);
      if (!(await clients.complete(s, UPDATE_TIMEOUT_MS))) log(`  update ${s} did not reach every client within ${UPDATE_TIMEOUT_MS} ms`);
      await sleep(GAP_MS);
    }
    if (profile) {
      const { profile: data } = await profile.post('Profiler.stop');
      fs.writeFileSync(process.env.BENCH_CPU_PROF!, JSON.stringify(data));
      profile.disconnect();
      log(`  CPU profile of the API during the measured updates written to ${process.env.BENCH_CPU_PROF}`);
    }
    clearInterval(sampler);
    loop.disable();
    // CPU and statements per update (the GAP_MS pauses are idle, so these are not rates).
    const cpu = process.cpuUsage(cpu0);
    const machine1 = { at: performance.now(), busy: machineBusyMs(), clients: cpuMsOf(clients.child.pid ?? -1) };
    const serverCpu = servers ? [...servers.workers, servers.primary].map((pid, k) => ((cpuMsOf(pid) ?? NaN) - serverCpu0[k]!) / updates) : [];
    const pg1 = await pgCpu();
    const elapsed = machine1.at - machine0.at;
    let machine: PhaseResult['machine'] = null;
    if (machine0.busy !== undefined && machine1.busy !== undefined) {
      const apiMs = (cpu.user + cpu.system) / 1000 + (servers ? serverCpu.reduce((a, b) => a + b, 0) * updates : 0);
      const pgMs = (pg1?.ms ?? 0);
      const clientMs = (machine1.clients ?? 0) - (machine0.clients ?? 0);
      const busyMs = machine1.busy - machine0.busy;
      machine = { coresBusy: busyMs / elapsed, apiCores: apiMs / elapsed, pgCores: pgMs / elapsed, clientCores: clientMs / elapsed, otherCores: (busyMs - apiMs - pgMs - clientMs) / elapsed };
    }
    const statements = services.db.statements - statements0;

    clients.send({ type: 'report' });
    const report = await clients.next('report', 60_000);
    const latencies: number[] = [];
    let missed = 0;
    const lastClient: number[] = [];
    for (const s of measured) {
      let last = -Infinity;
      for (let c = 0; c < subscribers; c++) {
        const l = report.latencies[c]?.[s] ?? -1;
        if (l < 0) missed++;
        else {
          latencies.push(l);
          last = Math.max(last, l);
        }
      }
      lastClient.push(last);
    }
    const notices = noticeTimes.slice(noticesBefore);
    const since = (m: Map<number, number>) => measured.map((s) => (m.get(s) ?? NaN) - sentAt.get(s)!);
    const perSubscriber = remote ? NaN : (statements / updates - producerStatements) / subscribers;
    const result: PhaseResult = {
      label: who.label,
      subscribers,
      principals,
      processes: remote?.processes ?? 1,
      updates,
      expected: subscribers * updates,
      received: latencies.length,
      missed,
      latency: stats(latencies),
      toNotify: stats(measured.map((s, k) => (notices[k] ?? NaN) - sentAt.get(s)!)),
      toFirstSend: stats(since(sends.first)),
      toLastSend: stats(since(sends.last)),
      toLastClient: stats(lastClient),
      memory,
      statementsPerUpdate: statements / updates,
      producerStatements,
      statementsPerSubscriberEvent: perSubscriber,
      apiCpuMsPerUpdate: remote ? serverCpu.reduce((a, b) => a + b, 0) : (cpu.user + cpu.system) / 1000 / updates,
      pgCpuMsPerUpdate: pg1 ? pg1.ms / updates : null,
      pgCpuPartial: pg1?.partial ?? false,
      loopDelay: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
      maxPoolWaiting,
      machine,
      connectMs: connected.connectMs,
      errors: report.errors,
      otherEvents: report.other,
    };
    if (servers) {
      result.servers = {
        pids: servers.workers,
        primaryPid: servers.primary,
        connections: connectionsOf(servers.workers, Number(new URL(remote!.url).port)),
        cpuMsPerUpdate: serverCpu.slice(0, -1),
        primaryCpuMsPerUpdate: serverCpu.at(-1)!,
        rssBefore,
        rssAfter: servers.workers.map(rssOf),
        readyUpdates: ready.updates,
        readyMs: ready.ms,
      };
    }
    const l = result.latency;
    log(
      `  ${subscribers} subscriber(s) × ${updates} updates${remote ? ` (${remote.processes} server processes)` : ''}: received ${result.received}/${result.expected}, missed ${missed}; ` +
        `latency p50 ${f1(l.p50)} ms, p95 ${f1(l.p95)} ms, p99 ${f1(l.p99)} ms, max ${f1(l.max)} ms (target p99 < 100 ms)`,
    );
    if (remote) {
      log(
        `    per update (p50): → NOTIFY at this process's LISTEN ${f1(result.toNotify.p50)} ms, → last client ${f1(result.toLastClient.p50)} ms ` +
          `(max ${f1(result.toLastClient.max)} ms); server CPU per update ${serverCpu.slice(0, -1).map(f1).join(' + ')} ms (HTTP processes) + ` +
          `${f1(serverCpu.at(-1)!)} ms (primary), ${(result.apiCpuMsPerUpdate / subscribers).toFixed(3)} ms per subscriber; PostgreSQL CPU ` +
          `${result.pgCpuMsPerUpdate === null ? '?' : `${result.pgCpuPartial ? '≥ ' : ''}${f1(result.pgCpuMsPerUpdate)}`} ms/update (every process's backends)`,
      );
      if (report.errors.length) log(`    ${report.errors.length} client errors, e.g. ${report.errors.slice(0, 3).join(' | ')}`);
      if (report.closed) log(`    ${report.closed} connections closed by the server`);
      if (machine) {
        log(
          `    machine during the measured updates: ${machine.coresBusy.toFixed(2)} of ${os.cpus().length} cores busy — API${remote ? ' (server processes + this process)' : ''} ${machine.apiCores.toFixed(2)}, ` +
            `its PostgreSQL backends ${machine.pgCores.toFixed(2)}, client process ${machine.clientCores.toFixed(2)}, everything else ${machine.otherCores.toFixed(2)}`,
        );
      }
      return result;
    }
    log(
      `    per update (p50): → NOTIFY at the API ${f1(result.toNotify.p50)} ms, → first ws send ${f1(result.toFirstSend.p50)} ms, ` +
        `→ last ws send ${f1(result.toLastSend.p50)} ms, → last client ${f1(result.toLastClient.p50)} ms (max ${f1(result.toLastClient.max)} ms)`,
    );
    log(
      `    ${f1(result.statementsPerUpdate)} SQL round trips per update (producer ${producerStatements}, ${perSubscriber.toFixed(2)} per subscriber); ` +
        `API CPU ${f1(result.apiCpuMsPerUpdate)} ms/update (${(result.apiCpuMsPerUpdate / subscribers).toFixed(3)} ms per subscriber), ` +
        `PostgreSQL CPU ${result.pgCpuMsPerUpdate === null ? '?' : `${result.pgCpuPartial ? '≥ ' : ''}${f1(result.pgCpuMsPerUpdate)}`} ms/update; ` +
        `API event-loop delay p99 ${f1(result.loopDelay.p99)} ms, max ${f1(result.loopDelay.max)} ms; max pool waiters ${maxPoolWaiting}`,
    );
    if (report.errors.length) log(`    ${report.errors.length} client errors, e.g. ${report.errors.slice(0, 3).join(' | ')}`);
    if (report.closed) log(`    ${report.closed} connections closed by the server`);
    if (machine) {
      log(
        `    machine during the measured updates: ${machine.coresBusy.toFixed(2)} of ${os.cpus().length} cores busy — API${remote ? ' (server processes + this process)' : ''} ${machine.apiCores.toFixed(2)}, ` +
          `its PostgreSQL backends ${machine.pgCores.toFixed(2)}, client process ${machine.clientCores.toFixed(2)}, everything else ${machine.otherCores.toFixed(2)}`,
      );
    }
    return result;
  } finally {
    sends.restore();
    await clients.stop();
    abort.abort();
    await observer.catch(() => undefined);
    await run.complete({ bench: true }).catch(() => undefined);
    // Let the server notice the closed sockets and end their subscriptions before the next phase measures memory.
    const t0 = Date.now();
    while (listeners() > 0 && Date.now() - t0 < 30_000) await sleep(50);
  }
}

export async function subscriptionFanout(url: string, log = console.log): Promise<FanoutResult> {
  const gc = getGc();
  const b = await startBenchApp(url);
  try {
    const poolSize = b.app.services.config.database.poolSize;
    const seeded = await seededTenant(url, b);
    log(
      `tenantJobs subscribers (${FANOUT_QUERY.replace(/^subscription \w+\(\$t: ID!\) /, '')}); per size ${UPDATES} progress updates ` +
        `(+${WARMUP_UPDATES} warm-up), each sent once the previous one reached every client + ${GAP_MS} ms; API pool ${poolSize}, ` +
        `gc ${gc ? 'available' : 'not available'}`,
    );
    const phases: PhaseResult[] = [];
    const biggest = Math.max(...SIZES);
    for (const n of SIZES) phases.push(await phase(url, b, seeded, n, UPDATES, gc, { trace: n === SIZES[0], profile: n === biggest }, log));
    if (DISTINCT > 0) {
      const distinct = await distinctTenant(url, b, DISTINCT);
      try {
        phases.push(await phase(url, b, distinct, DISTINCT, DISTINCT_UPDATES, gc, { trace: false, profile: false }, log));
      } finally {
        await distinct.drop();
      }
    }
    if (PROCESSES > 0) {
      // The same largest phase, served by PROCESSES `src/main.ts serve` processes (the "worker per core" deployment).
      const servers = await startServerProcesses(url, PROCESSES);
      try {
        phases.push(await phase(url, b, seeded, biggest, UPDATES, gc, { trace: false, profile: false, remote: { processes: PROCESSES, url: servers.url } }, log));
      } finally {
        await servers.stop();
      }
    }
    const base = phases[0]!;
    for (const p of phases.slice(1)) {
      log(
        `${p.subscribers} subscribers as ${p.principals} principal(s)${p.processes > 1 ? ` on ${p.processes} server processes` : ''} vs ${base.subscribers}: p50 ×${(p.latency.p50 / base.latency.p50).toFixed(1)}, ` +
          `p99 ×${(p.latency.p99 / base.latency.p99).toFixed(1)}, update → last client ×${(p.toLastClient.p50 / base.toLastClient.p50).toFixed(1)}`,
      );
    }
    const worst = phases.filter((p) => p.subscribers >= 1000);
    for (const p of worst) {
      log(
        `RESULT ${p.subscribers} subscribers / ${p.principals} principals${p.processes > 1 ? ` / ${p.processes} server processes` : ''}: p99 ${f1(p.latency.p99)} ms (target < 100 ms: ${p.latency.p99 < 100 ? 'met' : 'MISSED'}), ` +
          `missed events ${p.missed} (${p.missed === 0 ? 'ok' : 'FAILED'}), ${f1(p.memory.rssPerConnection / 1024)} KiB RSS` +
          (p.processes > 1 ? ' (server processes, no gc)' : ` / ${f1(p.memory.heapPerConnection / 1024)} KiB heap`) + ' per connection',
      );
    }
    return { poolSize, phases };
  } finally {
    await b.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { createBenchDatabase } = await import('./db.ts');
  const { seed, seedOptionsFromEnv } = await import('./seed.ts');
  const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}, load average ${load()}`);
  let url = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
  // Without a URL: a fresh database (embedded PostgreSQL unless DATABASE_URL), seeded with BENCH_TENANTS/BENCH_DOCS/BENCH_USERS.
  const fresh = url ? undefined : await createBenchDatabase();
  let code = 0;
  try {
    if (fresh) {
      url = fresh.url;
      await seed(url, seedOptionsFromEnv());
    }
    console.log('\n== subscription fan-out ==');
    const r = await subscriptionFanout(url!);
    if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify(r, null, 2));
  } catch (e) {
    console.error(e);
    code = 1;
  } finally {
    await fresh?.stop();
  }
  console.log(`load average at the end: ${load()}`);
  exitCleanly(code);
}
