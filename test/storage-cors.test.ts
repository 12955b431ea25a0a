import crypto from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { GetBucketCorsCommand, PutBucketCorsCommand } from '@aws-sdk/client-s3';
import { BROWSER_UPLOADS_CORS_RULE, Storage } from '../src/storage/s3.ts';

/**
 * The bucket's CORS rule that lets the console upload (issue 12 §2), against the run's real S3 endpoint: added beside
 * the operator's own rules, never replacing them, and idempotent across restarts. A browser's preflight for a
 * presigned PUT is then answered.
 */
function newStorage() {
  return new Storage({
    endpoint: inject('s3Endpoint'),
    region: 'us-east-1',
    accessKeyId: process.env.S3_ACCESS_KEY_ID ?? 'S3RVER',
    secretAccessKey: process.env.S3_SECRET_ACCESS_KEY ?? 'S3RVER',
    bucket: `tp-test-${crypto.randomBytes(6).toString('hex')}`,
  });
}

describe('browser uploads: the bucket CORS rule', () => {
  it('is added beside the operator’s rules, once, and answers a presigned PUT’s preflight', async () => {
    const storage = newStorage();
    await storage.ensureBucket();
    // Before: a browser's preflight is refused.
    const preflight = () =>
      fetch(`${storage.origin}/${storage.bucket}/tenants/x/objects/y`, {
        method: 'OPTIONS',
        headers: { origin: 'http://console.example.test', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type' },
      });
    expect((await preflight()).ok).toBe(false);

    const theirs = { ID: 'operator-rule', AllowedOrigins: ['https://cdn.example.test'], AllowedMethods: ['GET'], AllowedHeaders: [], ExposeHeaders: [] };
    await storage.client.send(new PutBucketCorsCommand({ Bucket: storage.bucket, CORSConfiguration: { CORSRules: [theirs] } }));
    await storage.allowBrowserUploads();
    await storage.allowBrowserUploads();
    const rules = (await storage.client.send(new GetBucketCorsCommand({ Bucket: storage.bucket }))).CORSRules ?? [];
    expect(rules.map((r) => r.AllowedOrigins?.[0])).toEqual(['https://cdn.example.test', '*']);
    const ours = rules.find((r) => r.AllowedOrigins?.[0] === '*')!;
    expect(ours.AllowedMethods).toEqual(['PUT', 'GET', 'HEAD']);
    expect(ours.ExposeHeaders).toEqual(['ETag']);
    expect(BROWSER_UPLOADS_CORS_RULE).toBe('tenantplane-browser-uploads');

    const answered = await preflight();
    expect(answered.ok).toBe(true);
    expect(answered.headers.get('access-control-allow-methods')).toContain('PUT');
    expect(answered.headers.get('access-control-allow-headers')).toBe('content-type');
  });
});
