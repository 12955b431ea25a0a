import pg from 'pg';
import type { Logger } from 'pino';
import { survivePoolFaults } from '../../db/database.ts';
import { describeFailure } from '../../faults.ts';
import { Storage } from '../../storage/s3.ts';

/** Reads a sealed secret of the fleet (app_private.secrets), opened; null when there is none. */
export type SecretReader = (kind: 'database-server-password' | 'storage-secret-key', ref: string) => Promise<string | null>;

/** The deployment's own PostgreSQL and S3, as configured (their credentials are never stored: they come from config). */
export interface ManagedEndpoints {
  /** Privileged URL of the control-plane database (DATABASE_URL or the embedded server). */
  databaseUrl: string;
  storage: Storage;
}

export interface DatabaseServerEndpoint {
  serverId: string;
  host: string;
  port: number;
  adminUser: string;
  sslMode: string;
  sitesDatabase: string;
  managed: boolean;
}

/**
 * Connections to the fleet, for job handlers only (never handed to a resolver): a small pg pool per (database server,
 * database) as that server's admin login, and the storage of each cluster. Credentials are read (and opened) when a
 * pool is first made; `forget` drops a server's pools when its credentials or address change.
 */
export class FleetConnections {
  private pools = new Map<string, Promise<pg.Pool>>();
  private storages = new Map<string, Promise<Storage>>();

  constructor(
    private readonly ownerPool: pg.Pool,
    private readonly managed: ManagedEndpoints,
    private readonly readSecret: SecretReader,
    private readonly log: Logger,
  ) {}

  async server(serverId: string): Promise<DatabaseServerEndpoint> {
    const { rows } = await this.ownerPool.query<DatabaseServerEndpoint>(
      `select server_id as "serverId", host, port, admin_user as "adminUser", ssl_mode as "sslMode", sites_database as "sitesDatabase", managed
         from app_public.database_servers where server_id = $1`,
      [serverId],
    );
    if (!rows[0]) throw new Error(`database server ${serverId} is not registered`);
    return rows[0];
  }

  /** A pool on `database` (default: the server's sites database) of database server `serverId`, as its admin. */
  async pool(serverId: string, database?: string): Promise<pg.Pool> {
    const endpoint = await this.server(serverId);
    const db = database ?? endpoint.sitesDatabase;
    const key = `${serverId}/${db}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = this.connect(endpoint, db);
      this.pools.set(key, pool);
      pool.catch(() => this.pools.delete(key));
    }
    return pool;
  }

  /** A client config for `database` on the server as its admin (for one-off connections: CREATE DATABASE, checks). */
  async clientConfig(endpoint: DatabaseServerEndpoint, database: string): Promise<pg.ClientConfig> {
    if (endpoint.managed) {
      const u = new URL(this.managed.databaseUrl);
      u.pathname = `/${database}`;
      return { connectionString: u.toString() };
    }
    const password = await this.readSecret('database-server-password', endpoint.serverId);
    if (password === null) throw new Error(`database server ${endpoint.host}:${endpoint.port} has no admin password`);
    return {
      host: endpoint.host,
      port: endpoint.port,
      user: endpoint.adminUser,
      password,
      database,
      ssl: endpoint.sslMode === 'disable' ? false : endpoint.sslMode === 'verify-full' ? { rejectUnauthorized: true } : { rejectUnauthorized: false },
      connectionTimeoutMillis: 10_000,
    };
  }

  private async connect(endpoint: DatabaseServerEndpoint, database: string) {
    const config = await this.clientConfig(endpoint, database);
    const pool = new pg.Pool({ ...config, max: 3, idleTimeoutMillis: 30_000, application_name: 'tenantplane-fleet', keepAlive: true });
    survivePoolFaults(pool, (err) => this.log.warn({ server: `${endpoint.host}:${endpoint.port}`, database, reason: describeFailure(err) }, 'fleet connection lost'));
    return pool;
  }

  /** The storage of a cluster: its storage configuration, or the deployment's own S3 when that is the managed one. */
  async storage(clusterId: string): Promise<{ storage: Storage; configId: string | null }> {
    const { rows } = await this.ownerPool.query<{ id: string }>(`select id from app_public.storage_configs where cluster_id = $1`, [clusterId]);
    const configId = rows[0]?.id ?? null;
    return { storage: configId ? await this.storageById(configId) : this.managed.storage, configId };
  }

  /** The storage of one configuration (a backup names the one that holds it). */
  async storageById(configId: string): Promise<Storage> {
    let storage = this.storages.get(configId);
    if (!storage) {
      storage = this.openStorage(configId);
      this.storages.set(configId, storage);
      storage.catch(() => this.storages.delete(configId));
    }
    return storage;
  }

  private async openStorage(configId: string): Promise<Storage> {
    const { rows } = await this.ownerPool.query<{ id: string; endpoint: string; region: string; access_key_id: string; default_bucket: string; managed: boolean }>(
      `select id, endpoint, region, access_key_id, default_bucket, managed from app_public.storage_configs where id = $1`,
      [configId],
    );
    const row = rows[0];
    if (!row) throw new Error(`storage configuration ${configId} does not exist`);
    if (row.managed) return this.managed.storage;
    const secret = await this.readSecret('storage-secret-key', row.id);
    if (secret === null) throw new Error(`the storage configuration ${row.endpoint} has no secret key`);
    const storage = new Storage({ endpoint: row.endpoint, region: row.region, accessKeyId: row.access_key_id, secretAccessKey: secret, bucket: row.default_bucket });
    await storage.ensureBucket();
    return storage;
  }

  /** Drops cached pools and storage clients (credentials or addresses changed). */
  async forget(opts: { serverId?: string; storageConfigId?: string }) {
    for (const [key, pool] of this.pools) {
      if (opts.serverId && key.startsWith(`${opts.serverId}/`)) {
        this.pools.delete(key);
        await pool.then((p) => p.end()).catch(() => undefined);
      }
    }
    if (opts.storageConfigId) this.storages.delete(opts.storageConfigId);
  }

  async close() {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.then((x) => x.end()).catch(() => undefined)));
  }
}
