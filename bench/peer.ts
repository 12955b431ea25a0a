/**
 * `npm run bench:peer` — Tenantplane beside PostGraphile 5 (issue 13): the same PostgreSQL 15 (the machine's), the
 * same data shape (1,000 tenants × 200 documents × 10 members), the same load driver (`load.mjs` of
 * ../shared/perf-anchor) sending each request as a random (tenant, member) pair, one server process each with a
 * pool of 10. For each workload and concurrency PostGraphile then Tenantplane run back to back, so every ratio is
 * taken in one run. Reported: req/s, p50/p99, server CPU per request (from /proc of the server process during the
 * measured window), peak RSS of the server process, and the ratio.
 *
 * Steps: the anchor kit's own `anchor.sh` prepares its working copy, its database `anchor_perf` and its npm
 * install (a 2 s smoke of its loads; its figures are not used); Tenantplane's schema is migrated into a fresh
 * database `tp_peer` on the same server and seeded with bench/seed.ts; access tokens are minted with the
 * deployment's own signing key (AUTH_MODE=tokens); then the loads. Raw JSON and the table land in
 * bench/results/peer-<UTC stamp>/.
 *
 * Knobs: PEER_CONCURRENCIES ("16 64"), DURATION (15), WARMUP (3), PEER_WORKLOADS ("q1_list q2_point"),
 * HTTP_PROCESSES (1, for Tenantplane), PEER_SKIP_SETUP=1 (reuse anchor_perf and tp_peer as they are).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { AccessTokens } from '../src/auth/tokens.ts';
import { loadConfig } from '../src/config.ts';
import { freeLocalPort } from '../src/db/embedded.ts';
import { seed } from './seed.ts';

const repo = path.resolve(import.meta.dirname, '..');
const KIT = path.resolve(repo, '..', 'shared', 'perf-anchor');
const WORK = process.env.PERF_ANCHOR_DIR ?? path.join(os.tmpdir(), 'perf-anchor-work');
const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
const OUT = path.join(repo, 'bench', 'results', `peer-${stamp}`);
const CONCURRENCIES = (process.env.PEER_CONCURRENCIES ?? '16 64').split(/[\s,]+/).filter(Boolean).map(Number);
const WORKLOADS = (process.env.PEER_WORKLOADS ?? 'q1_list q2_point').split(/[\s,]+/).filter(Boolean);
const DURATION = process.env.DURATION ?? '15';
const WARMUP = process.env.WARMUP ?? '3';
const PG_ADMIN = 'postgres://postgres@127.0.0.1:5432';
const TP_DB = 'tp_peer';
const NODE = path.join(repo, 'node_modules', '.bin', 'node');

fs.mkdirSync(OUT, { recursive: true });
const log = (s: string) => {
  console.log(s);
  fs.appendFileSync(path.join(OUT, 'run.log'), `${s}\n`);
};

function run(cmd: string, args: string[], env: Record<string, string> = {}, cwd = repo) {
  const r = spawnSync(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  fs.appendFileSync(path.join(OUT, 'run.log'), `$ ${cmd} ${args.join(' ')}\n${r.stdout}${r.stderr}\n`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout.slice(-2000)}${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** Starts a server, resolves with its process once `ready` matches its output. */
function startServer(cmd: string, args: string[], env: Record<string, string>, cwd: string, ready: RegExp, logFile: string) {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = fs.createWriteStream(logFile);
  return new Promise<ChildProcess>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start in 60 s (see ${logFile})`)), 60_000);
    const onData = (b: Buffer) => {
      out.write(b);
      if (ready.test(b.toString())) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${cmd} exited (${code}) before it was ready (see ${logFile})`)));
  });
}

async function stopServer(child: ChildProcess) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** Peak resident set of a process while fn runs (sampled every 100 ms from /proc). */
async function peakRss<T>(pid: number, fn: () => Promise<T>): Promise<{ result: T; rssMiB: number }> {
  let peak = 0;
  const sample = () => {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (m) peak = Math.max(peak, Number(m[1]));
  };
  sample();
  const timer = setInterval(() => {
    try {
      sample();
    } catch {
      /* the process ended */
    }
  }, 100);
  try {
    return { result: await fn(), rssMiB: Math.round(peak / 1024) };
  } finally {
    clearInterval(timer);
  }
}

interface LoadResult {
  reqPerSec: number;
  requests: number;
  latencyMs: { p50: number; p99: number };
  serverCpuSeconds: number | null;
  non2xx: number;
  errors: number;
  gqlErrors: number;
  sampleInvalid: number;
}

function load(target: string, workload: string, c: number, env: Record<string, string>, pid: number): Promise<{ result: LoadResult; rssMiB: number }> {
  const out = path.join(OUT, `http_${target}_${workload}_c${c}.json`);
  return peakRss(pid, async () => {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(path.join(WORK, 'node_modules', '.bin', 'node'), ['load.mjs'], {
        cwd: WORK,
        env: { ...process.env, CONNECTIONS: String(c), DURATION, WARMUP, SERVER_PID: String(pid), OUT: out, TARGET: target, LABEL: workload, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let text = '';
      child.stdout!.on('data', (b) => (text += b));
      child.stderr!.on('data', (b) => (text += b));
      child.on('exit', (code) => {
        fs.appendFileSync(path.join(OUT, 'run.log'), text);
        if (code === 0) resolve();
        else reject(new Error(`load.mjs ${target} ${workload} c=${c} failed (${code}):\n${text.slice(-2000)}`));
      });
    });
    return JSON.parse(fs.readFileSync(out, 'utf8')) as LoadResult;
  });
}

async function prepareTenantplane(): Promise<string> {
  const url = `${PG_ADMIN}/${TP_DB}`;
  if (process.env.PEER_SKIP_SETUP === '1') return url;
  const admin = new pg.Client({ connectionString: `${PG_ADMIN}/postgres` });
  await admin.connect();
  await admin.query(`drop database if exists ${TP_DB} with (force)`);
  await admin.query(`create database ${TP_DB}`);
  await admin.end();
  run(NODE, ['--import', 'tsx', 'src/main.ts', 'migrate'], { DATABASE_URL: url });
  await seed(url, { tenants: 1000, docsPerTenant: 200, usersPerTenant: 10 }, log);
  return url;
}

/** load.mjs's AUTH_MODE=tokens fixtures: every membership, 20 documents a tenant, slugs, a token per user. */
async function writeFixtures(url: string, env: Record<string, string>) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const pairs = (await c.query(`select tenant_id::text as t, user_id::text as u from app_public.memberships order by tenant_id, user_id`)).rows;
    const docs = (await c.query(`select tenant_id::text as t, (array_agg(id::text order by id))[1:20] as ids from app_public.documents group by tenant_id`)).rows;
    const slugs = (await c.query(`select id::text as t, slug from app_public.tenants`)).rows;
    const config = loadConfig({ ...process.env, ...env });
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    const tokens = await AccessTokens.load(pool, { issuer: config.auth.issuer, audience: config.auth.audience, ttlSeconds: config.auth.accessTokenTtl });
    const byUser: Record<string, string> = {};
    for (const { u } of pairs) {
      if (byUser[u]) continue;
      const signed = await tokens.sign(u);
      byUser[u] = typeof signed === 'string' ? signed : (signed as { token: string }).token;
    }
    await pool.end();
    const file = path.join(OUT, 'tenantplane-fixtures.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        pairs: pairs.map((p) => [p.t, p.u]),
        docsByTenant: Object.fromEntries(docs.map((d) => [d.t, d.ids])),
        slugs: Object.fromEntries(slugs.map((s) => [s.t, s.slug])),
        tokens: byUser,
      }),
    );
    log(`fixtures: ${pairs.length} (tenant, member) pairs, ${Object.keys(byUser).length} tokens`);
    return file;
  } finally {
    await c.end();
  }
}

const cpuMsPerRequest = (r: LoadResult) => (r.serverCpuSeconds == null || !r.requests ? null : (r.serverCpuSeconds * 1000) / r.requests);
const fmt = (n: number | null, d = 0) => (n == null ? '—' : n.toLocaleString('en-GB', { maximumFractionDigits: d, minimumFractionDigits: d }));

async function main() {
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`;
  log(`bench:peer ${stamp} — ${machine}`);
  log(`workloads ${WORKLOADS.join(', ')} at c=${CONCURRENCIES.join(', ')}, ${DURATION} s after ${WARMUP} s warm-up, results in ${path.relative(repo, OUT)}`);

  if (process.env.PEER_SKIP_SETUP !== '1') {
    log('anchor: preparing the kit, its database and its install (anchor.sh, a 2 s smoke run)');
    run('bash', [path.join(KIT, 'anchor.sh')], { PERF_ANCHOR_DIR: WORK, RESULTS: path.join(OUT, 'anchor-smoke'), CONCURRENCIES: '16', DURATION: '2', WARMUP: '1' });
  }
  const url = await prepareTenantplane();

  const port = await freeLocalPort();
  const tpEnv = {
    DATABASE_URL: url,
    PORT: String(port),
    HTTP_PROCESSES: process.env.HTTP_PROCESSES ?? '1',
    DATABASE_POOL_SIZE: '10',
    ACCESS_TOKEN_TTL_SECONDS: '7200',
    EMBEDDED_S3_PORT: String(await freeLocalPort()),
    DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'tp-peer-')),
  };
  const fixtures = await writeFixtures(url, tpEnv);

  const postgraphile = await startServer(path.join(WORK, 'node_modules', '.bin', 'node'), ['server.mjs'], { NODE_ENV: 'production' }, WORK, /listening|5678|ready/i, path.join(OUT, 'server_postgraphile.log'));
  const tenantplane = await startServer(NODE, ['--import', 'tsx', 'src/main.ts', 'serve'], tpEnv, repo, /listening on/, path.join(OUT, 'server_tenantplane.log'));
  const rows: string[] = [];
  try {
    for (const workload of WORKLOADS) {
      for (const c of CONCURRENCIES) {
        const pgr = await load('postgraphile', workload, c, { ENDPOINT: 'http://127.0.0.1:5678/graphql', QUERY: path.join(WORK, 'queries', 'postgraphile', `${workload}.graphql`), AUTH_MODE: 'headers' }, postgraphile.pid!);
        const tpr = await load('tenantplane', workload, c, {
          ENDPOINT: `http://127.0.0.1:${port}/graphql`,
          QUERY: path.join(repo, 'bench', 'peer', `${workload}.graphql`),
          AUTH_MODE: 'tokens',
          FIXTURES: fixtures,
        }, tenantplane.pid!);
        for (const [name, r] of [['PostGraphile', pgr], ['Tenantplane', tpr]] as const) {
          const bad = r.result.non2xx + r.result.errors + r.result.gqlErrors + r.result.sampleInvalid;
          if (bad) log(`warning: ${name} ${workload} c=${c}: ${bad} bad responses (non-2xx, errors, GraphQL errors or empty samples)`);
        }
        const ratio = tpr.result.reqPerSec / pgr.result.reqPerSec;
        const line = `| ${workload} | ${c} | ${fmt(pgr.result.reqPerSec)} | ${pgr.result.latencyMs.p50} / ${pgr.result.latencyMs.p99} | ${fmt(cpuMsPerRequest(pgr.result), 2)} | ${pgr.rssMiB} | ${fmt(tpr.result.reqPerSec)} | ${tpr.result.latencyMs.p50} / ${tpr.result.latencyMs.p99} | ${fmt(cpuMsPerRequest(tpr.result), 2)} | ${tpr.rssMiB} | **${ratio.toFixed(2)}×** |`;
        rows.push(line);
        log(`${workload} c=${c}: PostGraphile ${pgr.result.reqPerSec} req/s, Tenantplane ${tpr.result.reqPerSec} req/s → ${ratio.toFixed(2)}×`);
      }
    }
  } finally {
    await stopServer(tenantplane);
    await stopServer(postgraphile);
    // The fixtures hold an access token per user: not kept with the results.
    fs.rmSync(fixtures, { force: true });
  }
  const table = [
    `bench:peer ${stamp} — ${machine}`,
    `one server process each (Tenantplane HTTP_PROCESSES=${tpEnv.HTTP_PROCESSES}), pool 10, PostgreSQL 15 on 127.0.0.1, ${DURATION} s after ${WARMUP} s warm-up`,
    '',
    '| workload | c | PostGraphile req/s | p50 / p99 ms | CPU ms/req | RSS MiB | Tenantplane req/s | p50 / p99 ms | CPU ms/req | RSS MiB | ratio |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
  fs.writeFileSync(path.join(OUT, 'summary.md'), `${table}\n`);
  console.log(`\n${table}`);
}

await main();
process.exit(0);
