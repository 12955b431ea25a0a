import crypto from 'node:crypto';
import { z } from 'zod';

/**
 * The manifest of a backup archive (`<prefix>manifest.json`), its validation, and the errors the archive code throws.
 *
 * Layout of an archive under `prefix` (keys in the manifest are relative to the prefix, so an archive can be moved):
 *   tables/<table>.copy.zst  one compressed `COPY … TO STDOUT` (text format, UTF8) per table: zstd (`.copy.zst`,
 *                            with its content checksum), or gzip (`.copy.gz`) — the manifest's `copy.compression`
 *   files/<relative key>     the site's files, byte for byte
 *   manifest.json            written last, after every other part has been verified in S3
 *
 * Format versions: 1 had gzip table parts only and no `copy.compression`; 2 (this one) names the compression. A
 * version-1 archive is refused (nothing was ever released with it).
 */

export const MANIFEST_KEY = 'manifest.json';
export const FORMAT_VERSION = 2;

export const COMPRESSIONS = ['zstd', 'gzip'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

const name = z.string().min(1).max(63).refine((s) => !s.includes('\0'), 'NUL in a name');
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const int8 = z.string().regex(/^-?[0-9]{1,19}$/);
const size = z.number().int().nonnegative();
/** A part's key relative to the archive prefix: under tables/ or files/, never escaping the prefix. */
const partKey = (dir: 'tables/' | 'files/') =>
  z
    .string()
    .min(dir.length + 1)
    .max(1024)
    .refine((k) => k.startsWith(dir) && !k.split('/').some((s) => s === '..' || s === '.'), `a key under ${dir}`);

const sequenceOptions = {
  start: int8,
  increment: int8,
  min: int8,
  max: int8,
  cache: int8,
  cycle: z.boolean(),
  /** Sequence state at backup time (read outside the snapshot: sequences are not transactional, so it is ≥ it). */
  lastValue: int8,
  isCalled: z.boolean(),
};

export const columnSchema = z.object({
  name,
  /** format_type() as read with search_path = the site schema: types of other schemas are qualified. */
  type: z.string().min(1),
  notNull: z.boolean(),
  /** Default expression, or the generation expression when `generated` is set (pg_get_expr). */
  default: z.string().nullable(),
  generated: z.enum(['stored', 'virtual']).nullable(),
  identity: z.object({ kind: z.enum(['always', 'by default']), sequence: name, ...sequenceOptions }).nullable(),
  collation: z.string().nullable(),
});

export const constraintSchema = z.object({
  name,
  kind: z.enum(['primary key', 'unique', 'exclusion', 'check', 'foreign key']),
  /** pg_get_constraintdef(): references to the site schema's own tables are unqualified. */
  definition: z.string().min(1),
});

export const tableSchema = z.object({
  name,
  unlogged: z.boolean(),
  columns: z.array(columnSchema),
  primaryKey: z.array(name),
  constraints: z.array(constraintSchema),
  /** Indexes that no constraint owns (pg_get_indexdef, table name unqualified). */
  indexes: z.array(z.object({ name, definition: z.string().min(1) })),
  rowCount: size,
  /** Compressed size as stored, and the size of the COPY text before compression. */
  bytes: size,
  rawBytes: size,
  sha256,
  key: partKey('tables/'),
});

export const sequenceSchema = z.object({
  name,
  type: z.enum(['smallint', 'integer', 'bigint']),
  ...sequenceOptions,
  ownedBy: z.object({ table: name, column: name }).nullable(),
});

export const fileSchema = z.object({ key: partKey('files/'), bytes: size, sha256 });

export const manifestSchema = z.object({
  formatVersion: z.literal(FORMAT_VERSION),
  createdAt: z.iso.datetime(),
  site: z.object({ id: z.string().min(1), name: z.string() }),
  apps: z.array(z.object({ name: z.string(), version: z.string() })),
  schema: name,
  serverVersion: z.string(),
  copy: z.object({ format: z.literal('text'), encoding: z.literal('UTF8'), compression: z.enum(COMPRESSIONS) }),
  /** In dependency order: a table comes after the tables its foreign keys reference (cycles: by name). */
  tables: z.array(tableSchema),
  /** Sequences that are not identity sequences (serial columns, free-standing sequences). */
  sequences: z.array(sequenceSchema),
  /** Objects of the schema the archive does not reproduce (views, functions, triggers, policies, grants…). */
  omitted: z.array(z.string()),
  files: z.array(fileSchema),
  /** Sum of the parts' sizes (tables and files), manifest excluded. */
  totalBytes: size,
  /**
   * sha256 of the compact JSON of every other field, in this order: a flipped byte in the manifest is detected too,
   * and since those fields hold every part's sha256 it identifies the whole archive.
   */
  checksum: sha256,
});

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestBody = Omit<Manifest, 'checksum'>;
export type TableEntry = z.infer<typeof tableSchema>;
export type ColumnEntry = z.infer<typeof columnSchema>;
export type SequenceEntry = z.infer<typeof sequenceSchema>;
export type FileEntry = z.infer<typeof fileSchema>;
/** What the catalog says about a table, before its data is dumped. */
export type TableDefinition = Omit<TableEntry, 'rowCount' | 'bytes' | 'rawBytes' | 'sha256' | 'key'>;

/** A part of an archive is missing, has another size or another sha256 than its manifest says, or cannot be read. */
export class ArchiveCorruptError extends Error {
  override name = 'ArchiveCorruptError';
  constructor(
    /** The part's key relative to the archive prefix (`manifest.json`, `tables/x.copy.zst`, `files/…`). */
    readonly part: string,
    readonly reason: string,
  ) {
    super(`backup archive part ${part} is corrupt: ${reason}`);
  }
}

/** The schema holds something the archive format cannot reproduce faithfully, so no backup is written. */
export class UnsupportedSchemaError extends Error {
  override name = 'UnsupportedSchemaError';
}

export function tableKey(table: string, compression: Compression) {
  return `tables/${encodeURIComponent(table)}.copy.${compression === 'zstd' ? 'zst' : 'gz'}`;
}

export function fileKey(relative: string) {
  return `files/${relative}`;
}

export function assertPrefix(prefix: string, what = 'prefix') {
  if (!prefix || !prefix.endsWith('/') || prefix.startsWith('/') || prefix.split('/').slice(0, -1).some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`${what} must be a non-empty S3 key prefix ending with "/" without empty, "." or ".." segments: ${JSON.stringify(prefix)}`);
  }
}

const checksumOf = (body: ManifestBody) => crypto.createHash('sha256').update(JSON.stringify(body)).digest('hex');

export function sealManifest(body: ManifestBody): Manifest {
  return { ...body, checksum: checksumOf(body) };
}

export function serializeManifest(manifest: Manifest) {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
}

/** Parses and validates manifest bytes; any problem is an ArchiveCorruptError naming manifest.json. */
export function parseManifest(bytes: Buffer): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new ArchiveCorruptError(MANIFEST_KEY, `not valid JSON (${(e as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ArchiveCorruptError(MANIFEST_KEY, 'not a JSON object');
  const { checksum, ...body } = raw as Record<string, unknown>;
  if (typeof checksum !== 'string') throw new ArchiveCorruptError(MANIFEST_KEY, 'no checksum');
  if (checksumOf(body as ManifestBody) !== checksum) throw new ArchiveCorruptError(MANIFEST_KEY, 'its content does not match its checksum');
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ArchiveCorruptError(MANIFEST_KEY, `invalid at ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const m = parsed.data;
  const keys = [...m.tables.map((t) => t.key), ...m.files.map((f) => f.key)];
  if (new Set(keys).size !== keys.length) throw new ArchiveCorruptError(MANIFEST_KEY, 'two parts share a key');
  const total = [...m.tables, ...m.files].reduce((n, p) => n + p.bytes, 0);
  if (total !== m.totalBytes) throw new ArchiveCorruptError(MANIFEST_KEY, `totalBytes ${m.totalBytes} is not the sum of its parts (${total})`);
  return m;
}
