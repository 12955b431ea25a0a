import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  S3Client,
  HeadBucketCommand,
  CreateBucketCommand,
  HeadObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  DeleteObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  ListPartsCommand,
  CompleteMultipartUploadCommand,
  AbortMultipartUploadCommand,
  ListObjectsV2Command,
  ListMultipartUploadsCommand,
  DeleteObjectsCommand,
  GetBucketCorsCommand,
  PutBucketCorsCommand,
  type CORSRule,
  NotFound,
  NoSuchKey,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { markStorageError, unreachable } from '../faults.ts';

export interface StorageConfig {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

/** The id of the bucket CORS rule that lets the console upload (Storage.allowBrowserUploads). */
export const BROWSER_UPLOADS_CORS_RULE = 'tenantplane-browser-uploads';

/** Parts of a multipart upload: S3 needs ≥ 5 MiB per part but the last. */
export const PART_SIZE = 8 * 1024 * 1024;
/** Above this, uploads are multipart (presigned UploadPart URLs), below a single presigned PUT. */
export const MULTIPART_THRESHOLD = 16 * 1024 * 1024;

/**
 * The S3 bucket of this deployment. Every key is built by the server from ids (never from user input) under
 * `tenants/<tenant uuid>/`, so one tenant's URL can never name another tenant's object.
 */
export class Storage {
  readonly client: S3Client;
  readonly bucket: string;
  /** Where presigned URLs point (scheme, host, port): browsers send the bytes there, not through the API. */
  readonly origin: string;

  constructor(config: StorageConfig) {
    this.bucket = config.bucket;
    this.origin = new URL(config.endpoint).origin;
    this.client = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      forcePathStyle: true,
      credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
      // s3rver (and some S3-compatibles) would store the SDK's aws-chunked checksum trailer as content.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
    });
    // Every error of this client, and of the bodies it streams, is marked as object storage's (src/faults.ts): a
    // refused connection then answers "object storage is unreachable", not as if the database were.
    this.client.middlewareStack.add(
      (next) => async (args) => {
        try {
          const out = await next(args);
          const body = (out.output as { Body?: unknown }).Body;
          if (body && typeof (body as Readable).prependListener === 'function') (body as Readable).prependListener('error', markStorageError);
          return out;
        } catch (e) {
          throw markStorageError(e);
        }
      },
      { step: 'initialize', name: 'tenantplaneMarkStorageErrors' },
    );
  }

  static tenantPrefix(tenantId: string) {
    return `tenants/${tenantId}/`;
  }

  static objectKey(tenantId: string, objectId: string) {
    if (!/^[0-9a-f-]{36}$/.test(tenantId) || !/^[0-9a-f-]{36}$/.test(objectId)) throw new Error('object keys are built from uuids only');
    return `${Storage.tenantPrefix(tenantId)}objects/${objectId}`;
  }

  async ensureBucket() {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch {
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  /**
   * Lets browsers PUT to presigned URLs (the console's uploads) and read the ETag of each part: a CORS rule of our own
   * id on the bucket, added beside any rule the operator keeps there (theirs are left as they are). Any origin: the
   * console's is whatever host the API is reached by, and every request still needs a valid signature — the URL the
   * API handed out is the capability, the rule only lets the page read the answer. No cookies are involved.
   */
  async allowBrowserUploads() {
    const rule: CORSRule = {
      ID: BROWSER_UPLOADS_CORS_RULE,
      AllowedOrigins: ['*'],
      AllowedMethods: ['PUT', 'GET', 'HEAD'],
      AllowedHeaders: ['content-type'],
      ExposeHeaders: ['ETag'],
      MaxAgeSeconds: 3600,
    };
    let rules: CORSRule[] = [];
    try {
      rules = (await this.client.send(new GetBucketCorsCommand({ Bucket: this.bucket }))).CORSRules ?? [];
    } catch (e) {
      if (unreachable(e)) throw e; // NoSuchCORSConfiguration: none yet
    }
    const others = rules.filter((r) => r.ID !== BROWSER_UPLOADS_CORS_RULE);
    const ours = rules.find((r) => r.ID === BROWSER_UPLOADS_CORS_RULE);
    if (ours && JSON.stringify(ours) === JSON.stringify(rule)) return;
    await this.client.send(new PutBucketCorsCommand({ Bucket: this.bucket, CORSConfiguration: { CORSRules: [...others, rule] } }));
  }

  async ready() {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  presignPut(key: string, contentType: string, size: number, expiresIn: number) {
    return getSignedUrl(this.client, new PutObjectCommand({ Bucket: this.bucket, Key: key, ContentType: contentType, ContentLength: size }), {
      expiresIn,
      signableHeaders: new Set(['content-type', 'content-length']),
    });
  }

  presignGet(key: string, filename: string, expiresIn: number) {
    const safe = filename.replace(/["\\\r\n]/g, '_');
    return getSignedUrl(
      this.client,
      new GetObjectCommand({ Bucket: this.bucket, Key: key, ResponseContentDisposition: `attachment; filename="${safe}"; filename*=UTF-8''${encodeURIComponent(filename)}` }),
      { expiresIn },
    );
  }

  async startMultipart(key: string, contentType: string) {
    const r = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: contentType }));
    return r.UploadId!;
  }

  presignPart(key: string, uploadId: string, partNumber: number, expiresIn: number) {
    return getSignedUrl(this.client, new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber }), { expiresIn });
  }

  /**
   * Completes a multipart upload with the client's part ETags or, without them, the parts S3 lists (s3rver cannot
   * list parts). False when the parts do not make the expected count or S3 refuses them.
   */
  async completeMultipart(key: string, uploadId: string, expectedParts: number, given?: Array<{ partNumber: number; etag: string }>) {
    let parts = given?.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag }));
    if (!parts) {
      const listed = await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MaxParts: 10000 })).catch(unlessUnreachable);
      if (!listed) return false;
      parts = (listed.Parts ?? []).map((p) => ({ PartNumber: p.PartNumber!, ETag: p.ETag! }));
    }
    parts.sort((a, b) => a.PartNumber - b.PartNumber);
    if (parts.length !== expectedParts || parts.some((p, i) => p.PartNumber !== i + 1)) return false;
    try {
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
      return true;
    } catch (e) {
      return unlessUnreachable(e) ?? false;
    }
  }

  async abortMultipart(key: string, uploadId: string) {
    await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
  }

  /** Size of an object, or null when it does not exist. */
  async size(key: string): Promise<number | null> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return r.ContentLength ?? 0;
    } catch (e) {
      if (e instanceof NotFound || e instanceof NoSuchKey || (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      throw e;
    }
  }

  async stream(key: string): Promise<Readable> {
    const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return r.Body as Readable;
  }

  /** sha256 (hex) of an object, computed from its bytes as stored. */
  async sha256(key: string): Promise<string> {
    const hash = crypto.createHash('sha256');
    for await (const chunk of await this.stream(key)) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }

  async read(key: string, maxBytes: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of await this.stream(key)) {
      total += (chunk as Buffer).length;
      if (total > maxBytes) throw new Error(`object larger than ${maxBytes} bytes`);
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  /** Keys under a prefix (every page). */
  async list(prefix: string): Promise<Array<{ key: string; size: number }>> {
    const out: Array<{ key: string; size: number }> = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  /**
   * Aborts unfinished multipart uploads under a prefix (what a killed worker leaves behind). Returns how many, or
   * null when the endpoint cannot list them (s3rver): then the bucket's lifecycle rule must clean them.
   */
  async abortUploads(prefix: string): Promise<number | null> {
    const listed = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix })).catch(unlessUnreachable);
    if (!listed) return null;
    for (const u of listed.Uploads ?? []) await this.abortMultipart(u.Key!, u.UploadId!);
    return listed.Uploads?.length ?? 0;
  }

  async deletePrefix(prefix: string) {
    if (!/^tenants\/[0-9a-f-]{36}\//.test(prefix)) throw new Error('refusing to delete outside a tenant prefix');
    const keys = (await this.list(prefix)).map((o) => o.key);
    for (let i = 0; i < keys.length; i += 1000) {
      await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) } }));
    }
    return keys.length;
  }

  async putEmpty(key: string) {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: '' }));
  }

  async delete(key: string) {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }
}

/** An S3 refusal (an unsupported call, bad parts) answers null; an unreachable endpoint is no answer: rethrown. */
function unlessUnreachable(e: unknown): null {
  if (unreachable(e)) throw e;
  return null;
}
