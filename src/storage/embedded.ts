import fs from 'node:fs';
import S3rver from 's3rver';
import { StartupError, readableError } from '../shutdown.ts';

export interface EmbeddedS3 {
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * An in-process S3-compatible server (s3rver) for development and tests, data under `dir`. It does not verify
 * signatures, so presigned-URL expiry and tampering can only be proven against a real S3 (see README).
 */
export async function startEmbeddedS3(dir: string, port: number, bucket: string): Promise<EmbeddedS3> {
  fs.mkdirSync(dir, { recursive: true });
  const server = new S3rver({ address: '127.0.0.1', port, directory: dir, silent: true, configureBuckets: [{ name: bucket, configs: [] }] });
  let address: { port: number };
  try {
    address = (await server.run()) as { port: number };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new StartupError(`embedded S3 could not listen: port ${port} is already in use: stop the other program or set EMBEDDED_S3_PORT`);
    }
    throw new StartupError(`embedded S3 could not start in ${dir}: ${readableError(e)}`);
  }
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    stop: () => server.close() as Promise<void>,
  };
}
