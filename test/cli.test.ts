import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freeLocalPort } from '../src/db/embedded.ts';

/** The real entry point (`npm start`) as a child process, with an embedded PostgreSQL under a fresh DATA_DIR. */
async function spawnCli(extraEnv: Record<string, string> = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantplane-cli-'));
  const pgPort = await freeLocalPort();
  fs.chmodSync(dataDir, 0o755); // as root, postgres runs as the `postgres` user and must traverse it
  // process.execPath is the pinned Node 24 running this test (tsx's shebang would pick the machine's node).
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    env: {
      ...process.env,
      DATABASE_URL: '',
      DATA_DIR: dataDir,
      PORT: '0',
      HOST: '127.0.0.1',
      EMBEDDED_PG_PORT: String(pgPort),
      EMBEDDED_S3_PORT: '0',
      S3_ENDPOINT: '',
      LOG_LEVEL: 'info',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  /** Resolves with the first match of `pattern` in the output so far or to come. */
  const waitFor = (pattern: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${pattern} in:\n${output}`)), 60_000);
      const check = () => {
        const m = pattern.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m);
        }
      };
      child.stdout.on('data', check);
      child.on('exit', (code, signal) => reject(new Error(`exited early (${code ?? signal}) waiting for ${pattern}; output: ${JSON.stringify(output)}`)));
      check();
    });
  return { child, dataDir, waitFor, output: () => output };
}

async function startCli(extraEnv: Record<string, string> = {}, listening = /listening on (http:\/\/\S+\/graphql)/) {
  const cli = await spawnCli(extraEnv);
  const url = (await cli.waitFor(listening))[1]!;
  return { ...cli, url, base: url.replace(/\/graphql$/, '') };
}

/** SIGTERM → exit 0, and the embedded server is gone: no pid file, no process using its data directory. */
async function stopCli(child: ChildProcess, dataDir: string) {
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(fs.existsSync(path.join(dataDir, 'postgres', 'pgdata', 'postmaster.pid'))).toBe(false);
  const ps = execFileSync('ps', ['-eo', 'args']).toString();
  expect(ps).not.toContain(path.join(dataDir, 'postgres', 'pgdata'));
  fs.rmSync(dataDir, { recursive: true, force: true });
}

describe('npm start', () => {
  it('serves with an embedded database and stops cleanly on SIGTERM', async () => {
    const { child, dataDir, url, base } = await startCli();
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
    const ready = await fetch(`${base}/health/ready`);
    expect(ready.status).toBe(200);
    expect((await (await fetch(`${base}/.well-known/jwks.json`)).json()).keys.length).toBeGreaterThan(0);
    const gql = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ me { id } }' }) });
    expect(await gql.json()).toEqual({ data: { me: null } });
    await stopCli(child, dataDir);
  }, 90_000);

  it('HTTP_PROCESSES=2: two HTTP processes share the port, a session works across them, SIGTERM stops all', async () => {
    // NODE_ENV=production too: Apollo's own signal handler (on outside tests) once made SIGTERM hang.
    // The primary's line, printed once both HTTP processes listen (each child prints its own before).
    const { child, dataDir, url, base } = await startCli({ HTTP_PROCESSES: '2', NODE_ENV: 'production' }, /listening on (http:\/\/\S+\/graphql) in 2 processes/);
    const nodeChildren = () =>
      execFileSync('ps', ['--ppid', String(child.pid), '-o', 'pid=,args=']).toString().split('\n').filter((l) => l.includes('src/main.ts')).map((l) => Number(l.trim().split(/\s+/)[0]));
    const children = nodeChildren();
    expect(children).toHaveLength(2);
    expect((await fetch(`${base}/health/ready`)).status).toBe(200);
    // Sign up on one connection, then use the token on fresh connections: whichever process answers knows it
    // (keys live in the database, not in a process).
    const post = async (query: string, variables: unknown = {}, token?: string) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', connection: 'close', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      return (await res.json()) as { data: Record<string, any>; errors?: unknown[] };
    };
    const signUp = await post('mutation($i: SignUpInput!) { signUp(input: $i) { accessToken user { email } } }', {
      i: { email: 'cluster@example.com', password: 'correct horse battery staple', name: 'Cluster' },
    });
    expect(signUp.errors).toBeUndefined();
    const token = signUp.data.signUp.accessToken as string;
    for (let i = 0; i < 6; i++) expect((await post('{ me { email } }', {}, token)).data.me.email).toBe('cluster@example.com');
    // A killed HTTP process is replaced.
    process.kill(children[0]!, 'SIGKILL');
    await expect.poll(() => nodeChildren().filter((pid) => pid !== children[0]).length, { timeout: 30_000, interval: 200 }).toBe(2);
    await expect.poll(async () => (await fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => null))?.status, { timeout: 60_000, interval: 250 }).toBe(200);
    const running = nodeChildren();
    await stopCli(child, dataDir);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(running.filter(alive)).toEqual([]);
  }, 200_000);

  it('a SIGTERM during startup (embedded PostgreSQL up, HTTP processes not yet) still stops everything, exit 0', async () => {
    for (const env of [{}, { HTTP_PROCESSES: '2' }] as Record<string, string>[]) {
      const { child, dataDir, waitFor } = await spawnCli(env);
      await waitFor(/embedded PostgreSQL started/);
      await stopCli(child, dataDir);
    }
  }, 120_000);
});
