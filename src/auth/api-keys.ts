import crypto from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import { LRUCache } from 'lru-cache';
import type { Database } from '../db/database.ts';
import { translateDatabaseError } from '../graphql/errors.ts';

/**
 * API keys (sql/0021_api_keys.sql): `tpk_<identifier>_<secret>`, the identifier 12 characters of [a-z0-9] (public,
 * shown in lists as the key's prefix), the secret 32 random bytes in base64url (43 characters). Only
 * HMAC-SHA256(pepper, whole key) is stored.
 */
export const API_KEY_PREFIX = 'tpk_';
const KEY_FORMAT = /^tpk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export function looksLikeApiKey(token: string) {
  return token.startsWith(API_KEY_PREFIX);
}

/** A new identifier (≈ 62 bits) and the full key to hand out once. */
export function newApiKey(): { identifier: string; key: string } {
  const bytes = crypto.randomBytes(12);
  // 36 characters, 256 % 36 = 4: a negligible bias, and the identifier is not the secret.
  const identifier = Array.from(bytes, (b) => ALPHABET[b % ALPHABET.length]).join('');
  const secret = crypto.randomBytes(32).toString('base64url');
  return { identifier, key: `${API_KEY_PREFIX}${identifier}_${secret}` };
}

/** A usable key as the database answered it. */
export interface VerifiedApiKey {
  id: string;
  tenantId: string;
  createdBy: string;
  permissions: string[];
  expiresAt: Date | null;
}

interface CachedKey {
  hash: Buffer;
  key: VerifiedApiKey;
}

/** What this process knows of a key's last use (kept longer than the 1 s verification cache). */
interface KeyUsage {
  lastUsedAt: Date | null;
  /** Ips this process recorded for the key recently (a change of ip is recorded at once, a known one not again). */
  ips: Set<string>;
}

/** A key's last use is written at most this often per key and process (and when its ip changes). */
export const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * Verifies API keys: one HMAC (no argon2), then an in-process cache by identifier that trusts a verified key for at
 * most `cacheTtlMs` (≤ 1 s) before asking the database again, so a revocation made by any process is seen within
 * that time; a revocation's NOTIFY (sql/0021) evicts the key at once where the LISTEN connection heard it.
 */
export class ApiKeyVerifier {
  private readonly cache: LRUCache<string, CachedKey>;
  /** By key id, without TTL: what keeps last-use writes to about one a minute per key. */
  private readonly usage = new LRUCache<string, KeyUsage>({ max: 10_000 });
  /** Pending last-use writes (tests and shutdown wait for them). */
  private readonly writes = new Set<Promise<void>>();

  private constructor(
    private readonly pepper: Buffer,
    private readonly db: Database,
    private readonly log: Logger | undefined,
    cacheTtlMs: number,
  ) {
    this.cache = new LRUCache<string, CachedKey>({ max: 10_000, ttl: Math.max(1, cacheTtlMs), ttlAutopurge: false });
  }

  /** The pepper: API_KEY_PEPPER, else the deployment's own, generated on first start (privileged connection). */
  static async load(ownerPool: pg.Pool, db: Database, opts: { pepper?: string; cacheTtlMs: number; log?: Logger }) {
    let pepper: Buffer;
    if (opts.pepper) pepper = Buffer.from(opts.pepper, 'utf8');
    else {
      await ownerPool.query(`insert into app_private.server_secrets (name, secret) values ('api_key_pepper', $1) on conflict do nothing`, [
        crypto.randomBytes(32),
      ]);
      const { rows } = await ownerPool.query<{ secret: Buffer }>(`select secret from app_private.server_secrets where name = 'api_key_pepper'`);
      pepper = rows[0]!.secret;
    }
    return new ApiKeyVerifier(pepper, db, opts.log, opts.cacheTtlMs);
  }

  hash(key: string): Buffer {
    return crypto.createHmac('sha256', this.pepper).update(key).digest();
  }

  /** The key's tenant, creator and permissions, or null when it is malformed, unknown, tampered, revoked or expired. */
  async verify(token: string, ip: string | null): Promise<VerifiedApiKey | null> {
    const match = KEY_FORMAT.exec(token);
    if (!match) return null;
    const identifier = match[1]!;
    const hash = this.hash(token);
    let entry = this.cache.get(identifier);
    if (entry && (entry.hash.length !== hash.length || !crypto.timingSafeEqual(entry.hash, hash))) entry = undefined;
    if (!entry) {
      const rows = await this.db
        .withContext({}, (tx) =>
          tx.$queryRaw<Array<{ id: string; tenant_id: string; created_by: string; permissions: string[]; expires_at: Date | null; last_used_at: Date | null; last_used_ip: string | null }>>`
            select id, tenant_id, created_by, permissions, expires_at, last_used_at, last_used_ip from app.authenticate_api_key(${identifier}, ${new Uint8Array(hash)})`,
        )
        .catch((e) => translateDatabaseError(e));
      const row = rows[0];
      // Unknown, revoked, expired or tampered. The cache is left alone: a wrong secret must not evict the right one.
      if (!row) return null;
      entry = { hash, key: { id: row.id, tenantId: row.tenant_id, createdBy: row.created_by, permissions: row.permissions, expiresAt: row.expires_at } };
      this.cache.set(identifier, entry);
      const usage = this.usage.get(row.id);
      if (usage) usage.lastUsedAt = maxDate(usage.lastUsedAt, row.last_used_at);
      else this.usage.set(row.id, { lastUsedAt: row.last_used_at, ips: new Set(row.last_used_ip ? [row.last_used_ip] : []) });
    }
    if (entry.key.expiresAt && entry.key.expiresAt.getTime() <= Date.now()) {
      this.cache.delete(identifier);
      return null;
    }
    this.noteUse(identifier, hash, entry.key.id, ip);
    return entry.key;
  }

  /** Writes the last use when the known one is older than LAST_USED_RESOLUTION_MS or the ip is new to this process. */
  private noteUse(identifier: string, hash: Buffer, keyId: string, ip: string | null) {
    let entry = this.usage.get(keyId);
    if (!entry) this.usage.set(keyId, (entry = { lastUsedAt: null, ips: new Set() }));
    const now = Date.now();
    const stale = !entry.lastUsedAt || now - entry.lastUsedAt.getTime() >= LAST_USED_RESOLUTION_MS;
    const newIp = ip !== null && !entry.ips.has(ip);
    if (!stale && !newIp) return;
    entry.lastUsedAt = new Date(now);
    if (ip !== null) {
      if (entry.ips.size >= 16) entry.ips.clear();
      entry.ips.add(ip);
    }
    const usage = entry;
    const write = this.db
      .withContext({}, (tx) => tx.$executeRaw`select app.record_api_key_use(${identifier}, ${new Uint8Array(hash)}, ${ip})`)
      .then(
        () => undefined,
        (err) => {
          usage.lastUsedAt = null; // try again with the next request
          if (ip !== null) usage.ips.delete(ip);
          this.log?.warn({ err, apiKeyIdentifier: identifier }, 'could not record an API key use');
        },
      )
      .finally(() => this.writes.delete(write));
    this.writes.add(write);
  }

  /** Forgets a key (revoked here, or a revocation heard from another process). */
  forget(keyId: string) {
    for (const [identifier, entry] of this.cache.entries()) if (entry.key.id === keyId) this.cache.delete(identifier);
    this.usage.delete(keyId);
  }

  /** Waits for the last-use writes under way. */
  async flush() {
    await Promise.all([...this.writes]);
  }
}

function maxDate(a: Date | null, b: Date | null) {
  if (!a) return b;
  if (!b) return a;
  return a > b ? a : b;
}
