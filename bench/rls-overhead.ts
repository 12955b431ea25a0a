/**
 * RLS overhead on the documents list: the same statements through pgbench (prepared), once as the app role with
 * its context (policies apply), once as the owner with no role switch (no RLS; the statement's explicit
 * `WHERE tenant_id = …` does the filtering), alternating, median of BENCH_RLS_ROUNDS (3) rounds of BENCH_RLS_SECONDS
 * (10 s), at c=1 (latency) and at the first BENCH_CONCURRENCY (throughput). Then EXPLAIN (ANALYZE, BUFFERS) of the RLS query.
 */
import pg from 'pg';
import { CONCURRENCY, exitCleanly, median, pgbench, type PgbenchResult } from './common.ts';
import { captureStatements, startBenchApp, toPgbenchScript, type CapturedStatement } from './app.ts';

export interface RlsResult {
  rows: Array<{ name: string; c: number; rls: PgbenchResult; owner: PgbenchResult; overhead: number }>;
  explain: string;
}

export async function rlsOverhead(url: string, statements: CapturedStatement[], log = console.log): Promise<RlsResult> {
  const isContext = (s: CapturedStatement) => s.text.includes("set_config('role'");
  const context = statements.find(isContext);
  const docs = statements.find((s) => /FROM "app_public"\."documents"/.test(s.text));
  if (!context || !docs) throw new Error('the captured statements have no set_config or documents query');
  // The owner variant keeps the same statements: the context is set, but the role stays the owner's (no RLS).
  const ownerContext: CapturedStatement = { text: context.text.replace(/set_config\('role', '[^']*', true\),\s*/, ''), values: [] };
  if (context.values.length || ownerContext.text === context.text) throw new Error(`unexpected context statement: ${context.text}`);
  const begin = { text: 'BEGIN', values: [] };
  const commit = { text: 'COMMIT', values: [] };
  const queries = statements.filter((s) => !/^(BEGIN|COMMIT)$/i.test(s.text.trim()) && !isContext(s));
  const variants = [{ name: 'documents list transaction', rls: [begin, context, ...queries, commit], owner: [begin, ownerContext, ...queries, commit] }];
  // The two variants alternate (A B B A …) and each figure is the median of its rounds: one pair of 15 s runs on a
  // shared 2-core machine once came out at -19 % (the owner slower), drift and noise larger than the effect.
  // c=1 (latency: the server's cost of one transaction, nothing queued) and the first benchmark concurrency (tps).
  const rounds = Number(process.env.BENCH_RLS_ROUNDS ?? 3);
  const seconds = Number(process.env.BENCH_RLS_SECONDS ?? 10);
  const rows: RlsResult['rows'] = [];
  for (const v of variants) {
    const a = toPgbenchScript(v.rls);
    const b = toPgbenchScript(v.owner);
    for (const c of [1, CONCURRENCY[0]!]) {
      const runs: Array<{ rls: PgbenchResult; owner: PgbenchResult }> = [];
      const run = (s: { script: string; vars: Record<string, string> }) => pgbench(url, s.script, s.vars, c, seconds);
      for (let i = 0; i < rounds; i++) {
        if (i % 2 === 0) {
          const rls = await run(a);
          runs.push({ rls, owner: await run(b) });
        } else {
          const owner = await run(b);
          runs.push({ owner, rls: await run(a) });
        }
      }
      // Overhead = extra time per transaction: latency at c=1, 1/tps under concurrency.
      const perRun = runs.map((r) => (c === 1 ? r.rls.latencyMs / r.owner.latencyMs - 1 : r.owner.tps / r.rls.tps - 1));
      const overhead = median(perRun);
      const mid = runs[perRun.indexOf(overhead)]!;
      rows.push({ name: v.name, c, rls: mid.rls, owner: mid.owner, overhead });
      const fmt = (r: PgbenchResult) => (c === 1 ? `${r.latencyMs.toFixed(3)} ms` : `${r.tps.toFixed(0)} tps`);
      log(
        `${v.name}, c=${c}, ${rounds} alternating rounds of ${seconds} s: RLS (app role) ${runs.map((r) => fmt(r.rls)).join(' / ')} vs owner, explicit WHERE tenant_id ${runs.map((r) => fmt(r.owner)).join(' / ')} → overhead per transaction ${perRun.map((o) => `${(100 * o).toFixed(1)} %`).join(' / ')}, median ${(100 * overhead).toFixed(1)} % (target < 10 %)`,
      );
    }
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let explain = '';
  try {
    await client.query('begin');
    await client.query(context.text, context.values);
    // Once cold (the session's first call of the policy helper), then warm as in a long-lived pooled session.
    const cold = await client.query(`explain (analyze, buffers, verbose off, costs off) ${docs.text}`, docs.values);
    const warm = await client.query(`explain (analyze, buffers, verbose off, costs off) ${docs.text}`, docs.values);
    const text = (r: pg.QueryResult) => r.rows.map((row) => row['QUERY PLAN']).join('\n');
    explain = `-- first statement of the session (cold)\n${text(cold)}\n-- same session, again (warm)\n${text(warm)}`;
    await client.query('rollback');
  } finally {
    await client.end();
  }
  log(`EXPLAIN (ANALYZE, BUFFERS) of the documents query as the app role:\n${explain}`);
  if (!/InitPlan/.test(explain)) log('WARNING: no InitPlan in the plan (the policy helper is not evaluated once per statement)');
  if (!/documents_tenant_recent/.test(explain)) log('WARNING: the plan does not use documents_tenant_recent');
  return { rows, explain };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('set BENCH_DATABASE_URL to a seeded database (bench/seed.ts), or use npm run bench');
  const b = await startBenchApp(url);
  let statements: CapturedStatement[];
  try {
    statements = await captureStatements(b);
  } finally {
    await b.stop();
  }
  await rlsOverhead(url, statements);
  exitCleanly(0);
}
