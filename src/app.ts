import path from 'node:path';
import pino from 'pino';
import pg from 'pg';
import type { Config } from './config.ts';
import { Database, assertAppRoleIsolated, survivePoolFaults } from './db/database.ts';
import { describeFailure } from './faults.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.ts';
import { migrate } from './db/migrate.ts';
import { AccessTokens, OidcVerifier } from './auth/tokens.ts';
import { PasswordHasher } from './auth/passwords.ts';
import { Authenticator } from './auth/context.ts';
import { SessionRevocations } from './auth/revocations.ts';
import { ApiKeyVerifier } from './auth/api-keys.ts';
import { SecretBox } from './secrets/envelope.ts';
import { getSecret } from './secrets/store.ts';
import { EventHub } from './graphql/events.ts';
import { startHttpServer } from './graphql/server.ts';
import { requestServices, type WorkerServices } from './services.ts';
import { runJob } from './modules/jobs/run.ts';
import { Storage } from './storage/s3.ts';
import { startEmbeddedS3, type EmbeddedS3 } from './storage/embedded.ts';
import { Jobs } from './jobs/queue.ts';
import { QUEUES } from './jobs/registry.ts';
import { registerAppServer } from './modules/fleet/app-servers.ts';
import { startBenchPuller } from './modules/releases/artifacts.ts';
import { Metrics } from './observability/metrics.ts';
import { createLogger } from './observability/logger.ts';
import { FleetConnections } from './modules/fleet/connections.ts';
import { managedSitesDatabase, registerManagedEndpoints } from './modules/fleet/managed.ts';

export interface RunningApp {
  url: string;
  port: number;
  /** Everything, worker services included (tests and the CLI use them); the HTTP server gets the request view. */
  services: WorkerServices;
  stop(): Promise<void>;
}

/** The privileged URL: DATABASE_URL, or an embedded PostgreSQL started under DATA_DIR. */
export async function resolveDatabase(config: Config, log: pino.Logger): Promise<{ url: string; embedded?: EmbeddedDatabase }> {
  if (config.database.url) return { url: config.database.url };
  const embedded = await startEmbeddedPostgres(path.join(config.dataDir, 'postgres'), config.database.embeddedPort, (m) => log.debug(m.trim()), (m) => log.warn(m));
  log.info({ port: config.database.embeddedPort }, 'embedded PostgreSQL started');
  return { url: embedded.url, embedded };
}

/** S3_ENDPOINT, or an embedded s3rver under DATA_DIR/s3 (its keys are s3rver's own: it checks no signature). */
export async function resolveStorage(config: Config, log: pino.Logger): Promise<{ storage: Storage; endpoint: string; accessKeyId: string; embedded?: EmbeddedS3 }> {
  const s = config.storage;
  if (s.endpoint) {
    const storage = new Storage({ endpoint: s.endpoint, region: s.region, accessKeyId: s.accessKeyId!, secretAccessKey: s.secretAccessKey!, bucket: s.bucket });
    return { storage, endpoint: s.endpoint, accessKeyId: s.accessKeyId! };
  }
  const embedded = await startEmbeddedS3(path.join(config.dataDir, 's3'), s.embeddedPort, s.bucket);
  log.info({ endpoint: embedded.endpoint }, 'embedded S3 started');
  const storage = new Storage({ endpoint: embedded.endpoint, region: s.region, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', bucket: s.bucket });
  return { storage, endpoint: embedded.endpoint, accessKeyId: 'S3RVER', embedded };
}

/** Starts the whole API: database (embedded or DATABASE_URL), migrations, keys, HTTP + WebSocket on one port. */
export async function startApp(config: Config, opts: { migrate?: boolean; log?: pino.Logger; http?: boolean } = {}): Promise<RunningApp> {
  const log = opts.log ?? createLogger(config.logLevel);
  const { url, embedded } = await resolveDatabase(config, log);
  const cleanup: Array<() => Promise<unknown>> = [];
  let embeddedS3: EmbeddedS3 | undefined;
  try {
    const resolved = await resolveStorage(config, log);
    embeddedS3 = resolved.embedded;
    const storage = resolved.storage;
    await storage.ensureBucket();
    // The console uploads straight to the bucket; a bucket that refuses the rule only loses browser uploads.
    await storage
      .allowBrowserUploads()
      .catch((e) => log.warn({ reason: describeFailure(e) }, 'could not set the bucket’s CORS rule: the console cannot upload documents (set it by hand: README, Documents)'));
    if (opts.migrate !== false) await migrate(url, (m) => log.debug(m));
    const ownerPool = new pg.Pool({ connectionString: url, max: 4, application_name: 'tenantplane-owner', connectionTimeoutMillis: 10_000, keepAlive: true });
    survivePoolFaults(ownerPool, (err) => log.warn({ reason: describeFailure(err) }, 'owner connection lost'));
    cleanup.push(() => ownerPool.end());
    await registerManagedEndpoints(ownerPool, {
      databaseUrl: url,
      sitesDatabase: managedSitesDatabase(url, config.sites.database),
      appRole: config.database.appRole,
      storage,
      storageEndpoint: resolved.endpoint,
      storageRegion: config.storage.region,
      accessKeyId: resolved.accessKeyId,
    });
    const tokens = await AccessTokens.load(ownerPool, {
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      ttlSeconds: config.auth.accessTokenTtl,
    });
    const db = new Database(config.database.appUrl ?? url, {
      poolSize: config.database.poolSize,
      appRole: config.database.appRole,
      statementTimeoutMs: config.database.statementTimeoutMs,
      preparedStatements: config.database.preparedStatements,
    });
    const metrics = new Metrics();
    metrics.watchPool(db.pool);
    cleanup.push(() => db.close());
    await assertAppRoleIsolated(db);
    const events = new EventHub(url, log);
    cleanup.push(() => events.close());
    await events.start();
    // Loaded once LISTEN is up, so that no revocation falls between the load and the first notice.
    const revocations = new SessionRevocations(async (since) => {
      const { rows: sessions } = await ownerPool.query<{ id: string; revoked_at: Date }>(
        `select family_id::text as id, max(revoked_at) as revoked_at from app_private.refresh_tokens
          where revoked_at is not null and revoked_at > $1 and revoked_reason is distinct from 'logOut' group by family_id`,
        [since],
      );
      const { rows: users } = await ownerPool.query<{ id: string }>(`select id::text from app_public.users where not is_active`);
      return { sessions: sessions.map((r) => ({ id: r.id, revokedAt: r.revoked_at })), users: users.map((r) => r.id) };
    }, config.auth.accessTokenTtl * 1000);
    events.onAuthChange((change) => {
      // logOut: its holder discards the access token; it lapses at its expiry (its sockets close all the same).
      if (change.kind === 'sessionRevoked') {
        if (change.reason !== 'logOut') revocations.sessionRevoked(change.id);
      }
      else if (change.kind === 'userDeactivated') revocations.userDeactivated(change.id);
      else if (change.kind === 'userReactivated') revocations.userReactivated(change.id);
      else if (change.kind === 'resync') revocations.reload(change.since).catch((err) => log.warn({ reason: describeFailure(err) }, 'could not reload session revocations after a reconnect'));
    });
    await revocations.reload();
    const apiKeys = await ApiKeyVerifier.load(ownerPool, db, { pepper: config.auth.apiKeys.pepper, cacheTtlMs: config.auth.apiKeys.cacheTtlMs, log });
    // A revocation by any instance evicts the key here at once (the cache's TTL bounds it when a NOTIFY is missed).
    events.onAnyApiKeyRevoked((id) => apiKeys.forget(id));
    cleanup.unshift(() => apiKeys.flush());
    const secrets = await SecretBox.load(ownerPool, { key: config.secrets.key, previousKeys: config.secrets.previousKeys, log });
    // The fleet's credentials are sealed in app_private.secrets; the managed endpoints' come from this configuration.
    const fleet = new FleetConnections(ownerPool, { databaseUrl: url, storage }, (kind, ref) => getSecret(ownerPool, secrets, kind, ref), log);
    cleanup.push(() => fleet.close());
    const jobs = new Jobs(url, config, QUEUES, log);
    await jobs.start();
    cleanup.unshift(() => jobs.stop());
    const services: WorkerServices = {
      config,
      db,
      ownerPool,
      tokens,
      passwords: new PasswordHasher(config.auth.argon2),
      authenticator: new Authenticator(tokens, db, config.auth.oidc ? new OidcVerifier(config.auth.oidc) : undefined, apiKeys, revocations),
      events,
      storage,
      jobs,
      fleet,
      log,
      metrics,
      secrets,
    };
    if (config.workers) {
      await jobs.work(services, runJob);
      // This process is an app server of its cluster from now on, heartbeating until it stops (the row stays).
      const appServer = await registerAppServer(ownerPool, config, QUEUES.map((q) => q.name), log);
      cleanup.unshift(() => appServer.stop());
      // …and pulls the release artifacts its cluster's benches ask of it (src/modules/releases/artifacts.ts).
      const puller = startBenchPuller(services, () => appServer.id, log);
      cleanup.unshift(() => puller.stop());
    }
    // `npm run worker`: the same services and job workers, no HTTP listener.
    const server = opts.http === false ? { port: 0, close: async () => undefined } : await startHttpServer(requestServices(services), config.port, config.host);
    cleanup.unshift(() => server.close());
    const host = config.host === '0.0.0.0' ? 'localhost' : config.host;
    return {
      url: `http://${host}:${server.port}/graphql`,
      port: server.port,
      services,
      async stop() {
        events.stopping();
        for (const step of cleanup) await step().catch((err) => log.warn({ err }, 'shutdown step failed'));
        await embeddedS3?.stop().catch(() => undefined);
        await embedded?.stop();
      },
    };
  } catch (e) {
    for (const step of cleanup) await step().catch(() => undefined);
    await embeddedS3?.stop().catch(() => undefined);
    await embedded?.stop();
    throw e;
  }
}
