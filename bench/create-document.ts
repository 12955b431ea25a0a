/**
 * The write path: a member creates a document from bytes the tenant already stores — createUpload (dedup:
 * `alreadyStored`, no S3) then completeUpload, which writes the upload, the document, two audit rows and the
 * processing job. Measured in documents per second (two HTTP requests each) against the pgbench ceiling of the
 * row itself: BEGIN, the same context statement, one INSERT of a document as the app role (RLS WITH CHECK
 * applies), COMMIT. Target: ≥ 35 % of that ceiling.
 */
import { tenantScopedGlobalId } from '../src/graphql/ids.ts';
import { CONCURRENCY, DURATION, exitCleanly, pct, pgbench, run, WARMUP, withCpuProfile, type PgbenchResult } from './common.ts';
import { captureStatements, startBenchApp, toPgbenchScript, type BenchApp } from './app.ts';
import { benchTenantId, benchUserId, uuidOf } from './seed.ts';
import crypto from 'node:crypto';

export interface CreateResult {
  statementsPerDocument: number;
  rows: Array<{ c: number; documentsPerSecond: number; p50: number; p99: number; errors: number; pgbench: PgbenchResult; ratio: number }>;
}

// Tenant 1's first seeded file (bench/seed.ts): its sha256 and size.
const sha256 = crypto.createHash('sha256').update('content-1-1').digest('hex');
const sizeBytes = 1000 + 37;
const tenantGlobalId = () => Buffer.from(`Tenant:${benchTenantId()}`).toString('base64');

async function load(b: BenchApp, connections: number, seconds: number) {
  const r = await run(process.execPath, ['--import', 'tsx', 'bench/create-document-client.ts', b.app.url, b.token, tenantGlobalId(), sha256, String(sizeBytes), String(connections), String(seconds)]);
  if (r.code !== 0) throw new Error(`create-document load failed (${r.code}): ${r.stderr}`);
  const j = JSON.parse(r.stdout);
  return { documentsPerSecond: j.created / seconds, p50: j.latency.p50, p99: j.latency.p99, errors: j.errors + j.timeouts + j.non2xx + j.graphqlErrors };
}

export async function createDocument(url: string, log = console.log): Promise<CreateResult> {
  const b = await startBenchApp(url);
  try {
    // Statements per document: both requests of one creation, as the server receives them.
    const body = (query: string, variables: unknown) => JSON.stringify({ query, variables });
    const filename = `probe-${Date.now()}.txt`;
    const before = b.app.services.db.statements;
    const createStatements = await captureStatements(
      b,
      body(`mutation C($input: CreateUploadInput!) { createUpload(input: $input) { id } }`, { input: { tenantId: tenantGlobalId(), filename, sizeBytes, mimeType: 'text/plain', sha256 } }),
    );
    const uploadId = await latestUploadId(b, filename);
    const completeStatements = await captureStatements(b, body(`mutation D($uploadId: ID!) { completeUpload(uploadId: $uploadId) { id status } }`, { uploadId }));
    const statementsPerDocument = b.app.services.db.statements - before;
    log(`create-document: ${statementsPerDocument} round trips to PostgreSQL per document (createUpload ${createStatements.length} + completeUpload ${completeStatements.length} statements):`);
    for (const s of [...createStatements, ...completeStatements]) log(`  ${s.text.replace(/\s+/g, ' ').slice(0, 160)}${s.text.length > 160 ? ' …' : ''}`);

    // The ceiling: the document row alone, under the same context (literal statement, as captured).
    const context = createStatements.find((s) => s.text.includes("set_config('role'"))!;
    const insert = {
      text: `insert into app_public.documents (tenant_id, id, file_id, uploader_id, filename, original_name, size_bytes, mime_type)
             values ($1, gen_random_uuid(), $2, $3, 'pgbench-' || :client_id || '-' || :n, 'x.txt', ${sizeBytes}, 'text/plain')`,
      values: [benchTenantId(), uuidOf('file-1-1'), benchUserId()],
    };
    const { script, vars } = toPgbenchScript([{ text: 'BEGIN', values: [] }, context, insert, { text: 'COMMIT', values: [] }]);
    const ceilingScript = `\\set n random(1, 2000000000)\n${script}`;

    const rows: CreateResult['rows'] = [];
    for (const c of CONCURRENCY) {
      await load(b, c, WARMUP);
      const api = await withCpuProfile(c === CONCURRENCY[0], () => load(b, c, DURATION), log);
      const base = await pgbench(url, ceilingScript, vars, c);
      const ratio = api.documentsPerSecond / base.tps;
      rows.push({ c, ...api, pgbench: base, ratio });
      log(
        `create-document c=${c}: API ${api.documentsPerSecond.toFixed(0)} documents/s (2 requests each; request p50 ${api.p50} ms p99 ${api.p99} ms, errors ${api.errors})` +
          ` | pgbench INSERT ${base.tps.toFixed(0)} tps (failed ${base.failed}) | ${pct(api.documentsPerSecond, base.tps)} (target ≥ 35 %)`,
      );
    }
    return { statementsPerDocument, rows };
  } finally {
    await b.stop();
  }
}

/** The upload just created by the probe (read as the owner role: the bench is privileged). */
async function latestUploadId(b: BenchApp, filename: string) {
  const { rows } = await b.app.services.ownerPool.query(`select tenant_id, id from app_public.uploads where filename = $1`, [filename]);
  if (!rows[0]) throw new Error('the probe upload was not created');
  return tenantScopedGlobalId('Upload', rows[0].tenant_id, rows[0].id);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('set BENCH_DATABASE_URL to a seeded database (bench/seed.ts), or use npm run bench');
  await createDocument(url);
  exitCleanly(0);
}
