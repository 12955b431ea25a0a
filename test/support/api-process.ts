import fs from 'node:fs';
import { startCli } from './cli.ts';
import type { TestApp } from './app.ts';

/**
 * The real API (`src/main.ts serve`) as a child process on a given database and S3 bucket, for fault tests: a crash
 * shows as the process exiting, with its output kept to say why.
 */
export async function startApiProcess(env: { DATABASE_URL: string; S3_ENDPOINT: string; S3_BUCKET: string } & Record<string, string>) {
  const cli = await startCli({
    S3_ACCESS_KEY_ID: process.env.S3_ACCESS_KEY_ID ?? 'S3RVER',
    S3_SECRET_ACCESS_KEY: process.env.S3_SECRET_ACCESS_KEY ?? 'S3RVER',
    DATABASE_POOL_SIZE: '10',
    ARGON2_MEMORY_KIB: '4096',
    ARGON2_TIME_COST: '1',
    JOBS_SUPERVISE_SECONDS: '2',
    // info: the "listening on" line is how startCli learns the URL.
    LOG_LEVEL: 'info',
    ...env,
  });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void cli.exited.then((e) => (exit = e));
  return {
    ...cli,
    /** Enough of a TestApp for the GraphQL client of test/support/client.ts. */
    app: { url: cli.url } as TestApp,
    /** How the process ended, or undefined while it runs. */
    exit: () => exit,
    async stop() {
      if (!exit) cli.child.kill('SIGTERM');
      const ended = await cli.exited;
      fs.rmSync(cli.dataDir, { recursive: true, force: true });
      return ended;
    },
  };
}

export type ApiProcess = Awaited<ReturnType<typeof startApiProcess>>;
