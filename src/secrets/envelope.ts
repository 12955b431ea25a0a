import crypto from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';

/**
 * Envelope encryption of secrets at rest (issue 10 §3, sql/0026_secrets.sql). Every value gets a data key (DEK) of
 * its own, 32 random bytes; the value is encrypted with it (AES-256-GCM, random 12-byte IV), and the DEK is wrapped
 * with the master key (AES-256-GCM, random IV). Both layers authenticate the caller's `context` (e.g.
 * `site-password:<uuid>`), so a sealed value copied onto another row does not open there. The result is one string:
 *
 *   tpsec:v1:<kid>:<base64url(wrap iv ‖ wrapped DEK ‖ wrap tag)>:<base64url(iv ‖ ciphertext ‖ tag)>
 *
 * `kid` is the master key's id: the first 12 hex characters of sha256(key). Rotation rewraps the DEK under another
 * master key (a new kid and second part); the last part, the value's own ciphertext, stays as it was.
 *
 * Master keys: SECRETS_KEY (32 bytes, base64 or 64 hex characters) with SECRETS_KEY_PREVIOUS (comma-separated)
 * for values sealed under older ones; unset, a key generated on first start and kept in app_private.secret_keys,
 * where the request role cannot read it. Keys live in ES private fields: logging or serialising a SecretBox shows
 * its key ids only. No error message carries a plaintext, a key, or a sealed value.
 */
export const SEALED_PREFIX = 'tpsec:v1:';
const SEALED_FORMAT = /^tpsec:v1:([0-9a-f]{12}):([A-Za-z0-9_-]{80}):([A-Za-z0-9_-]{38,})$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

export type SecretErrorCode = 'malformed' | 'unknown-key' | 'refused';

/** A sealed value that does not open: malformed, sealed under a key this process does not hold, or refused by GCM. */
export class SecretError extends Error {
  constructor(
    readonly code: SecretErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SecretError';
  }
}

/** The id of a master key: 12 hex characters of its sha256 (the key cannot be recovered from it). */
export function keyIdOf(key: Buffer): string {
  return crypto.createHash('sha256').update(key).digest('hex').slice(0, 12);
}

/** The key id a sealed value names, or null when it is not a sealed value. */
export function sealedKeyId(sealed: string): string | null {
  return SEALED_FORMAT.exec(sealed)?.[1] ?? null;
}

/** Whether a string is a sealed value of this scheme (format only; nothing is verified). */
export function isSealed(value: string): boolean {
  return SEALED_FORMAT.test(value);
}

/**
 * A master key given as text: 64 hex characters, or base64 / base64url of exactly 32 bytes. `name` is what the
 * error message calls it (the value itself is never repeated).
 */
export function parseMasterKey(text: string, name = 'SECRETS_KEY'): Buffer {
  const s = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) return Buffer.from(s, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) {
    const bytes = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length === KEY_BYTES) return bytes;
    throw new Error(`${name} must be 32 bytes (as base64 or 64 hex characters); it decodes to ${bytes.length} bytes. Generate one with: openssl rand -base64 32`);
  }
  throw new Error(`${name} must be 32 bytes as base64 or 64 hex characters (${s.length} characters that are neither). Generate one with: openssl rand -base64 32`);
}

/** SECRETS_KEY_PREVIOUS: comma-separated keys (empty entries ignored). */
export function parseMasterKeys(text: string | undefined, name = 'SECRETS_KEY_PREVIOUS'): Buffer[] {
  return (text ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean)
    .map((k, i) => parseMasterKey(k, `${name} (entry ${i + 1})`));
}

function gcmSeal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const iv = crypto.randomBytes(IV_BYTES);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

/** The plaintext, or null when GCM refuses (wrong key, wrong AAD, tampered). */
function gcmOpen(key: Buffer, blob: Buffer, aad: string): Buffer | null {
  if (blob.length < IV_BYTES + TAG_BYTES) return null;
  const iv = blob.subarray(0, IV_BYTES);
  const tag = blob.subarray(blob.length - TAG_BYTES);
  const body = blob.subarray(IV_BYTES, blob.length - TAG_BYTES);
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return null;
  }
}

const wrapAad = (kid: string, context: string) => `${SEALED_PREFIX}${kid}:${context}`;
const dataAad = (context: string) => `${SEALED_PREFIX}${context}`;

interface Parsed {
  kid: string;
  wrapped: Buffer;
  data: string;
}

function parse(sealed: string): Parsed {
  const m = typeof sealed === 'string' ? SEALED_FORMAT.exec(sealed) : null;
  if (!m) throw new SecretError('malformed', 'not a sealed secret (expected tpsec:v1:<kid>:…)');
  return { kid: m[1]!, wrapped: Buffer.from(m[2]!, 'base64url'), data: m[3]! };
}

function checkContext(context: string) {
  if (typeof context !== 'string' || context.length === 0) throw new TypeError('a sealed secret needs a non-empty context (e.g. site-password:<uuid>)');
}

export type KeyMode = 'env' | 'generated';

export interface SecretBoxOptions {
  /** SECRETS_KEY: the master key that seals. Unset → the generated key of app_private.secret_keys. */
  key?: string;
  /** SECRETS_KEY_PREVIOUS: older keys that still open values sealed under them. */
  previousKeys?: string[];
  log?: Logger;
}

/** SECRETS_KEY and SECRETS_KEY_PREVIOUS parsed, by id (the current one included). */
function envMasterKeys(opts: SecretBoxOptions): { current: Buffer | undefined; envKeys: Map<string, Buffer> } {
  const envKeys = new Map<string, Buffer>();
  (opts.previousKeys ?? []).forEach((k, i) => {
    const key = parseMasterKey(k, `SECRETS_KEY_PREVIOUS (entry ${i + 1})`);
    envKeys.set(keyIdOf(key), key);
  });
  const current = opts.key ? parseMasterKey(opts.key, 'SECRETS_KEY') : undefined;
  if (current) envKeys.set(keyIdOf(current), current);
  return { current, envKeys };
}

/** A row of app_private.secret_keys. */
export interface KeyRow {
  id: string;
  source: 'generated' | 'env';
  key: Buffer | null;
  retired_at: Date | null;
}

/** Reads every key row (privileged connection). */
export async function readKeyRows(client: pg.ClientBase | pg.Pool): Promise<KeyRow[]> {
  const { rows } = await client.query<KeyRow>(`select id, source, key, retired_at from app_private.secret_keys order by created_at, id`);
  return rows;
}

export class SecretBox {
  /** Every master key this process can open with, by id. */
  readonly #keys = new Map<string, Buffer>();
  readonly #envKeys = new Map<string, Buffer>();
  #currentId: string;
  readonly #mode: KeyMode;
  readonly #pool: pg.Pool;
  readonly #log: Logger | undefined;
  #reloading: Promise<void> | undefined;

  private constructor(pool: pg.Pool, mode: KeyMode, currentId: string, envKeys: Map<string, Buffer>, rows: KeyRow[], log: Logger | undefined) {
    this.#pool = pool;
    this.#mode = mode;
    this.#currentId = currentId;
    this.#log = log;
    for (const [id, key] of envKeys) this.#envKeys.set(id, key);
    this.#absorb(rows);
  }

  /**
   * The master keys: `opts.key` (SECRETS_KEY) seals, `opts.previousKeys` open; without `opts.key`, the current
   * generated key of app_private.secret_keys seals (created here on first start: concurrent first starts of
   * several processes insert … on conflict do nothing, then all read the one that won). Generated keys, retired
   * ones included, always open. `ownerPool` is the privileged connection; the box keeps it to reload keys after
   * a rotation, and exposes it to nobody.
   */
  static async load(ownerPool: pg.Pool, opts: SecretBoxOptions = {}): Promise<SecretBox> {
    const { current } = envMasterKeys(opts);
    if (current) {
      // Values name their key by id (a foreign key): record the env key's id — never its material.
      await ownerPool.query(`insert into app_private.secret_keys (id, source) values ($1, 'env') on conflict do nothing`, [keyIdOf(current)]);
    } else {
      const fresh = crypto.randomBytes(KEY_BYTES);
      const inserted = await ownerPool.query(`insert into app_private.secret_keys (id, source, key) values ($1, 'generated', $2) on conflict do nothing`, [keyIdOf(fresh), fresh]);
      if (inserted.rowCount) opts.log?.info({ secretsKeyId: keyIdOf(fresh) }, 'generated the secrets master key (app_private.secret_keys); set SECRETS_KEY to keep it out of the database');
    }
    return SecretBox.fromKeyRows(ownerPool, opts, await readKeyRows(ownerPool));
  }

  /**
   * A box over key rows already read (by load, or by the rotation under its lock). In generated mode the current
   * key is the generated row that is not retired.
   * @internal
   */
  static fromKeyRows(ownerPool: pg.Pool, opts: SecretBoxOptions, rows: KeyRow[]): SecretBox {
    const { current, envKeys } = envMasterKeys(opts);
    let currentId: string;
    if (current) currentId = keyIdOf(current);
    else {
      const row = rows.find((r) => r.source === 'generated' && r.retired_at === null && r.key);
      if (!row) throw new Error('no current secrets key in app_private.secret_keys (a rotation running? try again)');
      currentId = row.id;
    }
    return new SecretBox(ownerPool, current ? 'env' : 'generated', currentId, envKeys, rows, opts.log);
  }

  /** Whether SECRETS_KEY seals ('env') or the generated key of the database does ('generated'). */
  get mode(): KeyMode {
    return this.#mode;
  }

  /** The id of the master key that seals new values. */
  get currentKeyId(): string {
    return this.#currentId;
  }

  /** The ids of every master key this process can open with. */
  get keyIds(): string[] {
    return [...this.#keys.keys()].sort();
  }

  /** Whether a value sealed under this key id opens here (without reloading). */
  hasKey(kid: string): boolean {
    return this.#keys.has(kid);
  }

  /** Seals `plaintext` for `context` under the current master key. */
  seal(plaintext: string, context: string): string {
    checkContext(context);
    if (typeof plaintext !== 'string') throw new TypeError('seal() takes a string');
    const master = this.#keys.get(this.#currentId)!;
    const dek = crypto.randomBytes(KEY_BYTES);
    try {
      const data = gcmSeal(dek, Buffer.from(plaintext, 'utf8'), dataAad(context));
      const wrapped = gcmSeal(master, dek, wrapAad(this.#currentId, context));
      return `${SEALED_PREFIX}${this.#currentId}:${wrapped.toString('base64url')}:${data.toString('base64url')}`;
    } finally {
      dek.fill(0);
    }
  }

  /** The plaintext of a value sealed for `context`; a SecretError when it is malformed, of an unknown key, or refused. */
  open(sealed: string, context: string): string {
    checkContext(context);
    const p = parse(sealed);
    const dek = this.#unwrap(p, context);
    try {
      const plain = gcmOpen(dek, Buffer.from(p.data, 'base64url'), dataAad(context));
      if (!plain) throw refused(context);
      return plain.toString('utf8');
    } finally {
      dek.fill(0);
    }
  }

  /** open(), but a value of a key this process does not know yet (a rotation by another process) reloads the keys once. */
  async openWithReload(sealed: string, context: string): Promise<string> {
    try {
      return this.open(sealed, context);
    } catch (e) {
      if (!(e instanceof SecretError && e.code === 'unknown-key')) throw e;
      await this.reload();
      return this.open(sealed, context);
    }
  }

  /**
   * The same value wrapped under the current master key (or `kid`'s, which must be known): the data key is
   * unwrapped and wrapped again, the value's ciphertext is left as it is. A value already under that key is
   * returned unchanged. The context is authenticated (a value of another row is refused).
   */
  rewrap(sealed: string, context: string, kid = this.#currentId): string {
    checkContext(context);
    const p = parse(sealed);
    if (p.kid === kid) {
      // Still authenticate it: a rotation must not carry a tampered value along silently.
      this.#unwrap(p, context).fill(0);
      return sealed;
    }
    const master = this.#keys.get(kid);
    if (!master) throw new SecretError('unknown-key', `no secrets key with id ${kid} in this process`);
    const dek = this.#unwrap(p, context);
    try {
      const wrapped = gcmSeal(master, dek, wrapAad(kid, context));
      return `${SEALED_PREFIX}${kid}:${wrapped.toString('base64url')}:${p.data}`;
    } finally {
      dek.fill(0);
    }
  }

  /** Reads the generated keys again (after a rotation elsewhere); concurrent calls share one read. */
  reload(): Promise<void> {
    this.#reloading ??= (async () => {
      try {
        this.#absorb(await readKeyRows(this.#pool));
      } finally {
        this.#reloading = undefined;
      }
    })();
    return this.#reloading;
  }

  /**
   * Before sealing something to store: in generated mode, makes sure the key that seals is still the current one
   * (one primary-key read; a rotation by another process switches this one to the new key). In env mode, nothing.
   */
  async ensureCurrent(): Promise<void> {
    if (this.#mode !== 'generated') return;
    const { rows } = await this.#pool.query<{ id: string }>(`select id from app_private.secret_keys where source = 'generated' and retired_at is null`);
    if (rows[0] && rows[0].id !== this.#currentId) await this.reload();
  }

  /** Adopts key rows read from the database: generated material, and (generated mode) the current key. */
  #absorb(rows: KeyRow[]) {
    const keys = new Map(this.#envKeys);
    for (const r of rows) if (r.key && !keys.has(r.id)) keys.set(r.id, Buffer.from(r.key));
    // A key deleted by a rotation stays known to this process (it may still have values in flight under it).
    for (const [id, key] of this.#keys) if (!keys.has(id)) keys.set(id, key);
    this.#keys.clear();
    for (const [id, key] of keys) this.#keys.set(id, key);
    if (this.#mode === 'generated') {
      const current = rows.find((r) => r.source === 'generated' && r.retired_at === null && r.key);
      if (current && current.id !== this.#currentId) {
        if (this.#currentId) this.#log?.info({ secretsKeyId: current.id, previousKeyId: this.#currentId }, 'secrets key rotated: sealing under the new key');
        this.#currentId = current.id;
      }
    }
  }

  #unwrap(p: Parsed, context: string): Buffer {
    const master = this.#keys.get(p.kid);
    if (!master) {
      throw new SecretError(
        'unknown-key',
        `sealed secret for ${context} names secrets key ${p.kid}, which this process does not hold (${this.#mode === 'env' ? 'is it missing from SECRETS_KEY_PREVIOUS?' : 'was it deleted?'})`,
      );
    }
    const dek = gcmOpen(master, p.wrapped, wrapAad(p.kid, context));
    if (!dek || dek.length !== KEY_BYTES) throw refused(context);
    return dek;
  }

  /** What logging or serialising a box shows: no key material. */
  toJSON() {
    return { mode: this.#mode, currentKeyId: this.#currentId, keyIds: this.keyIds };
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `SecretBox ${JSON.stringify(this.toJSON())}`;
  }
}

function refused(context: string) {
  return new SecretError('refused', `sealed secret does not open for ${context}: it belongs to another row, was altered, or its key is wrong`);
}
