/**
 * One read operation through the API (autocannon) against pgbench running the same transaction — the statements
 * the API sends, captured as the server receives them — as the app role, prepared mode, at each concurrency.
 * The API is measured twice: in this process (one Node process, one core) and as `HTTP_PROCESSES` processes of
 * `src/main.ts serve` (node:cluster), what a deployment on this machine would run.
 */
import { autocannon, CONCURRENCY, DURATION, pct, pgbench, WARMUP, withCpuProfile, type CannonResult, type PgbenchResult } from './common.ts';
import { captureStatements, post, startServerProcesses, toPgbenchScript, type BenchApp, type CapturedStatement } from './app.ts';

export const PROCESSES = Number(process.env.BENCH_PROCESSES ?? 2);

export interface ReadResult {
  name: string;
  statementsPerRequest: number;
  statements: CapturedStatement[];
  rows: Array<{ c: number; api: CannonResult; cluster?: CannonResult; pgbench: PgbenchResult; ratio: number; clusterRatio?: number }>;
}

export async function readBench(b: BenchApp, url: string, name: string, body: string, target: number, log = console.log): Promise<ReadResult> {
  await post(b, body);
  // Statements per request (round trips to PostgreSQL): a counted number of sequential requests.
  const counted = 200;
  const before = b.app.services.db.statements;
  for (let i = 0; i < counted; i++) await post(b, body);
  const statementsPerRequest = (b.app.services.db.statements - before) / counted;
  const statements = await captureStatements(b, body);
  log(`${name}: ${statementsPerRequest} round trips to PostgreSQL per request (${counted} requests); the ${statements.length} SQL statements of one request:`);
  for (const s of statements) log(`  ${s.text.replace(/\s+/g, ' ').slice(0, 200)}${s.text.length > 200 ? ' …' : ''}`);
  const { script, vars } = toPgbenchScript(statements);
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${b.token}` };
  const rows: ReadResult['rows'] = [];
  const servers = PROCESSES > 1 ? await startServerProcesses(url, PROCESSES) : undefined;
  try {
    for (const c of CONCURRENCY) {
      await autocannon(b.app.url, { connections: c, seconds: WARMUP, headers, body });
      // BENCH_CPU_PROF=<file>: a V8 CPU profile of this process (the API) during the first measured run.
      const api = await withCpuProfile(c === CONCURRENCY[0], () => autocannon(b.app.url, { connections: c, seconds: DURATION, headers, body }), log);
      let cluster: CannonResult | undefined;
      if (servers) {
        await autocannon(servers.url, { connections: c, seconds: WARMUP, headers, body });
        cluster = await autocannon(servers.url, { connections: c, seconds: DURATION, headers, body });
      }
      const base = await pgbench(url, script, vars, c);
      const row = { c, api, cluster, pgbench: base, ratio: api.rps / base.tps, clusterRatio: cluster ? cluster.rps / base.tps : undefined };
      rows.push(row);
      const show = (label: string, r: CannonResult) => `${label} ${r.rps.toFixed(0)} req/s p50 ${r.p50} ms p99 ${r.p99} ms errors ${r.errors} non-2xx ${r.non2xx} (${pct(r.rps, base.tps)} of pgbench)`;
      log(`${name} c=${c}: ${show('API 1 process', api)}${cluster ? ` | ${show(`API ${PROCESSES} processes`, cluster)}` : ''}`);
      log(`${name} c=${c}: pgbench ${base.tps.toFixed(0)} tps (avg ${base.latencyMs} ms, failed ${base.failed}); target ≥ ${target} % of it`);
    }
  } finally {
    await servers?.stop();
  }
  return { name, statementsPerRequest, statements, rows };
}
