/**
 * Tenant scaling: documents-list p50 with 10, 1,000 and 10,000 tenants (BENCH_SCALING), the same documents and
 * members per tenant. One database per size, each a copy of the previous one grown in place (tenants 11–1,000
 * added to a copy of the 10, then 1,001–10,000 to a copy of the 1,000), vacuum analyze after each. The API (one app
 * per database, in this process, all warmed up first) is then measured in BENCH_SCALING_ROUNDS (3) rounds that
 * alternate the order of the sizes (small → large, then large → small, …), so that drift on a shared machine does
 * not land on one size; per size the median p50 of its rounds at c = first of BENCH_CONCURRENCY, and the list
 * transaction alone through pgbench at c = 1 (the database's own latency), also per round. Target: p50 flat within
 * 20 %.
 */
import { autocannon, CONCURRENCY, DURATION, exitCleanly, median, pgbench, WARMUP, type CannonResult, type PgbenchResult } from './common.ts';
import { captureStatements, LIST_BODY, startBenchApp, toPgbenchScript, type BenchApp } from './app.ts';
import { createBenchDatabase, type BenchDatabase } from './db.ts';
import { seed, seedOptionsFromEnv } from './seed.ts';

export const SCALING = (process.env.BENCH_SCALING ?? '10,1000,10000').split(',').map(Number).sort((a, b) => a - b);

export interface ScalingResult {
  rows: Array<{ tenants: number; documents: number; api: CannonResult[]; sql: PgbenchResult[]; p50: number; sqlMs: number }>;
  spread: number;
}

export async function tenantScaling(server: BenchDatabase, log = console.log): Promise<ScalingResult> {
  const opts = seedOptionsFromEnv();
  const rounds = Number(process.env.BENCH_SCALING_ROUNDS ?? 3);
  const c = CONCURRENCY[0]!;
  const dbs: BenchDatabase[] = [];
  const apps: BenchApp[] = [];
  try {
    let seeded = 0;
    for (const tenants of SCALING) {
      const db = await server.another(`_scaling_${tenants}`, dbs.at(-1));
      dbs.push(db);
      await seed(db.url, { ...opts, tenants }, log, seeded + 1);
      seeded = tenants;
    }
    const sizes = [];
    for (const [i, tenants] of SCALING.entries()) {
      const b = await startBenchApp(dbs[i]!.url);
      apps.push(b);
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${b.token}` };
      await autocannon(b.app.url, { connections: c, seconds: WARMUP, headers, body: LIST_BODY });
      sizes.push({ tenants, b, headers, url: dbs[i]!.url, pgScript: toPgbenchScript(await captureStatements(b)), api: [] as CannonResult[], sql: [] as PgbenchResult[] });
    }
    for (let round = 0; round < rounds; round++) {
      for (const s of round % 2 === 0 ? sizes : [...sizes].reverse()) {
        const api = await autocannon(s.b.app.url, { connections: c, seconds: DURATION, headers: s.headers, body: LIST_BODY });
        const sql = await pgbench(s.url, s.pgScript.script, s.pgScript.vars, 1, Math.min(DURATION, 5));
        s.api.push(api);
        s.sql.push(sql);
        log(
          `tenant-scaling round ${round + 1}, ${s.tenants} tenants (${s.tenants * opts.docsPerTenant} documents): API c=${c} p50 ${api.p50} ms p99 ${api.p99} ms ${api.rps.toFixed(0)} req/s errors ${api.errors}` +
            ` | list transaction alone (pgbench c=1) ${sql.latencyMs} ms`,
        );
      }
    }
    const rows: ScalingResult['rows'] = sizes.map((s) => ({
      tenants: s.tenants,
      documents: s.tenants * opts.docsPerTenant,
      api: s.api,
      sql: s.sql,
      p50: median(s.api.map((a) => a.p50)),
      sqlMs: median(s.sql.map((q) => q.latencyMs)),
    }));
    for (const r of rows) log(`tenant-scaling ${r.tenants} tenants: median API p50 ${r.p50} ms, median list transaction alone ${r.sqlMs} ms`);
    const p50s = rows.map((r) => r.p50);
    const spread = Math.max(...p50s) / Math.min(...p50s) - 1;
    const sqlSpread = Math.max(...rows.map((r) => r.sqlMs)) / Math.min(...rows.map((r) => r.sqlMs)) - 1;
    log(
      `tenant-scaling: p50 spread ${(100 * spread).toFixed(1)} % between ${SCALING.join(' / ')} tenants (target ≤ 20 %); list transaction alone: spread ${(100 * sqlSpread).toFixed(1)} %`,
    );
    return { rows, spread };
  } finally {
    for (const b of apps) await b.stop();
    for (const db of dbs.reverse()) await db.stop();
  }
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
