import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseIp } from './modules/fleet/validate.ts';
import { parseMasterKey, parseMasterKeys } from './secrets/envelope.ts';

/** One typed, validated configuration object, read from the environment once. */
const Env = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().default('0.0.0.0'),
  /** Privileged URL: runs migrations and owns the schema. Unset → an embedded PostgreSQL 18 under DATA_DIR. */
  DATABASE_URL: z.string().url().optional(),
  /** Optional separate URL for request connections (as the app role). Defaults to DATABASE_URL. */
  APP_DATABASE_URL: z.string().url().optional(),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(500).default(10),
  /** Distinct SQL texts kept as named prepared statements on each connection; 0 = none (e.g. behind PgBouncer < 1.21). */
  DATABASE_PREPARED_STATEMENTS: z.coerce.number().int().min(0).max(10_000).default(500),
  DATA_DIR: z.string().default('.data'),
  EMBEDDED_PG_PORT: z.coerce.number().int().min(0).max(65535).default(54329),
  /** Issuer and audience of our own access tokens. */
  JWT_ISSUER: z.string().default('tenantplane'),
  JWT_AUDIENCE: z.string().default('tenantplane-api'),
  ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(86400).default(900),
  REFRESH_TOKEN_TTL_SECONDS: z.coerce.number().int().min(300).default(30 * 86400),
  INVITATION_TTL_SECONDS: z.coerce.number().int().min(60).default(7 * 86400),
  /** External OIDC issuer (e.g. Keycloak realm URL). JWKS from OIDC_JWKS_URI or the issuer's discovery document. */
  OIDC_ISSUER: z.string().url().optional(),
  OIDC_AUDIENCE: z.string().optional(),
  OIDC_JWKS_URI: z.string().url().optional(),
  /**
   * Sign-in with that issuer from the console (authorization code + PKCE, exchanged by this server): the client
   * registered at the IdP for Tenantplane, its secret when it is a confidential client, and the button's label.
   * The IdP must allow the redirect URI <public origin>/auth/oidc/callback (or OIDC_REDIRECT_URI).
   */
  OIDC_CLIENT_ID: z.string().min(1).optional(),
  OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  OIDC_PROVIDER_NAME: z.string().min(1).max(60).optional(),
  OIDC_REDIRECT_URI: z.string().url().optional(),
  OIDC_SCOPES: z.string().regex(/(^|\s)openid(\s|$)/, 'must include openid').default('openid email profile'),
  /** Argon2id cost; the defaults follow OWASP's recommendation (19 MiB, t=2). */
  ARGON2_MEMORY_KIB: z.coerce.number().int().min(1024).default(19456),
  ARGON2_TIME_COST: z.coerce.number().int().min(1).default(2),
  /** HMAC-SHA256 key of API key hashes (≥ 32 characters). Unset → generated on first start, kept in app_private.server_secrets. */
  API_KEY_PEPPER: z.string().min(32, 'at least 32 characters').optional(),
  /** How long a verified API key is trusted from the in-process cache before it is looked up again (revocation latency bound). */
  API_KEY_CACHE_TTL_MS: z.coerce.number().int().min(0).max(1000).default(1000),
  /**
   * Master key of secrets at rest (site passwords, fleet passwords and keys): 32 bytes as base64 or 64 hex
   * characters. Unset → generated on first start, kept in app_private.secret_keys (src/secrets/envelope.ts).
   */
  SECRETS_KEY: z.string().optional().superRefine((v, ctx) => checkKey(ctx, () => v && parseMasterKey(v, 'SECRETS_KEY'))),
  /** Older master keys (comma-separated) that still open values sealed under them, during a rotation. */
  SECRETS_KEY_PREVIOUS: z.string().optional().superRefine((v, ctx) => checkKey(ctx, () => parseMasterKeys(v))),
  /** S3-compatible storage. Unset S3_ENDPOINT → an embedded s3rver under DATA_DIR/s3. */
  S3_ENDPOINT: z.string().url().optional(),
  S3_REGION: z.string().default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{2,62}$/, 'a DNS-compliant bucket name').default('tenantplane-data'),
  EMBEDDED_S3_PORT: z.coerce.number().int().min(0).max(65535).default(54330),
  /** Lifetime of presigned upload and download URLs. */
  UPLOAD_URL_TTL_SECONDS: z.coerce.number().int().min(10).max(7 * 86400).default(900),
  DOWNLOAD_URL_TTL_SECONDS: z.coerce.number().int().min(10).max(7 * 86400).default(300),
  /** `npm start` serves HTTP from this many processes (node:cluster); `auto` = one per core. */
  HTTP_PROCESSES: z.union([z.literal('auto'), z.coerce.number().int().min(1).max(64)]).default(1),
  /** Run job workers in this process (`npm start`); `npm run worker` runs workers only. */
  WORKERS: z.enum(['true', 'false']).default('true'),
  /**
   * App servers (src/modules/fleet/app-servers.ts): a process running job workers registers itself as a server of type
   * APP in WORKER_CLUSTER (default: the default cluster) under WORKER_NAME (default: app-<first label of the host
   * name>), with its host name and addresses detected (os) unless configured, and heartbeats every
   * WORKER_HEARTBEAT_SECONDS; it shows unreachable after three missed beats.
   */
  WORKER_CLUSTER: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'a cluster name').optional(),
  WORKER_NAME: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, '1 to 63 lowercase letters, digits and inner hyphens').optional(),
  WORKER_HOSTNAME: z
    .string()
    .max(253)
    .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/, 'a lowercase host name such as worker1.example.com')
    .optional(),
  WORKER_IP: z.string().refine((s) => parseIp(s) !== null, 'an IPv4 or IPv6 address').optional(),
  WORKER_PRIVATE_IP: z.string().refine((s) => parseIp(s) !== null, 'an IPv4 or IPv6 address').optional(),
  WORKER_HEARTBEAT_SECONDS: z.coerce.number().min(0.2).max(3600).default(30),
  /** How often pg-boss looks for expired jobs and missed heartbeats (a killed worker's job is retried then). */
  JOBS_SUPERVISE_SECONDS: z.coerce.number().int().min(1).default(30),
  /** Pause after every reported job step: for demos and crash tests only (0 in production). */
  JOB_STEP_DELAY_MS: z.coerce.number().int().min(0).max(60000).default(0),
  /** Sites get `<name>.<BASE_DOMAIN>` by default; soft-deleted sites are purged after SITE_RETENTION_DAYS. */
  BASE_DOMAIN: z.string().regex(/^[a-z0-9.-]+$/).default('sites.localhost'),
  SITE_RETENTION_DAYS: z.coerce.number().int().min(0).default(30),
  /** Every live site is measured against its plan on SITE_MEASURE_CRON (UTC): its size, and whether it is over its storage limit. */
  SITE_MEASURE_CRON: z.string().default('*/10 * * * *'),
  /** A moved site's old copy (schema or database on its old home) is kept this long, then dropped (0: at once). */
  SITE_MOVE_GRACE_SECONDS: z.coerce.number().int().min(0).default(86400),
  /** The sites database on the deployment's own PostgreSQL (the managed database server): default `<control-plane database>_sites`. */
  SITES_DATABASE: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lowercase PostgreSQL identifier').optional(),
  /** Releases (issue 11): built-in app repositories and pulled release artifacts live here; default DATA_DIR/releases. */
  RELEASES_DIR: z.string().optional(),
  /** Folders whose git repositories app sources may name as file:///… (comma-separated absolute paths); none by default. */
  APP_SOURCE_FILE_ROOTS: z.string().optional(),
  /** https hosts app sources may fetch from although they are (or resolve to) loopback or private addresses: comma-separated names. */
  APP_SOURCE_ALLOWED_HOSTS: z.string().optional(),
  /** A bench whose app servers have not all reported their pull within this long is BROKEN. */
  BENCH_DEPLOY_TIMEOUT_SECONDS: z.coerce.number().int().min(5).max(86400).default(300),
  /** How often an app server looks for benches to pull. */
  BENCH_PULL_POLL_SECONDS: z.coerce.number().min(0.2).max(600).default(2),
  /** A deleted tenant is purged (rows, objects, site schemas, backups) this long after deleteTenant; 0: at once. */
  TENANT_RETENTION_DAYS: z.coerce.number().int().min(0).max(3650).default(30),
  /** Backups are kept BACKUP_RETENTION_DAYS; the daily backup of every healthy site runs on BACKUP_CRON (UTC). */
  BACKUP_RETENTION_DAYS: z.coerce.number().int().min(1).default(30),
  BACKUP_CRON: z.string().default('0 3 * * *'),
  /** Authentication events (sign-ins, failures, sessions ended, password changes…) are deleted after this many days. */
  AUTH_EVENT_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Largest accepted request body (JSON over HTTP, one WebSocket message); past it HTTP answers 413. */
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(100 * 1024 * 1024).default(1024 * 1024),
  /** statement_timeout of every request and job transaction. */
  STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(15_000),
  /** Browser origins allowed to open a WebSocket, comma-separated (`*` for any). Same-host and Origin-less clients always are. */
  ALLOWED_ORIGINS: z.string().optional(),
  /** A graphql-ws client must send connection_init within this time, or is closed with 4408. */
  WS_CONNECTION_INIT_TIMEOUT_MS: z.coerce.number().int().min(10).max(60_000).default(3000),
  /** Express `trust proxy` (e.g. `loopback`, `1`, `10.0.0.0/8`): which X-Forwarded-For hops to believe for the client ip. */
  TRUST_PROXY: z.string().optional(),
  /** GraphiQL at GET /graphql for browsers: on by default outside production; `true` in production enables it (and introspection with it). */
  GRAPHIQL: z.enum(['true', 'false']).optional(),
  /** When set, GET /metrics requires `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
});

/** A key that does not parse is refused with parseMasterKey's message (which never repeats the value). */
function checkKey(ctx: z.RefinementCtx, parse: () => unknown) {
  try {
    parse();
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
}

export type Config = ReturnType<typeof loadConfig>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  // An empty variable counts as unset (e.g. `DATABASE_URL= npm start`).
  const parsed = Env.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.OIDC_CLIENT_ID && !e.OIDC_ISSUER) throw new Error('invalid configuration:\n  OIDC_CLIENT_ID needs OIDC_ISSUER');
  if (e.S3_ENDPOINT && (!e.S3_ACCESS_KEY_ID || !e.S3_SECRET_ACCESS_KEY)) {
    throw new Error('invalid configuration:\n  S3_ENDPOINT needs S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY');
  }
  return {
    env: e.NODE_ENV,
    production: e.NODE_ENV === 'production',
    port: e.PORT,
    host: e.HOST,
    dataDir: path.resolve(e.DATA_DIR),
    database: {
      url: e.DATABASE_URL,
      appUrl: e.APP_DATABASE_URL,
      poolSize: e.DATABASE_POOL_SIZE,
      embeddedPort: e.EMBEDDED_PG_PORT,
      appRole: 'tenantplane_app',
      statementTimeoutMs: e.STATEMENT_TIMEOUT_MS,
      preparedStatements: e.DATABASE_PREPARED_STATEMENTS,
    },
    auth: {
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      accessTokenTtl: e.ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtl: e.REFRESH_TOKEN_TTL_SECONDS,
      invitationTtl: e.INVITATION_TTL_SECONDS,
      authEventRetentionDays: e.AUTH_EVENT_RETENTION_DAYS,
      argon2: { memoryCost: e.ARGON2_MEMORY_KIB, timeCost: e.ARGON2_TIME_COST },
      apiKeys: { pepper: e.API_KEY_PEPPER, cacheTtlMs: e.API_KEY_CACHE_TTL_MS },
      oidc: e.OIDC_ISSUER ? { issuer: e.OIDC_ISSUER, audience: e.OIDC_AUDIENCE, jwksUri: e.OIDC_JWKS_URI } : undefined,
      /** Console sign-in through the OIDC issuer (src/graphql/oidc-login.ts); its id tokens' audience is the client id. */
      oidcLogin:
        e.OIDC_ISSUER && e.OIDC_CLIENT_ID
          ? {
              issuer: e.OIDC_ISSUER,
              jwksUri: e.OIDC_JWKS_URI,
              clientId: e.OIDC_CLIENT_ID,
              clientSecret: e.OIDC_CLIENT_SECRET,
              providerName: e.OIDC_PROVIDER_NAME ?? new URL(e.OIDC_ISSUER).host,
              redirectUri: e.OIDC_REDIRECT_URI,
              scopes: e.OIDC_SCOPES,
            }
          : undefined,
    },
    storage: {
      endpoint: e.S3_ENDPOINT,
      region: e.S3_REGION,
      accessKeyId: e.S3_ACCESS_KEY_ID,
      secretAccessKey: e.S3_SECRET_ACCESS_KEY,
      bucket: e.S3_BUCKET,
      embeddedPort: e.EMBEDDED_S3_PORT,
      uploadUrlTtl: e.UPLOAD_URL_TTL_SECONDS,
      downloadUrlTtl: e.DOWNLOAD_URL_TTL_SECONDS,
    },
    secrets: {
      key: e.SECRETS_KEY,
      previousKeys: (e.SECRETS_KEY_PREVIOUS ?? '').split(',').map((k) => k.trim()).filter(Boolean),
    },
    workers: e.WORKERS === 'true',
    appServer: {
      cluster: e.WORKER_CLUSTER,
      name: e.WORKER_NAME,
      hostname: e.WORKER_HOSTNAME,
      ip: e.WORKER_IP ? parseIp(e.WORKER_IP)! : undefined,
      privateIp: e.WORKER_PRIVATE_IP ? parseIp(e.WORKER_PRIVATE_IP)! : undefined,
      heartbeatSeconds: e.WORKER_HEARTBEAT_SECONDS,
    },
    httpProcesses: e.HTTP_PROCESSES === 'auto' ? os.availableParallelism() : e.HTTP_PROCESSES,
    jobsSuperviseSeconds: e.JOBS_SUPERVISE_SECONDS,
    jobStepDelayMs: e.JOB_STEP_DELAY_MS,
    sites: { baseDomain: e.BASE_DOMAIN, retentionDays: e.SITE_RETENTION_DAYS, database: e.SITES_DATABASE, measureCron: e.SITE_MEASURE_CRON, moveGraceSeconds: e.SITE_MOVE_GRACE_SECONDS },
    releases: {
      dir: path.resolve(e.RELEASES_DIR ?? path.join(e.DATA_DIR, 'releases')),
      allowedHosts: (e.APP_SOURCE_ALLOWED_HOSTS ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean),
      fileRoots: (e.APP_SOURCE_FILE_ROOTS ?? '').split(',').map((r) => r.trim()).filter(Boolean).map((r) => path.resolve(r)),
      benchDeployTimeoutSeconds: e.BENCH_DEPLOY_TIMEOUT_SECONDS,
      benchPullPollSeconds: e.BENCH_PULL_POLL_SECONDS,
    },
    tenants: { retentionDays: e.TENANT_RETENTION_DAYS },
    backups: { retentionDays: e.BACKUP_RETENTION_DAYS, cron: e.BACKUP_CRON },
    logLevel: e.LOG_LEVEL,
    http: {
      bodyLimitBytes: e.BODY_LIMIT_BYTES,
      allowedOrigins: (e.ALLOWED_ORIGINS ?? '').split(',').map((o) => o.trim().replace(/\/$/, '').toLowerCase()).filter(Boolean),
      wsConnectionInitTimeoutMs: e.WS_CONNECTION_INIT_TIMEOUT_MS,
      trustProxy: trustProxy(e.TRUST_PROXY),
      graphiql: e.GRAPHIQL ? e.GRAPHIQL === 'true' : e.NODE_ENV !== 'production',
    },
    metrics: { token: e.METRICS_TOKEN },
  };
}

/** TRUST_PROXY as express wants it: a boolean, a hop count, or addresses/subnets/names (`loopback`…). */
function trustProxy(value: string | undefined): boolean | number | string {
  if (!value || value === 'false') return false;
  if (value === 'true') return true;
  return /^\d+$/.test(value) ? Number(value) : value;
}

/** pg-boss 12 and our own code need Node 24 (pinned as a devDependency); refuse to start on anything older. */
export function assertNodeVersion() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) {
    throw new Error(`Tenantplane needs Node.js 24 or later (running ${process.version}); run it through npm scripts, which use the pinned node@24.`);
  }
}
