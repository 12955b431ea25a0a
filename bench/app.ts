import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { spawn } from 'node:child_process';
import pino from 'pino';
import { loadConfig } from '../src/config.ts';
import { startApp, type RunningApp } from '../src/app.ts';
import { freeLocalPort } from '../src/db/embedded.ts';
import { benchTenantSlug, benchUserId } from './seed.ts';

export const LIST_QUERY = `query List($slug: String!) { tenant(slug: $slug) { documents(first: 50) { edges { node { filename sizeBytes uploader { name } file { sha256 } } } } } }`;
export const LIST_BODY = JSON.stringify({ query: LIST_QUERY, variables: { slug: benchTenantSlug } });

export interface BenchApp {
  app: RunningApp;
  token: string;
  headers: Record<string, string>;
  stop(): Promise<void>;
}

/** The API in this process on the seeded database: production mode, no workers, silent, embedded S3 in a temp dir. */
export async function startBenchApp(url: string): Promise<BenchApp> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-bench-app-'));
  const config = loadConfig({
    NODE_ENV: 'production',
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: url,
    DATABASE_POOL_SIZE: process.env.DATABASE_POOL_SIZE ?? '10',
    WORKERS: 'false',
    LOG_LEVEL: 'silent',
    DATA_DIR: dataDir,
    EMBEDDED_S3_PORT: '0',
  });
  const app = await startApp(config, { migrate: false, log: pino({ level: 'silent' }) });
  const token = await app.services.tokens.sign(benchUserId());
  return {
    app,
    token: typeof token === 'string' ? token : (token as { token: string }).token,
    headers: { 'content-type': 'application/json', authorization: '' },
    async stop() {
      await app.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * `src/main.ts serve` with HTTP_PROCESSES=n on the seeded database (production mode, silent, no job workers, its
 * own embedded S3): the multi-process deployment. Tokens signed by startBenchApp are valid there (keys are in the
 * database).
 */
export async function startServerProcesses(url: string, n: number): Promise<{ url: string; stop(): Promise<void> }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-bench-cluster-'));
  const port = await freeLocalPort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    env: {
      ...process.env,
      NODE_ENV: 'production',
      DATABASE_URL: url,
      DATABASE_POOL_SIZE: process.env.DATABASE_POOL_SIZE ?? '10',
      HTTP_PROCESSES: String(n),
      WORKERS: 'false',
      LOG_LEVEL: 'silent',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      S3_ENDPOINT: '',
      EMBEDDED_S3_PORT: '0',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the server processes exited (${child.exitCode})`);
    const ok = await fetch(`${base}/health/ready`).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (i > 300) throw new Error('the server processes did not become ready in 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url: `${base}/graphql`,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function post(b: BenchApp, body = LIST_BODY) {
  const res = await fetch(b.app.url, { method: 'POST', headers: { ...b.headers, authorization: `Bearer ${b.token}` }, body });
  const json = (await res.json()) as { data?: unknown; errors?: unknown[] };
  if (res.status !== 200 || json.errors) throw new Error(`request failed: ${res.status} ${JSON.stringify(json).slice(0, 500)}`);
  return json;
}

export interface CapturedStatement {
  text: string;
  values: unknown[];
}

/**
 * Every statement one request sends, as the server receives it (text + parameter values), from Database's observer.
 * BEGIN travels with the context statement in one simple-protocol message: it is listed as the two statements it is.
 */
export async function captureStatements(b: BenchApp, body = LIST_BODY): Promise<CapturedStatement[]> {
  const seen: CapturedStatement[] = [];
  const db = b.app.services.db;
  db.observer = (q) => {
    if (typeof q === 'string') {
      if (q.startsWith('BEGIN; ')) seen.push({ text: 'BEGIN', values: [] }, { text: q.slice('BEGIN; '.length), values: [] });
      else seen.push({ text: q, values: [] });
    } else if (q && typeof q === 'object' && 'text' in q) {
      seen.push({ text: String((q as { text: string }).text), values: (q as { values?: unknown[] }).values ?? [] });
    }
  };
  try {
    await post(b, body);
  } finally {
    db.observer = undefined;
  }
  return seen;
}

function pgValue(v: unknown): string {
  if (v === null || v === undefined) throw new Error('a NULL parameter cannot be passed to pgbench with -D');
  if (Array.isArray(v)) return `{${v.map((x) => `"${String(x).replace(/(["\\])/g, '\\$1')}"`).join(',')}}`;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A pgbench script of the captured statements: `$n` → `:sK_n` variables (prepared mode binds them as parameters). */
export function toPgbenchScript(statements: CapturedStatement[]): { script: string; vars: Record<string, string> } {
  const vars: Record<string, string> = {};
  const lines = statements.map((s, k) => {
    const text = s.text.replace(/\s+/g, ' ').trim().replace(/;$/, '');
    const sub = text.replace(/\$(\d+)/g, (_m, n: string) => {
      const value = pgValue(s.values[Number(n) - 1]);
      // pgbench -D refuses an empty value: an empty string goes in as a literal.
      if (value === '') return "''";
      const name = `s${k}_${n}`;
      vars[name] = value;
      return `:${name}`;
    });
    return `${sub};`;
  });
  return { script: lines.join('\n') + '\n', vars };
}
