import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect } from 'vitest';
import { freeLocalPort } from '../../src/db/embedded.ts';

/** Every CLI and data directory a test made: whatever a failing test left running is stopped, its directory removed. */
const spawned: ChildProcess[] = [];
const dataDirs: string[] = [];
export function cleanUpAfterEach() {
  afterEach(async () => {
    await Promise.all(
      spawned.splice(0).map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM'); // our own stop, which stops its embedded PostgreSQL; SIGKILL would orphan it
        await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
      }),
    );
    for (const dir of dataDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
}

/** A fresh DATA_DIR; as root, postgres runs as the `postgres` user and must traverse it. */
export function tempDataDir() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantplane-cli-'));
  fs.chmodSync(dataDir, 0o755);
  dataDirs.push(dataDir);
  return dataDir;
}

/** The real entry point (`npm start`) as a child process, with an embedded PostgreSQL under DATA_DIR (fresh unless given). */
export async function spawnCli(extraEnv: Record<string, string> = {}, opts: { detached?: boolean } = {}) {
  const dataDir = extraEnv.DATA_DIR ?? tempDataDir();
  const pgPort = await freeLocalPort();
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
    // A process group of its own, as a terminal's foreground job is: `kill(-pid)` is a Ctrl-C.
    detached: opts.detached ?? false,
  });
  spawned.push(child);
  let output = '';
  let stderr = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => {
    output += d;
    stderr += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
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
      child.stderr.on('data', check);
      child.on('exit', (code, signal) => reject(new Error(`exited early (${code ?? signal}) waiting for ${pattern}; output: ${JSON.stringify(output)}`)));
      check();
    });
  return { child, dataDir, pgPort, waitFor, exited, output: () => output, stderr: () => stderr };
}

export async function startCli(extraEnv: Record<string, string> = {}, listening = /listening on (http:\/\/\S+\/graphql)/, opts: { detached?: boolean } = {}) {
  const cli = await spawnCli(extraEnv, opts);
  const url = (await cli.waitFor(listening))[1]!;
  return { ...cli, url, base: url.replace(/\/graphql$/, '') };
}

/** The processes whose command line names this data directory (a postgres runs as `postgres -D <dir>/postgres/pgdata`). */
export function processesOn(dataDir: string) {
  const pgdata = path.join(dataDir, 'postgres', 'pgdata');
  return execFileSync('ps', ['-eo', 'pid=,stat=,args='])
    .toString()
    .split('\n')
    .filter((l) => l.includes(pgdata) && !/^\s*\d+\s+Z/.test(l)); // a zombie is gone, merely unreaped
}

/** No pid file, no process using the embedded server's data directory. */
export function expectNothingLeft(dataDir: string) {
  expect(fs.existsSync(path.join(dataDir, 'postgres', 'pgdata', 'postmaster.pid'))).toBe(false);
  expect(processesOn(dataDir)).toEqual([]);
}

/** SIGTERM → exit 0, and the embedded server is gone. */
export async function stopCli(child: ChildProcess, dataDir: string, signal: NodeJS.Signals = 'SIGTERM') {
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill(signal);
  expect(await exited).toBe(0);
  expectNothingLeft(dataDir);
  fs.rmSync(dataDir, { recursive: true, force: true });
}
