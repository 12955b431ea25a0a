import cluster, { type Worker } from 'node:cluster';
import type pino from 'pino';
import type { Config } from './config.ts';
import { resolveDatabase, resolveStorage, startApp, type RunningApp } from './app.ts';
import { migrate } from './db/migrate.ts';
import { shutdownOnSignals } from './shutdown.ts';

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
  shutdown.ready(async () => {
    const children = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
    await Promise.all(
      children.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve());
            w.process.kill('SIGTERM');
          }),
      ),
    );
    await primary.stop();
    await storage?.embedded?.stop().catch(() => undefined);
    await embedded?.stop();
  });
  const fork = () => !shutdown.signalled && cluster.fork(childEnv);
  const listening = new Promise<number>((resolve) => {
    let ready = 0;
    cluster.on('listening', (_worker, address) => ++ready === processes && resolve(address.port));
  });
  cluster.on('exit', (worker: Worker, code, signal) => {
    if (shutdown.signalled) return;
    log.error({ pid: worker.process.pid, code, signal }, 'HTTP process died: starting another');
    fork();
  });
  for (let i = 0; i < processes; i++) fork();
  const port = await listening;
  log.info(`Tenantplane API listening on http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}/graphql in ${processes} processes`);
}
