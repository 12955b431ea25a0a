import { spawn, type ChildProcess } from 'node:child_process';
import type { TestApp } from './app.ts';

/**
 * Worker processes (`src/main.ts worker`) against a test app's database and bucket, for crash tests. They run on
 * the pinned Node running the tests (tsx's shebang would pick the machine's node).
 */
export class WorkerProcesses {
  private readonly children: ChildProcess[] = [];

  constructor(private readonly app: TestApp) {}

  start(extraEnv: Record<string, string> = {}) {
    const cfg = this.app.services.config;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'worker'], {
      env: {
        ...process.env,
        DATABASE_URL: this.app.databaseUrl,
        S3_ENDPOINT: cfg.storage.endpoint!,
        S3_ACCESS_KEY_ID: cfg.storage.accessKeyId!,
        S3_SECRET_ACCESS_KEY: cfg.storage.secretAccessKey!,
        S3_BUCKET: cfg.storage.bucket,
        JOBS_SUPERVISE_SECONDS: '2',
        LOG_LEVEL: 'warn',
        ...extraEnv,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    // Kept for diagnostics: a worker that dies on its own says why (test failures print it).
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    Object.defineProperty(child, 'stderrTail', { get: () => stderr });
    this.children.push(child);
    return child;
  }

  /** SIGKILLs every worker still running. */
  killAll() {
    for (const w of this.children) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  }
}

/** Polls until fn returns something truthy, or fails naming what it waited for. */
export async function poll<T>(fn: () => Promise<T | undefined | null | false>, ms: number, what: string): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
