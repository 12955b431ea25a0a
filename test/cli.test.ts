import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cleanUpAfterEach, spawnCli, startCli, stopCli } from './support/cli.ts';

cleanUpAfterEach();

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
