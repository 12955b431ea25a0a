import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../../config.ts';
import { describeFailure } from '../../faults.ts';
import { StartupError } from '../../shutdown.ts';
import { parseIp } from './validate.ts';

/**
 * App servers are the processes running job workers (`npm run worker`, and `npm start` unless WORKERS=false): each
 * registers itself as a server of type APP in its cluster — ACTIVE at once, as the owner role (PENDING → ACTIVE is
 * maintenance code's, sql/0025) — and heartbeats: `last_heartbeat_at` and `process` (pid, versions, queues, the
 * interval). The API shows one `reachable` while a beat is younger than three intervals; a clean stop records
 * `stoppedAt` and keeps the row (unreachable from then on). Several processes given the same WORKER_NAME share one
 * row (the last to beat is shown): give each its own name.
 */

export const MISSED_HEARTBEATS = 3;

export interface AppServerProcess {
  pid: number;
  version: string;
  node: string;
  queues: string[];
  startedAt: string;
  heartbeatSeconds: number;
  stoppedAt?: string;
}

/** Whether an app server is alive by its own record: not stopped, and its last beat within three of its intervals. */
export function isReachable(lastHeartbeatAt: Date | null, process: unknown, now = Date.now()): boolean {
  if (!lastHeartbeatAt) return false;
  const p = (process ?? {}) as Partial<AppServerProcess>;
  if (p.stoppedAt) return false;
  const interval = typeof p.heartbeatSeconds === 'number' && p.heartbeatSeconds > 0 ? p.heartbeatSeconds : 30;
  return now - lastHeartbeatAt.getTime() <= MISSED_HEARTBEATS * interval * 1000;
}

const VERSION = (() => {
  try {
    return String(JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../../package.json'), 'utf8')).version);
  } catch {
    return 'unknown';
  }
})();

const LABEL = /[^a-z0-9-]+/g;

/** The machine's host name as the servers table takes it: lowercase labels of letters, digits and inner hyphens. */
export function machineHostname(raw = os.hostname()): string {
  const labels = raw
    .toLowerCase()
    .split('.')
    .map((l) => l.replace(LABEL, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, ''))
    .filter(Boolean);
  const name = labels.join('.').slice(0, 253).replace(/[.-]+$/, '');
  return name || 'localhost';
}

/** WORKER_NAME's default: app-<first label of the host name>, within 63 characters, no double hyphen. */
export function defaultServerName(hostname: string): string {
  const label = hostname.split('.')[0]!.replace(/-{2,}/g, '-');
  return `app-${label}`.slice(0, 63).replace(/-+$/, '');
}

/** This machine's addresses, non-internal first (normalised; no link-local IPv6, whose zone the table cannot hold). */
function machineAddresses(): Array<{ address: string; internal: boolean; family: 4 | 6 }> {
  const out: Array<{ address: string; internal: boolean; family: 4 | 6 }> = [];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) {
      const address = parseIp(a.address.split('%')[0]!);
      if (!address) continue;
      const family = a.family === 'IPv4' ? 4 : 6;
      if (family === 6 && ipaddr.parse(address).range() === 'linkLocal') continue;
      out.push({ address, internal: a.internal, family });
    }
  }
  return out.sort((x, y) => Number(x.internal) - Number(y.internal) || x.family - y.family);
}

function inside(address: string, cidrs: string[]) {
  const ip = ipaddr.parse(address);
  return cidrs.some((c) => {
    const [net, bits] = ipaddr.parseCIDR(c.includes('/') ? c : `${c}/${c.includes(':') ? 128 : 32}`);
    return net.kind() === ip.kind() && ip.match([net, bits]);
  });
}

export interface AppServerRegistration {
  id: string;
  name: string;
  /** Stops the heartbeat and records the clean stop (the row stays). */
  stop(): Promise<void>;
}

/**
 * Registers this process as an APP server (upsert by name) and starts its heartbeat. A name held by a proxy or
 * database server, an unknown WORKER_CLUSTER, or a private ip outside the cluster's networks refuse the start.
 */
export async function registerAppServer(ownerPool: pg.Pool, config: Config, queues: string[], log: Logger): Promise<AppServerRegistration> {
  const cfg = config.appServer;
  const cluster = await ownerPool.query<{ id: string; name: string }>(
    cfg.cluster ? `select id, name from app_public.clusters where name = $1` : `select id, name from app_public.clusters where is_default`,
    cfg.cluster ? [cfg.cluster] : [],
  );
  if (!cluster.rows[0]) throw new StartupError(cfg.cluster ? `WORKER_CLUSTER names no cluster: there is no cluster "${cfg.cluster}"` : 'there is no default cluster to register this worker in');
  const clusterId = cluster.rows[0].id;
  const networks = (await ownerPool.query<{ cidr: string }>(`select cidr::text from app_public.cluster_networks where cluster_id = $1`, [clusterId])).rows.map((r) => r.cidr);
  const hostname = cfg.hostname ?? machineHostname();
  const name = cfg.name ?? defaultServerName(hostname);
  const addresses = machineAddresses();
  const ip = cfg.ip ?? addresses.find((a) => !a.internal)?.address ?? addresses[0]?.address ?? '127.0.0.1';
  const privateIp = cfg.privateIp ?? addresses.find((a) => inside(a.address, networks))?.address ?? null;
  const proc: AppServerProcess = {
    pid: process.pid,
    version: VERSION,
    node: process.version,
    queues: [...queues].sort(),
    startedAt: new Date().toISOString(),
    heartbeatSeconds: cfg.heartbeatSeconds,
  };

  const register = async () => {
    const r = await ownerPool.query<{ id: string; status: string }>(
      `insert into app_public.servers as s (cluster_id, name, hostname, ip, private_ip, type, status, last_heartbeat_at, process)
       values ($1, $2, $3, $4::inet, $5::inet, 'APP', 'ACTIVE', now(), $6::jsonb)
       on conflict (name) do update
          set cluster_id = excluded.cluster_id, hostname = excluded.hostname, ip = excluded.ip, private_ip = excluded.private_ip,
              status = case when s.status = 'PENDING' then 'ACTIVE'::app_public.server_status else s.status end,
              last_heartbeat_at = now(), process = excluded.process, updated_at = now()
        where s.type = 'APP'
       returning id::text, status::text`,
      [clusterId, name, hostname, ip, privateIp, JSON.stringify(proc)],
    );
    if (!r.rows[0]) {
      const other = await ownerPool.query<{ type: string }>(`select type::text from app_public.servers where name = $1`, [name]);
      throw new StartupError(`WORKER_NAME "${name}" is already a ${other.rows[0]?.type ?? 'non-APP'} server: give this worker another name`);
    }
    return r.rows[0];
  };

  let row: { id: string; status: string };
  try {
    row = await register();
  } catch (e) {
    if (e instanceof StartupError) throw e;
    // The private ip trigger (sql/0025) explains itself: say so in one line.
    if ((e as { code?: string }).code === 'TPIN0') throw new StartupError(`this worker cannot register in cluster ${cluster.rows[0].name}: ${(e as Error).message} (set WORKER_PRIVATE_IP or the cluster's networks)`);
    throw e;
  }
  log.info({ server: name, cluster: cluster.rows[0].name, hostname, ip, privateIp, status: row.status }, 'app server registered');

  let stopped = false;
  let beating: Promise<void> = Promise.resolve();
  let lastWarning = 0;
  const beat = async () => {
    try {
      const r = await ownerPool.query(`update app_public.servers set last_heartbeat_at = now(), process = $2::jsonb where id = $1 and type = 'APP'`, [row.id, JSON.stringify(proc)]);
      // Deleted meanwhile (a clean-up by staff): register again under the same name.
      if (!r.rowCount && !stopped) row = await register();
    } catch (err) {
      if (Date.now() - lastWarning > 60_000) {
        lastWarning = Date.now();
        log.warn({ reason: describeFailure(err), server: name }, 'app server heartbeat failed (retrying at the next beat)');
      }
    }
  };
  const timer = setInterval(() => {
    beating = beating.then(beat);
  }, cfg.heartbeatSeconds * 1000);
  timer.unref();

  return {
    get id() {
      return row.id;
    },
    name,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      proc.stoppedAt = new Date().toISOString();
      const record = beating
        .then(() => ownerPool.query(`update app_public.servers set process = $2::jsonb, updated_at = now() where id = $1 and type = 'APP'`, [row.id, JSON.stringify(proc)]))
        .then(
          () => undefined,
          (err) => log.warn({ reason: describeFailure(err) }, 'could not record the app server’s stop'),
        );
      // Bounded: a database that is away must not hold up the shutdown (the row then shows unreachable by its beats).
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([record, new Promise<void>((resolve) => (timeout = setTimeout(resolve, 2000)))]);
      clearTimeout(timeout);
    },
  };
}
