/**
 * sha256 of a file, off the main thread (issue 12 §2): the console announces the hash with createUpload (dedup, and
 * the server's check of the stored bytes). Read in slices so that a large file never sits in memory whole; each
 * slice reports progress. @noble/hashes: incremental, audited, and pure JavaScript (no 'wasm-unsafe-eval' in the CSP).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

export type HashRequest = { id: number; file: Blob };
export type HashReply = { id: number; progress: number } | { id: number; sha256: string } | { id: number; error: string };

const SLICE = 4 * 1024 * 1024;

self.onmessage = async (e: MessageEvent<HashRequest>) => {
  const { id, file } = e.data;
  const post = (m: HashReply) => (self as unknown as Worker).postMessage(m);
  try {
    const hash = sha256.create();
    for (let offset = 0; offset < file.size; offset += SLICE) {
      hash.update(new Uint8Array(await file.slice(offset, offset + SLICE).arrayBuffer()));
      post({ id, progress: Math.min(1, (offset + SLICE) / file.size) });
    }
    post({ id, sha256: bytesToHex(hash.digest()) });
  } catch (err) {
    post({ id, error: err instanceof Error ? err.message : String(err) });
  }
};
