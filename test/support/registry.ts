import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import bcrypt from 'bcryptjs';
import { freeLocalPort } from '../../src/db/embedded.ts';

/**
 * A real CNCF distribution registry (Debian's `docker-registry`, installed by .ci/run) on a local port, with its own
 * storage directory and basic auth (an htpasswd of one bcrypt user): what a cluster's local registry is in tests.
 */
export interface TestRegistry {
  url: string;
  username: string;
  password: string;
  /** The filesystem driver's root: tests reach into it to alter a stored blob. */
  storageDir: string;
  stop(): Promise<void>;
}

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

export async function startRegistry(): Promise<TestRegistry> {
  if (!fs.existsSync(REGISTRY_BINARY)) throw new Error(`${REGISTRY_BINARY} is missing: apt-get install docker-registry (.ci/run does)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-registry-'));
  const port = await freeLocalPort();
  const username = 'tenantplane';
  const password = crypto.randomBytes(12).toString('base64url');
  fs.writeFileSync(path.join(dir, 'htpasswd'), `${username}:${bcrypt.hashSync(password, 8)}\n`);
  const storageDir = path.join(dir, 'storage');
  fs.writeFileSync(
    path.join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storageDir}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      `  secret: ${crypto.randomBytes(16).toString('hex')}`,
      'auth:',
      '  htpasswd:',
      '    realm: tenantplane-test',
      `    path: ${path.join(dir, 'htpasswd')}`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(REGISTRY_BINARY, ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr = (stderr + String(c)).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    const status = await fetch(`${url}/v2/`).then((r) => r.status, () => 0);
    if (status === 401) break;
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${url}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    username,
    password,
    storageDir,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
