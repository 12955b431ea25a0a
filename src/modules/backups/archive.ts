import zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Storage } from '../../storage/s3.ts';
import {
  assertSchemaName,
  copyColumnList,
  createSequenceSql,
  createTableSql,
  dataColumns,
  foreignKeySql,
  postDataSql,
  quoteIdent,
  readSchema,
  sequenceStateSql,
} from './catalog.ts';
import {
  ArchiveCorruptError,
  assertPrefix,
  type Compression,
  fileKey,
  FORMAT_VERSION,
  MANIFEST_KEY,
  parseManifest,
  sealManifest,
  serializeManifest,
  tableKey,
  type FileEntry,
  type Manifest,
  type TableEntry,
} from './manifest.ts';
import { deleteKeys, getStream, HashCounter, LineCounter, listObjects, mapLimit, uploadStream, verifyPart, VerifyingHash } from './objects.ts';

export { ArchiveCorruptError, UnsupportedSchemaError, type Manifest } from './manifest.ts';

/**
 * Backup archives of a site's Postgres schema in S3, without pg_dump (DESIGN §5): write, verify, restore, swap.
 * The format is described in manifest.ts, what the DDL captures in catalog.ts.
 */

export type OnProgress = (pct: number, step: string) => void | Promise<void>;

/** Session settings of every COPY, both ways: the text format is then read back exactly as it was written. */
const COPY_SETTINGS = `set local statement_timeout = 0; set local idle_in_transaction_session_timeout = 0; set local lock_timeout = '60s';
  set local datestyle = 'ISO, YMD'; set local intervalstyle = 'postgres'; set local extra_float_digits = 3; set local bytea_output = 'hex'`;

const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
const S3_CONCURRENCY = 4;

/**
 * Compression of the table parts: zstd level 1 (node:zlib, with zstd's content checksum). On site-like COPY text it
 * stores about what gzip -3 did (2.6–2.7×) for a third of gzip -3's CPU, and decompresses faster; the CPU it saves is
 * what the dump and the embedded S3 compete for (bench/results/backup-throughput.md). gzip stays readable.
 */
export const TABLE_COMPRESSION: { codec: Compression; level: number } = { codec: 'zstd', level: 1 };
/** zlib's output chunk (16 KiB by default): larger chunks mean fewer thread-pool round trips and stream writes. */
const ZLIB_CHUNK = 256 * 1024;

function compressor(c: { codec: Compression; level: number }) {
  if (c.codec === 'gzip') return zlib.createGzip({ level: c.level, chunkSize: ZLIB_CHUNK });
  return zlib.createZstdCompress({
    chunkSize: ZLIB_CHUNK,
    params: { [zlib.constants.ZSTD_c_compressionLevel]: c.level, [zlib.constants.ZSTD_c_checksumFlag]: 1 },
  });
}

function decompressor(codec: Compression) {
  return codec === 'gzip' ? zlib.createGunzip({ chunkSize: ZLIB_CHUNK }) : zlib.createZstdDecompress({ chunkSize: ZLIB_CHUNK });
}

/**
 * Verifies parts (HEAD + re-hash, verifyPart) as they are written, one at a time, while the next part is dumped:
 * the re-reads overlap the dump instead of following it. `done()` waits for all and throws the first failure;
 * `failed` lets the writer stop early; `settle()` waits without throwing (cleanup after an error).
 */
class PartVerifier {
  private readonly pending: Array<Promise<void>> = [];
  private chain: Promise<void> = Promise.resolve();
  failure: { error: unknown } | undefined;
  constructor(
    private readonly storage: Storage,
    private readonly prefix: string,
    private readonly signal?: AbortSignal,
  ) {}
  add(p: { key: string; bytes: number; sha256: string }) {
    const run = this.chain.then(() => (this.failure ? undefined : verifyPartOf(this.storage, this.prefix, p, this.signal)));
    this.chain = run.catch(() => undefined);
    this.pending.push(run.catch((error) => void (this.failure ??= { error })));
  }
  throwIfFailed() {
    if (this.failure) throw this.failure.error;
  }
  async done() {
    await Promise.all(this.pending);
    this.throwIfFailed();
  }
  settle() {
    return Promise.allSettled(this.pending);
  }
}

function progressReporter(onProgress: OnProgress | undefined, signal?: AbortSignal) {
  let last = 0;
  return async (pct: number, step: string) => {
    signal?.throwIfAborted();
    last = Math.max(last, Math.min(100, Math.round(pct)));
    await onProgress?.(last, step);
    signal?.throwIfAborted();
  };
}

export interface WriteArchiveOptions {
  /** A privileged pool (it reads the catalog and COPYs every table of the schema). */
  pool: pg.Pool;
  storage: Storage;
  schema: string;
  /** Where the archive goes, e.g. `tenants/<t>/backups/<backupId>/`; nothing may exist there yet. */
  prefix: string;
  meta: { siteId: string; siteName: string; apps: Array<{ name: string; version: string }> };
  /** The site's files: every object under this prefix is copied into `<prefix>files/`. */
  files?: { prefix: string };
  onProgress?: OnProgress;
  signal?: AbortSignal;
  /** Compression of the table parts: TABLE_COMPRESSION (zstd level 1) by default. */
  compression?: { codec: Compression; level: number };
}

/**
 * Writes an archive of `schema` (and the site's files) under `prefix` and returns its manifest once every part has
 * been verified in S3 (HEAD size and re-hash, each part as soon as it is written, overlapping the next part's dump)
 * and the manifest written and read back. All tables are COPYed in one REPEATABLE READ transaction (one snapshot). On any error or abort, the uploads in flight are aborted and every
 * object under `prefix` is deleted before the error is rethrown: a prefix holds a complete archive or nothing.
 */
export async function writeArchive(opts: WriteArchiveOptions): Promise<Manifest> {
  const { pool, storage, schema, prefix, meta, files, signal } = opts;
  assertPrefix(prefix);
  if (files) {
    assertPrefix(files.prefix, 'files.prefix');
    if (prefix.startsWith(files.prefix) || files.prefix.startsWith(prefix)) throw new Error('the archive prefix and the files prefix must not contain each other');
  }
  signal?.throwIfAborted();
  const existing = await listObjects(storage, prefix, signal);
  if (existing.length) throw new Error(`refusing to write an archive under ${prefix}: ${existing.length} object(s) already there`);

  const report = progressReporter(opts.onProgress, signal);
  const compression = opts.compression ?? TABLE_COMPRESSION;
  const written = new Set<string>();
  const verifier = new PartVerifier(storage, prefix, signal);
  try {
    await report(0, 'reading schema');
    const sources = files ? (await listObjects(storage, files.prefix, signal)).filter((o) => o.key.length > files.prefix.length) : [];
    const odd = sources.find((o) => o.key.slice(files!.prefix.length).split('/').some((seg) => seg === '.' || seg === '..'));
    if (odd) throw new Error(`cannot archive the file ${odd.key}: its key has a "." or ".." segment`);
    const client = await pool.connect();
    let broken = false;
    let pid: number | undefined;
    let total = 1;
    let done = 0;
    let dump: { tables: TableEntry[]; sequences: Manifest['sequences']; omitted: string[]; serverVersion: string };
    try {
      await client.query('begin isolation level repeatable read read only');
      pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      await client.query(COPY_SETTINGS);
      const def = await readSchema(client, schema);
      const serverVersion = (await client.query<{ v: string }>(`select current_setting('server_version') as v`)).rows[0]!.v;
      // Progress 2 → 85 % by bytes: tables by their size on disk, then files by theirs; then verification.
      total = Math.max(1, def.tables.reduce((n, t) => n + t.estimatedBytes, 0) + sources.reduce((n, o) => n + o.size, 0));
      const tables: TableEntry[] = [];
      // Largest first: each part is verified while the next ones are dumped, so what is left to verify at the end
      // is a small part. The manifest keeps the dependency order.
      const largestFirst = [...def.tables].sort((a, b) => b.estimatedBytes - a.estimatedBytes);
      for (const { estimatedBytes, ...t } of largestFirst) {
        verifier.throwIfFailed();
        await report(2 + (done / total) * 83, `table ${t.name}`);
        const key = tableKey(t.name, compression.codec);
        const table = `${quoteIdent(schema)}.${quoteIdent(t.name)}`;
        const cols = dataColumns(t).map(quoteIdent).join(', ');
        // COPY of the table itself (rows in physical order) is PostgreSQL's cheapest path: no query to plan, no
        // index scan as an ORDER BY needs (~20 % less server CPU). A table without data columns needs the query form.
        const copy = client.query(copyTo(`copy ${cols ? `${table} (${cols})` : `(select from only ${table})`} to stdout`));
        const lines = new LineCounter(ZLIB_CHUNK);
        const hashed = new HashCounter();
        written.add(prefix + key);
        try {
          await uploadStream(storage, prefix + key, [copy, lines, compressor(compression), hashed], compression.codec === 'gzip' ? 'application/gzip' : 'application/zstd', signal);
        } catch (e) {
          broken = true; // the connection may be in the middle of a COPY: it is discarded, not reused
          throw e;
        }
        const entry = { ...t, rowCount: lines.lines, bytes: hashed.bytes, rawBytes: lines.bytes, sha256: hashed.digest(), key };
        tables.push(entry);
        verifier.add(entry);
        done += estimatedBytes;
      }
      await client.query('commit');
      const position = new Map(def.tables.map((t, i) => [t.name, i]));
      tables.sort((a, b) => position.get(a.name)! - position.get(b.name)!);
      dump = { tables, sequences: def.sequences, omitted: def.omitted, serverVersion };
    } catch (e) {
      if (!broken) await client.query('rollback').catch(() => (broken = true));
      throw e;
    } finally {
      client.release(broken);
      // A backend interrupted mid-COPY TO would block writing to a socket nobody reads, holding its snapshot and
      // locks. pg's end() destroys the socket of a client with an active query; terminating the backend makes sure.
      if (broken && pid) await pool.query('select pg_terminate_backend($1)', [pid]).catch(() => undefined);
    }

    const fileEntries: FileEntry[] = [];
    for (const src of sources) {
      verifier.throwIfFailed();
      await report(2 + (done / total) * 83, `file ${src.key.slice(files!.prefix.length)}`);
      const key = fileKey(src.key.slice(files!.prefix.length));
      const hashed = new HashCounter();
      written.add(prefix + key);
      await uploadStream(storage, prefix + key, [await getStream(storage, src.key, signal), hashed], 'application/octet-stream', signal);
      if (hashed.bytes !== src.size) throw new Error(`file ${src.key} changed while it was copied (${hashed.bytes} bytes read, ${src.size} listed)`);
      const entry = { key, bytes: hashed.bytes, sha256: hashed.digest() };
      fileEntries.push(entry);
      verifier.add(entry);
      done += src.size;
    }

    // Every part has been queued for verification as it was written; what is left is awaited here.
    await report(85, 'verifying');
    const parts = [...dump.tables, ...fileEntries];
    await verifier.done();

    await report(98, 'writing manifest');
    const manifest = sealManifest({
      formatVersion: FORMAT_VERSION,
      createdAt: new Date().toISOString(),
      site: { id: meta.siteId, name: meta.siteName },
      apps: meta.apps.map((a) => ({ name: a.name, version: a.version })),
      schema,
      serverVersion: dump.serverVersion,
      copy: { format: 'text', encoding: 'UTF8', compression: compression.codec },
      tables: dump.tables,
      sequences: dump.sequences,
      omitted: dump.omitted,
      files: fileEntries,
      totalBytes: parts.reduce((n, p) => n + p.bytes, 0),
    });
    const body = serializeManifest(manifest);
    parseManifest(body); // what verifyArchive would refuse is never written
    signal?.throwIfAborted();
    written.add(prefix + MANIFEST_KEY);
    // Not cut by the signal: a PUT cancelled on our side might still land after the cleanup. Abort is checked after.
    await storage.client.send(new PutObjectCommand({ Bucket: storage.bucket, Key: prefix + MANIFEST_KEY, Body: body, ContentType: 'application/json' }));
    const back = await storage.read(prefix + MANIFEST_KEY, MAX_MANIFEST_BYTES);
    if (!back.equals(body)) throw new ArchiveCorruptError(MANIFEST_KEY, 'reads back different from what was written');
    signal?.throwIfAborted();
    await report(100, 'done');
    return manifest;
  } catch (e) {
    // Verifications still reading are left to finish (they only read), then everything under the prefix goes: what
    // we know we wrote and what a listing finds (a part completed as we aborted).
    await verifier.settle();
    try {
      const listed = await listObjects(storage, prefix);
      await deleteKeys(storage, [...written, ...listed.map((o) => o.key)]);
    } catch (cleanup) {
      if (e instanceof Error) e.message += ` (and cleaning up ${prefix} failed: ${(cleanup as Error).message})`;
    }
    // An abort surfaces as whatever the stream it cut reported first (ECONNRESET…): report the abort itself.
    throw signal?.aborted ? signal.reason : e;
  }
}

const verifyPartOf = (storage: Storage, prefix: string, p: { key: string; bytes: number; sha256: string }, signal?: AbortSignal) =>
  verifyPart(storage, prefix, p.key, p, signal);

/** Reads and validates the manifest, then HEADs and re-hashes every part. ArchiveCorruptError names the first bad part. */
export async function verifyArchive(opts: { storage: Storage; prefix: string; signal?: AbortSignal }): Promise<Manifest> {
  const { storage, prefix, signal } = opts;
  assertPrefix(prefix);
  const size = await storage.size(prefix + MANIFEST_KEY);
  if (size === null) throw new ArchiveCorruptError(MANIFEST_KEY, 'missing: the archive is incomplete or does not exist');
  if (size > MAX_MANIFEST_BYTES) throw new ArchiveCorruptError(MANIFEST_KEY, `larger than ${MAX_MANIFEST_BYTES} bytes`);
  const manifest = parseManifest(await storage.read(prefix + MANIFEST_KEY, MAX_MANIFEST_BYTES));
  try {
    await mapLimit([...manifest.tables, ...manifest.files], S3_CONCURRENCY, (p) => verifyPartOf(storage, prefix, p, signal));
  } catch (e) {
    throw signal?.aborted ? signal.reason : e;
  }
  return manifest;
}

export interface RestoreArchiveOptions {
  pool: pg.Pool;
  storage: Storage;
  prefix: string;
  /** A schema that must not exist yet; it appears only if the whole restore commits. */
  targetSchema: string;
  /** Role that will own the schema and everything in it; the DDL and COPYs then run as that role. */
  owner?: string;
  onProgress?: OnProgress;
  signal?: AbortSignal;
}

export interface RestoreResult {
  manifest: Manifest;
  tables: Array<{ name: string; rowCount: number }>;
  /** The archive's file parts (keys relative to the archive prefix), for restoreFiles or the caller to copy back. */
  files: FileEntry[];
}

/**
 * Verifies the whole archive first, then in one transaction creates `targetSchema`, its sequences and tables, loads
 * every table with COPY FROM STDIN (re-hashing each part while it streams), checks the row counts, adds constraints,
 * indexes and foreign keys, and sets the sequences. Any failure rolls everything back: the schema never appears.
 */
export async function restoreArchive(opts: RestoreArchiveOptions): Promise<RestoreResult> {
  const { pool, storage, prefix, targetSchema, owner, signal } = opts;
  const target = assertSchemaName(targetSchema);
  const report = progressReporter(opts.onProgress, signal);
  await report(0, 'verifying');
  const manifest = await verifyArchive({ storage, prefix, signal });
  await report(30, 'restoring');

  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('begin');
    await client.query(COPY_SETTINGS);
    const exists = await client.query(`select 1 from pg_namespace where nspname = $1`, [targetSchema]);
    if (exists.rowCount) throw new Error(`schema ${targetSchema} already exists: a restore needs a fresh schema`);
    await client.query(`create schema ${target}${owner ? ` authorization ${quoteIdent(owner)}` : ''}`);
    // As the owner, the archive's DDL cannot do more than that role could; without one, the manifest is trusted.
    if (owner) await client.query(`select set_config('role', $1, true)`, [owner]);
    await client.query(`select set_config('search_path', $1, true)`, [target]);
    for (const s of manifest.sequences) await client.query(createSequenceSql(s));
    for (const t of manifest.tables) await client.query(createTableSql(t));

    const total = Math.max(1, manifest.tables.reduce((n, t) => n + t.bytes, 0));
    let done = 0;
    const tables: RestoreResult['tables'] = [];
    for (const t of manifest.tables) {
      await report(30 + (done / total) * 60, `table ${t.name}`);
      const check = new VerifyingHash(t.key, t);
      const decompress = decompressor(manifest.copy.compression);
      let decompressError: Error | undefined;
      decompress.once('error', (e) => (decompressError = e));
      // FREEZE: the table was created in this transaction, so its rows can be written frozen and its pages
      // all-visible; the restored site's first reads and vacuums then have no hint bits to set, nothing to freeze.
      const copy = client.query(copyFrom(`copy ${quoteIdent(t.name)}${copyColumnList(t)} from stdin with (freeze)`));
      try {
        await pipeline(await getStream(storage, prefix + t.key, signal), check, decompress, copy, { signal });
      } catch (e) {
        if (e instanceof ArchiveCorruptError) throw e;
        signal?.throwIfAborted();
        if (decompressError) throw new ArchiveCorruptError(t.key, `not a valid ${manifest.copy.compression} stream (${decompressError.message})`);
        // COPY may refuse garbage before the end of a part that changed since it was verified: if the part no
        // longer verifies, that is the error to report.
        await verifyPart(storage, prefix, t.key, t).catch((v) => {
          if (v instanceof ArchiveCorruptError) throw v;
        });
        throw new Error(`restoring table ${t.name}: ${(e as Error).message}`, { cause: e });
      }
      if (copy.rowCount !== t.rowCount) throw new ArchiveCorruptError(t.key, `${copy.rowCount} rows loaded, the manifest says ${t.rowCount}`);
      tables.push({ name: t.name, rowCount: copy.rowCount });
      done += t.bytes;
    }
    await report(90, 'constraints and indexes');
    for (const t of manifest.tables) for (const sql of postDataSql(t)) await client.query(sql);
    for (const t of manifest.tables) for (const sql of foreignKeySql(t)) await client.query(sql);
    for (const sql of sequenceStateSql(manifest.tables, manifest.sequences)) await client.query(sql);
    signal?.throwIfAborted();
    await client.query('commit');
    // Committed: from here on nothing may report a failure (a throwing listener or a late abort is ignored).
    await Promise.resolve()
      .then(() => opts.onProgress?.(100, 'done'))
      .catch(() => undefined);
    return { manifest, tables, files: manifest.files };
  } catch (e) {
    await client.query('rollback').catch(() => (broken = true));
    throw signal?.aborted ? signal.reason : e;
  } finally {
    client.release(broken);
  }
}

/**
 * Copies the archive's files to `<toPrefix><path under files/>`, re-hashing each as it streams (a mismatch deletes
 * the copy and throws ArchiveCorruptError). With `exact`, objects under toPrefix that the archive lacks are deleted.
 */
export async function restoreFiles(opts: { storage: Storage; prefix: string; toPrefix: string; manifest?: Manifest; exact?: boolean; signal?: AbortSignal }) {
  const { storage, prefix, toPrefix, signal } = opts;
  assertPrefix(toPrefix, 'toPrefix');
  const manifest = opts.manifest ?? (await verifyArchive({ storage, prefix, signal }));
  const restored: string[] = [];
  await mapLimit(manifest.files, S3_CONCURRENCY, async (f) => {
    const to = toPrefix + f.key.slice('files/'.length);
    const hashed = new HashCounter();
    await uploadStream(storage, to, [await getStream(storage, prefix + f.key, signal), hashed], 'application/octet-stream', signal);
    if (hashed.bytes !== f.bytes || hashed.digest() !== f.sha256) {
      await deleteKeys(storage, [to]);
      throw new ArchiveCorruptError(f.key, 'sha256 or size mismatch while copying it back');
    }
    restored.push(to);
  });
  if (opts.exact) {
    const keep = new Set(restored);
    await deleteKeys(storage, (await listObjects(storage, toPrefix, signal)).map((o) => o.key).filter((k) => !keep.has(k)));
  }
  return restored.sort();
}

/**
 * Puts `incoming` in place of `live` in one transaction: live → `<live>_old_<ts>`, incoming → live. Returns the old
 * schema's name (null when there was no live schema, or when `dropOld` dropped it in the same transaction). Objects
 * keep their OIDs, so defaults, sequences and foreign keys of the incoming schema keep working under the new name.
 * When the client is already in a transaction (e.g. to record the swap in the same commit) the swap joins it;
 * otherwise it runs in a transaction of its own.
 */
export async function swapSchemas(opts: { client: pg.ClientBase; live: string; incoming: string; dropOld?: boolean; now?: Date }): Promise<{ old: string | null }> {
  const { client, live, incoming, dropOld = false } = opts;
  const liveId = assertSchemaName(live);
  const incomingId = assertSchemaName(incoming);
  const old = `${live}_old_${(opts.now ?? new Date()).getTime()}`;
  const oldId = assertSchemaName(old);
  const status = (client as pg.Client).getTransactionStatus?.();
  if (status === 'E') throw new Error('swapSchemas: the transaction of this client has failed');
  const own = status !== 'T';
  if (own) await client.query('begin');
  try {
    const r = await client.query<{ nspname: string }>(`select nspname from pg_namespace where nspname = any($1)`, [[live, incoming]]);
    const names = new Set(r.rows.map((x) => x.nspname));
    if (!names.has(incoming)) throw new Error(`schema ${incoming} does not exist`);
    const hadLive = names.has(live);
    if (hadLive) await client.query(`alter schema ${liveId} rename to ${oldId}`);
    await client.query(`alter schema ${incomingId} rename to ${liveId}`);
    if (hadLive && dropOld) await client.query(`drop schema ${oldId} cascade`);
    if (own) await client.query('commit');
    return { old: hadLive && !dropOld ? old : null };
  } catch (e) {
    if (own) await client.query('rollback').catch(() => undefined);
    throw e;
  }
}
