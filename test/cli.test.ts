import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * `npm start` with no configuration: embedded PostgreSQL under DATA_DIR, migrations applied, API served; SIGTERM stops
 * everything (no orphaned postgres). Runs the real entry point as a child process.
 */
describe('npm start', () => {
  it('serves with an embedded database and stops cleanly on SIGTERM', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantplane-cli-'));
    const pgPort = 30000 + Math.floor(Math.random() * 20000);
    fs.chmodSync(dataDir, 0o755); // as root, postgres runs as the `postgres` user and must traverse it
    // process.execPath is the pinned Node 24 running this test (tsx's shebang would pick the machine's node).
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
      env: { ...process.env, DATABASE_URL: '', DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', EMBEDDED_PG_PORT: String(pgPort), EMBEDDED_S3_PORT: '0', S3_ENDPOINT: '', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line:\n${output}`)), 45_000);
      child.stdout.on('data', () => {
        const m = /listening on (http:\/\/\S+\/graphql)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.on('exit', (code) => reject(new Error(`exited early (${code}):\n${output}`)));
    });
    const base = url.replace(/\/graphql$/, '');
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
    const ready = await fetch(`${base}/health/ready`);
    expect(ready.status).toBe(200);
    expect((await (await fetch(`${base}/.well-known/jwks.json`)).json()).keys.length).toBeGreaterThan(0);
    const gql = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ me { id } }' }) });
    expect(await gql.json()).toEqual({ data: { me: null } });

    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    // The embedded server is gone: no pid file, nobody listening on its port.
    expect(fs.existsSync(path.join(dataDir, 'postgres', 'pgdata', 'postmaster.pid'))).toBe(false);
    const ps = execFileSync('ps', ['-eo', 'args']).toString();
    expect(ps).not.toContain(path.join(dataDir, 'postgres', 'pgdata'));
    fs.rmSync(dataDir, { recursive: true, force: true });
  }, 90_000);
});
