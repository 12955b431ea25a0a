import crypto from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { PART_SIZE, type Storage } from '../../storage/s3.ts';
import { ArchiveCorruptError } from './manifest.ts';

/** S3 plumbing of the backup archive: streaming uploads with a running sha256, listing, deleting, verifying parts. */

/** Passes bytes through, counting them and hashing them (sha256). */
export class HashCounter extends Transform {
  private readonly hash = crypto.createHash('sha256');
  bytes = 0;
  private hex?: string;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
  digest() {
    this.hex ??= this.hash.digest('hex');
    return this.hex;
  }
}

/**
 * A HashCounter that fails the stream at its end when the bytes are not the expected ones: what follows it in a
 * pipeline (gunzip, COPY FROM) never sees the end of input, so nothing is committed from a part that does not match.
 */
export class VerifyingHash extends HashCounter {
  constructor(
    private readonly part: string,
    private readonly expected: { bytes: number; sha256: string },
  ) {
    super();
  }
  override _transform(chunk: Buffer, enc: BufferEncoding, cb: TransformCallback) {
    if (this.bytes + chunk.length > this.expected.bytes) return cb(new ArchiveCorruptError(this.part, `longer than the ${this.expected.bytes} bytes of the manifest`));
    super._transform(chunk, enc, cb);
  }
  override _flush(cb: TransformCallback) {
    if (this.bytes !== this.expected.bytes) return cb(new ArchiveCorruptError(this.part, `${this.bytes} bytes, the manifest says ${this.expected.bytes}`));
    if (this.digest() !== this.expected.sha256) return cb(new ArchiveCorruptError(this.part, 'sha256 mismatch while reading'));
    cb();
  }
}

/**
 * Counts bytes and newlines: in COPY's text format every row ends with one newline and embedded ones are escaped.
 * With `batchBytes`, it also passes the bytes on in chunks of at least that size (the last one excepted): COPY
 * arrives in socket-sized chunks (~10 KiB), and each write to a zlib stream is a round trip to its thread pool.
 */
export class LineCounter extends Transform {
  bytes = 0;
  lines = 0;
  private held: Buffer[] = [];
  private heldBytes = 0;
  constructor(private readonly batchBytes = 0) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
    this.bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.lines++;
    if (!this.batchBytes) return cb(null, chunk);
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes >= this.batchBytes) this.release();
    cb();
  }
  override _flush(cb: TransformCallback) {
    if (this.heldBytes) this.release();
    cb();
  }
  private release() {
    this.push(this.held.length === 1 ? this.held[0] : Buffer.concat(this.held, this.heldBytes));
    this.held = [];
    this.heldBytes = 0;
  }
}

/**
 * Streams `streams` (source first, a HashCounter last) into `key` with a multipart upload (8 MiB parts, 2 in flight).
 * On any error or abort every stream is destroyed and this returns only once the upload has settled: lib-storage
 * then has aborted its multipart upload, and no late PUT can land after the caller's cleanup.
 */
export async function uploadStream(storage: Storage, key: string, streams: [Readable, ...Transform[]], contentType: string, signal?: AbortSignal) {
  const last = streams[streams.length - 1]!;
  const upload = new Upload({
    client: storage.client,
    params: { Bucket: storage.bucket, Key: key, Body: last, ContentType: contentType },
    partSize: PART_SIZE,
    queueSize: 2,
  });
  const kill = (e: unknown) => {
    for (const s of streams) if (!s.destroyed) s.destroy(e instanceof Error ? e : new Error(String(e)));
  };
  const onAbort = () => kill(signal!.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const piping = (pipeline as (...s: Array<Readable | Transform>) => Promise<void>)(...streams);
  const uploading = upload.done();
  try {
    signal?.throwIfAborted();
    await Promise.all([
      piping,
      uploading.catch((e) => {
        kill(e);
        throw e;
      }),
    ]);
  } catch (e) {
    kill(e);
    await Promise.allSettled([piping, uploading]);
    throw signal?.aborted ? signal.reason : e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  signal?.throwIfAborted();
}

export async function getStream(storage: Storage, key: string, signal?: AbortSignal): Promise<Readable> {
  const r = await storage.client.send(new GetObjectCommand({ Bucket: storage.bucket, Key: key }), { abortSignal: signal });
  return r.Body as Readable;
}

export async function listObjects(storage: Storage, prefix: string, signal?: AbortSignal) {
  const out: Array<{ key: string; size: number }> = [];
  let token: string | undefined;
  do {
    const r = await storage.client.send(new ListObjectsV2Command({ Bucket: storage.bucket, Prefix: prefix, ContinuationToken: token }), { abortSignal: signal });
    for (const o of r.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0 });
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out;
}

export async function deleteKeys(storage: Storage, keys: Iterable<string>) {
  await mapLimit([...new Set(keys)], 8, (key) => storage.client.send(new DeleteObjectCommand({ Bucket: storage.bucket, Key: key })));
}

/** HEADs the part (size) and re-hashes it by streaming it back; ArchiveCorruptError naming the part otherwise. */
export async function verifyPart(storage: Storage, prefix: string, part: string, expected: { bytes: number; sha256: string }, signal?: AbortSignal) {
  let size: number | null;
  try {
    size = await storage.size(prefix + part);
  } catch (e) {
    throw new ArchiveCorruptError(part, `cannot be read (${(e as Error).message})`);
  }
  if (size === null) throw new ArchiveCorruptError(part, 'missing');
  if (size !== expected.bytes) throw new ArchiveCorruptError(part, `${size} bytes in storage, the manifest says ${expected.bytes}`);
  const check = new VerifyingHash(part, expected);
  await pipeline(await getStream(storage, prefix + part, signal), check, async function* (source) {
    for await (const _ of source) void _;
  }, { signal });
}

/** Runs fn over items with at most `limit` at once; the first failure stops new work and is thrown once all settle. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.error;
  return results;
}
