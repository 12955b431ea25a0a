import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freeLocalPort } from '../src/db/embedded.ts';
import { StartupError, readableError } from '../src/shutdown.ts';
import { cleanUpAfterEach, expectNothingLeft, processesOn, spawnCli, startCli, stopCli, tempDataDir } from './support/cli.ts';

/** Another program holding a port on 127.0.0.1. */
async function holdPort() {
  const port = await freeLocalPort();
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The start fails: exit 1 within `ms`, stderr is exactly one readable line, and nothing is left on the data dir. */
async function expectFailedStart(cli: Awaited<ReturnType<typeof spawnCli>>, line: RegExp, ms: number) {
  const started = Date.now();
  const { code } = await cli.exited;
  expect(Date.now() - started).toBeLessThan(ms);
  expect(code).toBe(1);
  const stderr = cli.stderr().trim().split('\n');
  expect(stderr).toHaveLength(1);
  expect(stderr[0]).toMatch(line);
  expect(cli.output()).not.toMatch(/undefined|Internal error emitted/);
  expectNothingLeft(cli.dataDir);
}

const pgdata = (dataDir: string) => path.join(dataDir, 'postgres', 'pgdata');
const postmasterPid = (dataDir: string) => Number(fs.readFileSync(path.join(pgdata(dataDir), 'postmaster.pid'), 'utf8').split('\n')[0]);
/** Alive and not a zombie (pid 1 here does not reap the orphans it inherits). */
const alive = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};
const ready = async (base: string) => (await fetch(`${base}/health/ready`)).status;

cleanUpAfterEach();

describe('npm start when something is wrong', () => {
  it('PORT held by another program: one readable line, exit 1, the embedded servers stopped', async () => {
    const held = await holdPort();
    try {
      const cli = await spawnCli({ PORT: String(held.port) });
      await expectFailedStart(cli, new RegExp(`^Tenantplane could not start: port ${held.port} is already in use on 127.0.0.1: stop the other program or set PORT$`), 15_000);
    } finally {
      await held.close();
    }
  }, 30_000);

  it('PORT held, HTTP_PROCESSES=2: the primary prints the children\'s one line and stops everything', async () => {
    const held = await holdPort();
    try {
      const cli = await spawnCli({ PORT: String(held.port), HTTP_PROCESSES: '2' });
      await expectFailedStart(cli, new RegExp(`^Tenantplane could not start: port ${held.port} is already in use`), 25_000);
    } finally {
      await held.close();
    }
  }, 40_000);

  it('EMBEDDED_PG_PORT held: one readable line naming the setting, not `undefined`', async () => {
    const held = await holdPort();
    try {
      const cli = await spawnCli({ EMBEDDED_PG_PORT: String(held.port) });
      await expectFailedStart(cli, new RegExp(`^Tenantplane could not start: embedded PostgreSQL could not listen: port ${held.port} is already in use: stop the other program or set EMBEDDED_PG_PORT$`), 15_000);
    } finally {
      await held.close();
    }
  }, 30_000);

  it('after a SIGKILLed API, the next start stops the stale embedded PostgreSQL of its data directory and serves', async () => {
    const first = await startCli();
    const stale = postmasterPid(first.dataDir);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(processesOn(first.dataDir)).not.toEqual([]); // what the issue saw: the orphan keeps running
    const second = await startCli({ DATA_DIR: first.dataDir, EMBEDDED_PG_PORT: String(first.pgPort) });
    expect(second.output()).toContain(`stopped the stale embedded PostgreSQL (pid ${stale}`);
    expect(alive(stale)).toBe(false);
    expect(await ready(second.base)).toBe(200);
    await stopCli(second.child, second.dataDir);
  }, 40_000);

  it('never touches a postgres that is not ours: one in use by a running API, one of another data directory', async () => {
    const running = await startCli();
    const runningPg = postmasterPid(running.dataDir);
    // The same DATA_DIR while its API runs: refused, the running one untouched.
    const again = await spawnCli({ DATA_DIR: running.dataDir, EMBEDDED_PG_PORT: String(running.pgPort) });
    expect((await again.exited).code).toBe(1);
    expect(again.stderr().trim()).toMatch(/^Tenantplane could not start: the embedded PostgreSQL on \S+ \(pid \d+\) belongs to another running process \(pid \d+\): stop that one first, or set DATA_DIR to another directory$/);
    expect(await ready(running.base)).toBe(200);

    // A stopped data directory whose postmaster.pid names the running postgres of another directory (a reused pid):
    // the file is removed, the other postgres left alone.
    const other = tempDataDir();
    const init = await startCli({ DATA_DIR: other });
    const { code } = await new Promise<{ code: number | null }>((resolve) => {
      init.child.once('exit', (c) => resolve({ code: c }));
      init.child.kill('SIGINT');
    });
    expect(code).toBe(0);
    fs.writeFileSync(path.join(pgdata(other), 'postmaster.pid'), `${runningPg}\n${pgdata(running.dataDir)}\n`);
    const reused = await startCli({ DATA_DIR: other });
    expect(reused.output()).toMatch(/removed a stale \S+postmaster.pid naming process \d+, which is not a postgres on this directory/);
    expect(alive(runningPg)).toBe(true);
    expect(await ready(running.base)).toBe(200);
    expect(await ready(reused.base)).toBe(200);
    await stopCli(reused.child, reused.dataDir);
    await stopCli(running.child, running.dataDir);
  }, 60_000);

  it('SIGINT while serving and SIGTERM at any moment of startup: exit 0 within a bound, nothing left', async () => {
    const serving = await startCli();
    const t0 = Date.now();
    await stopCli(serving.child, serving.dataDir, 'SIGINT');
    expect(Date.now() - t0).toBeLessThan(15_000);
    // Signals at successive moments of startup: before and after the embedded servers, during migrations.
    for (const moment of [/embedded PostgreSQL started/, /embedded S3 started/]) {
      const cli = await spawnCli();
      await cli.waitFor(moment);
      const t = Date.now();
      cli.child.kill('SIGTERM');
      expect((await cli.exited).code).toBe(0);
      expect(Date.now() - t).toBeLessThan(15_000);
      expectNothingLeft(cli.dataDir);
    }
  }, 60_000);

  it('Ctrl-C in a terminal (SIGINT to the whole process group, HTTP_PROCESSES=2): the API stops its database itself, last', async () => {
    const cli = await startCli({ HTTP_PROCESSES: '2' }, /listening on (http:\/\/\S+\/graphql) in 2 processes/, { detached: true });
    const t = Date.now();
    process.kill(-cli.child.pid!, 'SIGINT');
    expect((await cli.exited).code).toBe(0);
    expect(Date.now() - t).toBeLessThan(15_000);
    // postgres runs in a session of its own: the Ctrl-C did not stop it under the draining API (no lost connections).
    expect(cli.output()).not.toMatch(/terminating connection|ECONNREFUSED|"level":50/);
    expectNothingLeft(cli.dataDir);
  }, 40_000);

  it('a stop that overruns SHUTDOWN_TIMEOUT_MS is forced: exit 1 at once, the embedded PostgreSQL stopped too', async () => {
    const cli = await startCli({ SHUTDOWN_TIMEOUT_MS: '1' });
    const t = Date.now();
    cli.child.kill('SIGTERM');
    expect((await cli.exited).code).toBe(1);
    expect(Date.now() - t).toBeLessThan(10_000);
    expect(cli.output()).toContain('force-stopping');
    await expect.poll(() => processesOn(cli.dataDir), { timeout: 5000 }).toEqual([]);
  }, 30_000);
});

describe('readableError: what main() prints for whatever was thrown', () => {
  it('is never `undefined` or empty', () => {
    expect(readableError(undefined)).toBe('unknown error (no details)');
    expect(readableError(null)).toBe('unknown error (no details)');
    expect(readableError(new Error())).toBe('unknown error (no message)');
    expect(readableError(Object.assign(new Error(''), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    // Node's connect to "localhost" (::1 and 127.0.0.1): an AggregateError with an empty message.
    const both = new AggregateError([new Error('connect ECONNREFUSED ::1:5432'), new Error('connect ECONNREFUSED 127.0.0.1:5432')], '');
    expect(readableError(both)).toBe('connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432');
    expect(readableError(Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:4000'), { code: 'EADDRINUSE', port: 4000, address: '127.0.0.1' }))).toBe(
      'port 4000 is already in use on 127.0.0.1: stop the other program or set another port',
    );
    expect(readableError(new StartupError('initdb said:\n  no space left\n'))).toBe('initdb said: no space left');
    expect(readableError({ code: 42 })).toBe('{"code":42}');
    expect(readableError('plain')).toBe('plain');
  });
});
