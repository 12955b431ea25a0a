import { parseArgs } from 'node:util';
import { assertNodeVersion, loadConfig } from './config.ts';
import { createLogger } from './observability/logger.ts';
import { readableError, shutdownOnSignals, shutdownTimeoutMs, stopStarted } from './shutdown.ts';

/** CLI entry: serve (default) | worker | migrate | admin:create | secrets:rotate | schema:print */
async function main() {
  assertNodeVersion();
  const [command = 'serve', ...rest] = process.argv.slice(2);
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  switch (command) {
    case 'serve': {
      const { default: cluster } = await import('node:cluster');
      if (config.httpProcesses > 1 && cluster.isPrimary) {
        const { serveCluster } = await import('./cluster.ts');
        await serveCluster(config, log, config.httpProcesses);
        return;
      }
      const shutdown = shutdownOnSignals(log);
      const { startApp } = await import('./app.ts');
      // A cluster child: the primary has migrated and owns the embedded servers (src/cluster.ts).
      const app = await startApp(config, { log, migrate: !cluster.isWorker });
      if (!shutdown.signalled) log.info(`Tenantplane API listening on ${app.url} (graphql-ws on the same URL)`);
      shutdown.ready(() => app.stop());
      return;
    }
    case 'worker': {
      // Job workers only; several may run at once, on several machines, against the same database.
      const shutdown = shutdownOnSignals(log, 'worker shutting down: running jobs finish their step first');
      const { startApp } = await import('./app.ts');
      const app = await startApp({ ...config, workers: true }, { log, http: false });
      log.info('Tenantplane worker started');
      shutdown.ready(() => app.stop());
      return;
    }
    case 'migrate': {
      const { resolveDatabase } = await import('./app.ts');
      const { migrate } = await import('./db/migrate.ts');
      const { url, embedded } = await resolveDatabase(config, log);
      try {
        await migrate(url, (m) => log.info(m));
      } finally {
        await embedded?.stop();
      }
      log.info('migrations applied');
      return;
    }
    case 'admin:create': {
      const { values } = parseArgs({ args: rest, options: { email: { type: 'string' }, name: { type: 'string' } } });
      const { createSuperadmin } = await import('./modules/identity/admin.ts');
      await createSuperadmin(config, log, values.email, values.name);
      return;
    }
    case 'secrets:rotate': {
      // Rewraps every stored secret under a new generated key (or SECRETS_KEY); prints counts and key ids only.
      const { resolveDatabase } = await import('./app.ts');
      const { migrate } = await import('./db/migrate.ts');
      const { rotateSecrets, describeRotation, remainingCount } = await import('./secrets/rotate.ts');
      const { default: pg } = await import('pg');
      const { url, embedded } = await resolveDatabase(config, log);
      const pool = new pg.Pool({ connectionString: url, max: 1, application_name: 'tenantplane-secrets-rotate' });
      try {
        await migrate(url, (m) => log.debug(m));
        const report = await rotateSecrets(pool, { key: config.secrets.key, previousKeys: config.secrets.previousKeys, log });
        for (const line of describeRotation(report)) console.log(line);
        const left = remainingCount(report);
        if (left > 0) throw new Error(`${left} values could not be rewrapped and still need an old key (see above); the others were`);
      } finally {
        await pool.end();
        await embedded?.stop();
      }
      return;
    }
    case 'schema:print': {
      const { printSchemaFile } = await import('./graphql/print.ts');
      await printSchemaFile();
      return;
    }
    default:
      throw new Error(`unknown command "${command}": use serve, worker, migrate, admin:create, secrets:rotate or schema:print`);
  }
}

/**
 * Any failure ends as ONE readable line on stderr and exit 1, after stopping what the command started and its own
 * cleanup left running (bounded). A cluster child tells the primary instead, which prints the line once and stops
 * everything (src/cluster.ts).
 */
main().catch(async (e: unknown) => {
  const command = process.argv[2] ?? 'serve';
  const line = readableError(e);
  await Promise.race([stopStarted('graceful'), new Promise((r) => setTimeout(r, shutdownTimeoutMs()).unref())]);
  await stopStarted('hard');
  const { default: cluster } = await import('node:cluster');
  if (cluster.isWorker && process.connected) {
    process.send!({ tenantplane: 'startup-failed', message: line }, () => process.exit(1));
    return;
  }
  const what = command === 'serve' || command === 'worker' ? 'Tenantplane could not start' : `tenantplane ${command} failed`;
  console.error(`${what}: ${line}`);
  if (process.env.LOG_LEVEL === 'debug' || process.env.LOG_LEVEL === 'trace') console.error(e);
  process.exit(1);
});
