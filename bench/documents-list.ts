/**
 * "First 50 documents of my tenant with uploader and file": the API (autocannon) against pgbench running the
 * same transaction (the statements the API sends, captured from the driver) as the app role, prepared mode.
 */
import { autocannon, CONCURRENCY, DURATION, exitCleanly, pct, pgbench, WARMUP, type CannonResult, type PgbenchResult } from './common.ts';
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import { captureStatements, LIST_BODY, post, startBenchApp, toPgbenchScript, type CapturedStatement } from './app.ts';

export interface ListResult {
  statementsPerRequest: number;
  statements: CapturedStatement[];
  rows: Array<{ c: number; api: CannonResult; pgbench: PgbenchResult; ratio: number }>;
}

export async function documentsList(url: string, log = console.log): Promise<ListResult> {
  const b = await startBenchApp(url);
  try {
    const first = (await post(b)) as { data: { tenant: { documents: { edges: unknown[] } } } };
    const n = first.data.tenant.documents.edges.length;
    if (n !== 50) throw new Error(`expected 50 documents, got ${n}`);
    // Statements per request: a counted number of sequential requests.
    const counted = 200;
    const before = b.app.services.db.statements;
    for (let i = 0; i < counted; i++) await post(b);
    const statementsPerRequest = (b.app.services.db.statements - before) / counted;
    const statements = await captureStatements(b);
    log(`SQL statements per request: ${statementsPerRequest} (${counted} requests); captured ${statements.length} in one request:`);
    for (const s of statements) log(`  ${s.text.replace(/\s+/g, ' ').slice(0, 220)}${s.text.length > 220 ? ' …' : ''}`);
    const { script, vars } = toPgbenchScript(statements);
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${b.token}` };
    const rows: ListResult['rows'] = [];
    for (const c of CONCURRENCY) {
      await autocannon(b.app.url, { connections: c, seconds: WARMUP, headers, body: LIST_BODY });
      // BENCH_CPU_PROF=<file>: a V8 CPU profile of this process (the API) during the first measured run.
      const profile = process.env.BENCH_CPU_PROF && c === CONCURRENCY[0] ? new Session() : undefined;
      if (profile) {
        profile.connect();
        await profile.post('Profiler.enable');
        await profile.post('Profiler.start');
      }
      const api = await autocannon(b.app.url, { connections: c, seconds: DURATION, headers, body: LIST_BODY });
      if (profile) {
        const { profile: data } = await profile.post('Profiler.stop');
        fs.writeFileSync(process.env.BENCH_CPU_PROF!, JSON.stringify(data));
        profile.disconnect();
        log(`CPU profile of the API during c=${c} written to ${process.env.BENCH_CPU_PROF} (npx tsx bench/profile-summary.ts <file>)`);
      }
      const base = await pgbench(url, script, vars, c);
      const ratio = api.rps / base.tps;
      rows.push({ c, api, pgbench: base, ratio });
      log(
        `c=${c}: API ${api.rps.toFixed(0)} req/s p50 ${api.p50} ms p99 ${api.p99} ms errors ${api.errors} non-2xx ${api.non2xx}` +
          ` | pgbench ${base.tps.toFixed(0)} tps (avg ${base.latencyMs} ms, failed ${base.failed}) | API/pgbench ${pct(api.rps, base.tps)} (target ≥ 25 %)`,
      );
    }
    return { statementsPerRequest, statements, rows };
  } finally {
    await b.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('set BENCH_DATABASE_URL to a seeded database (bench/seed.ts), or use npm run bench');
  await documentsList(url);
  exitCleanly(0);
}
