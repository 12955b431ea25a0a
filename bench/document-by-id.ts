/** One document by its global id, with uploader and file (target: API ≥ 20 % of its pgbench ceiling). */
import { tenantScopedGlobalId } from '../src/graphql/ids.ts';
import { exitCleanly } from './common.ts';
import { post, startBenchApp } from './app.ts';
import { readBench, type ReadResult } from './read-bench.ts';
import { benchTenantId, uuidOf } from './seed.ts';

export const BY_ID_QUERY = `query Doc($id: ID!) { node(id: $id) { ... on Document { filename sizeBytes status uploader { name } file { sha256 } } } }`;

export async function documentById(url: string, log = console.log): Promise<ReadResult> {
  const b = await startBenchApp(url);
  try {
    // A document of tenant 1 in the middle of its list (bench/seed.ts ids).
    const body = JSON.stringify({ query: BY_ID_QUERY, variables: { id: tenantScopedGlobalId('Document', benchTenantId(), uuidOf('doc-1-100')) } });
    const first = (await post(b, body)) as { data: { node: { filename: string } | null } };
    if (first.data.node?.filename !== 'doc-000100.txt') throw new Error(`expected doc-000100.txt, got ${JSON.stringify(first.data)}`);
    return await readBench(b, url, 'document-by-id', body, 20, log);
  } finally {
    await b.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('set BENCH_DATABASE_URL to a seeded database (bench/seed.ts), or use npm run bench');
  await documentById(url);
  exitCleanly(0);
}
