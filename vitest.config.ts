import { defineConfig } from 'vitest/config';

export default defineConfig({
  // graphql ships both .mjs and .js; Pothos and Apollo load the CommonJS build, so everything must (one instance).
  resolve: { alias: { graphql: 'graphql/index.js' } },
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Each file runs in its own fork against its own database cloned from the migrated template.
    pool: 'forks',
    fileParallelism: true,
    // Vitest would use one fork on a 2-core machine; the suite mostly waits on PostgreSQL, S3 and job workers.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
