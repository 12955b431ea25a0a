/** "First 50 documents of my tenant with uploader and file" (target: API ≥ 25 % of pgbench, ≤ 3 statements). */
import { exitCleanly } from './common.ts';
import { LIST_BODY, post, startBenchApp } from './app.ts';
import { readBench, type ReadResult } from './read-bench.ts';

export async function documentsList(url: string, log = console.log): Promise<ReadResult> {
  const b = await startBenchApp(url);
  try {
    const first = (await post(b)) as { data: { tenant: { documents: { edges: unknown[] } } } };
    const n = first.data.tenant.documents.edges.length;
    if (n !== 50) throw new Error(`expected 50 documents, got ${n}`);
    return await readBench(b, url, 'documents-list', LIST_BODY, 25, log);
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
