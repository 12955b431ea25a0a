/**
 * Tenant scaling: documents-list p50 with 10, 1,000 and 10,000 tenants (BENCH_SCALING), the same documents and
 * members per tenant. One scratch database grown in place (tenants 11–1,000 added to the 10, then 1,001–10,000),
 * vacuum analyze after each step; at each size the API at c = first of BENCH_CONCURRENCY, and the list transaction
 * alone through pgbench at c = 1 (the database's own latency). Target: p50 flat within 20 %.
 */
import { autocannon, CONCURRENCY, DURATION, exitCleanly, pgbench, WARMUP, type CannonResult, type PgbenchResult } from './common.ts';
import { captureStatements, LIST_BODY, startBenchApp, toPgbenchScript } from './app.ts';
import { createBenchDatabase, type BenchDatabase } from './db.ts';
import { seed, seedOptionsFromEnv } from './seed.ts';

export const SCALING = (process.env.BENCH_SCALING ?? '10,1000,10000').split(',').map(Number).sort((a, b) => a - b);

export interface ScalingResult {
  rows: Array<{ tenants: number; documents: number; api: CannonResult; sql: PgbenchResult }>;
  spread: number;
}

export async function tenantScaling(server: BenchDatabase, log = console.log): Promise<ScalingResult> {
  const opts = seedOptionsFromEnv();
  const scratch = await server.another('_scaling');
  const rows: ScalingResult['rows'] = [];
  const c = CONCURRENCY[0]!;
  try {
    let seeded = 0;
    for (const tenants of SCALING) {
      await seed(scratch.url, { ...opts, tenants }, log, seeded + 1);
      seeded = tenants;
      const b = await startBenchApp(scratch.url);
      try {
        const headers = { 'content-type': 'application/json', authorization: `Bearer ${b.token}` };
        await autocannon(b.app.url, { connections: c, seconds: WARMUP, headers, body: LIST_BODY });
        const api = await autocannon(b.app.url, { connections: c, seconds: DURATION, headers, body: LIST_BODY });
        const { script, vars } = toPgbenchScript(await captureStatements(b));
        const sql = await pgbench(scratch.url, script, vars, 1, Math.min(DURATION, 10));
        rows.push({ tenants, documents: tenants * opts.docsPerTenant, api, sql });
        log(
          `tenant-scaling ${tenants} tenants (${tenants * opts.docsPerTenant} documents): API c=${c} p50 ${api.p50} ms p99 ${api.p99} ms ${api.rps.toFixed(0)} req/s errors ${api.errors}` +
            ` | list transaction alone (pgbench c=1) ${sql.latencyMs} ms`,
        );
      } finally {
        await b.stop();
      }
    }
  } finally {
    await scratch.stop();
  }
  const p50s = rows.map((r) => r.api.p50);
  const spread = Math.max(...p50s) / Math.min(...p50s) - 1;
  log(`tenant-scaling: p50 spread ${(100 * spread).toFixed(1)} % between ${SCALING.join(' / ')} tenants (target ≤ 20 %)`);
  return { rows, spread };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const server = await createBenchDatabase();
  try {
    await tenantScaling(server);
  } finally {
    await server.stop();
  }
  exitCleanly(0);
}
