import cluster, { type Worker } from 'node:cluster';
import type pino from 'pino';
import type { Config } from './config.ts';
import { resolveDatabase, resolveStorage, startApp, type RunningApp } from './app.ts';
import { migrate } from './db/migrate.ts';
import { StartupError, boundedStop, onForceStop, shutdownOnSignals } from './shutdown.ts';

/**
 * HTTP_PROCESSES > 1: one Node process is CPU-bound on one core, so the API runs in several processes sharing the
 * port (node:cluster hands connections round-robin; a WebSocket stays with the process that accepted it). The
 * primary owns what must exist once — the embedded PostgreSQL / S3 when no URL is given, the migrations — and runs
 * the job workers; each child serves HTTP and graphql-ws only, against the primary's database and storage.
 * A child that dies is replaced; SIGTERM stops the children first (each drains its requests), then the primary.
 */
export async function serveCluster(config: Config, log: pino.Logger, processes: number) {
  const shutdown = shutdownOnSignals(log, 'shutting down: HTTP processes first');
  const { url, embedded } = await resolveDatabase(config, log);
  // Nothing left running if startup fails part-way: the embedded servers are stopped before the error surfaces.
  let storage: Awaited<ReturnType<typeof resolveStorage>> | undefined;
  let primary: RunningApp;
  let childEnv: Record<string, string>;
  try {
    storage = await resolveStorage(config, log);
    await migrate(url, (m) => log.debug(m));
    const endpoint = storage.embedded?.endpoint ?? config.storage.endpoint!;
    childEnv = {
      DATABASE_URL: url,
      S3_ENDPOINT: endpoint,
      S3_ACCESS_KEY_ID: storage.embedded ? 'S3RVER' : (config.storage.accessKeyId ?? ''),
      S3_SECRET_ACCESS_KEY: storage.embedded ? 'S3RVER' : (config.storage.secretAccessKey ?? ''),
      WORKERS: 'false',
    };
    primary = await startApp(
      {
        ...config,
        database: { ...config.database, url },
        storage: { ...config.storage, endpoint, accessKeyId: childEnv.S3_ACCESS_KEY_ID, secretAccessKey: childEnv.S3_SECRET_ACCESS_KEY },
      },
      { log, http: false, migrate: false },
    );
  } catch (e) {
    await storage?.embedded?.stop().catch(() => undefined);
    await embedded?.stop();
    throw e;
  }

  // Before the first fork: a signal from here on stops whatever children exist, starting ones included.
  const liveChildren = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
  const stopChildren = (signal: NodeJS.Signals) =>
    Promise.all(
      liveChildren().map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve());
            w.process.kill(signal);
          }),
      ),
    );
  let stopping = false;
  const stopAll = async () => {
    stopping = true;
    await stopChildren('SIGTERM');
    await primary.stop();
    await storage?.embedded?.stop().catch(() => undefined);
    await embedded?.stop();
  };
  // The last resort of a stop that overran: the children are killed (they own nothing that needs a clean stop).
  onForceStop(async () => {
    await Promise.race([stopChildren('SIGKILL'), new Promise((r) => setTimeout(r, 3000))]);
  });
  shutdown.ready(stopAll);
  const fork = () => !shutdown.signalled && !stopping && cluster.fork(childEnv);
  // A child that fails to start says why (main.ts), so the primary can print that one line instead of forking
  // forever: during the first start that is fatal; a replacement is retried with backoff (the database may be down).
  const reasons = new Map<number, string>();
  cluster.on('message', (worker: Worker, msg: { tenantplane?: string; message?: string }) => {
    if (msg?.tenantplane === 'startup-failed' && msg.message) reasons.set(worker.id, msg.message);
  });
  const listened = new Set<number>();
  let started = false;
  let retryMs = 500;
  let failStartup: (e: Error) => void = () => undefined;
  const listening = new Promise<number>((resolve, reject) => {
    failStartup = reject;
    let ready = 0;
    cluster.on('listening', (worker, address) => {
      listened.add(worker.id);
      retryMs = 500;
      if (++ready === processes) resolve(address.port);
    });
  });
  cluster.on('exit', (worker: Worker, code, signal) => {
    if (shutdown.signalled || stopping) return;
    const reason = reasons.get(worker.id);
    if (!listened.has(worker.id)) {
      if (!started) return failStartup(new StartupError(reason ?? `an HTTP process exited while starting (${code ?? signal})`));
      log.error({ pid: worker.process.pid, code, signal, reason }, `HTTP process failed to start: trying again in ${retryMs} ms`);
      setTimeout(fork, retryMs).unref();
      retryMs = Math.min(retryMs * 2, 30_000);
      return;
    }
    log.error({ pid: worker.process.pid, code, signal }, 'HTTP process died: starting another');
    fork();
  });
  for (let i = 0; i < processes; i++) fork();
  let port: number;
  try {
    port = await listening;
  } catch (e) {
    // Stopped before the error surfaces (main.ts prints it and exits 1), bounded like a signal's stop.
    await boundedStop(stopAll, log);
    throw e;
  }
  started = true;
  log.info(`Tenantplane API listening on http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}/graphql in ${processes} processes`);
}
