import type pino from 'pino';

/**
 * SIGTERM/SIGINT handlers installed before startup, not after it: with none installed, Node's default ends the
 * process at once and leaves the embedded PostgreSQL running (seen in CI: a cluster primary signalled while a
 * replacement HTTP process was still starting exited by signal). A signal during startup is remembered and the
 * stop runs as soon as startup has handed over what it must stop.
 */
export function shutdownOnSignals(log: pino.Logger, message = 'shutting down') {
  let signalled: string | undefined;
  let stop: (() => Promise<void>) | undefined;
  const run = () =>
    void stop!().then(
      () => process.exit(0),
      (e: unknown) => {
        log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  const onSignal = (signal: string) => {
    if (signalled) return;
    signalled = signal;
    log.info({ signal }, message);
    if (stop) run();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
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
