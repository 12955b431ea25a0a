/**
 * npm run bench: a fresh database, seeded, then each benchmark in turn (never two at once).
 * BENCH_ONLY=list,by-id,create,rls,scaling,fanout,backup picks some (default: all).
 */
import os from 'node:os';
import { createBenchDatabase } from './db.ts';
import { seed, seedOptionsFromEnv } from './seed.ts';
import { documentsList } from './documents-list.ts';
import { documentById } from './document-by-id.ts';
import { createDocument } from './create-document.ts';
import { rlsOverhead } from './rls-overhead.ts';
import { tenantScaling } from './tenant-scaling.ts';
import { subscriptionFanout } from './subscription-fanout.ts';
import { backupThroughput } from './backup-throughput.ts';
import { captureStatements, startBenchApp } from './app.ts';
import { exitCleanly, DURATION, WARMUP, CONCURRENCY } from './common.ts';

const ALL = ['list', 'by-id', 'create', 'rls', 'scaling', 'fanout', 'backup'] as const;
const only = new Set((process.env.BENCH_ONLY ?? ALL.join(',')).split(',').map((s) => s.trim()));
for (const name of only) if (!(ALL as readonly string[]).includes(name)) throw new Error(`BENCH_ONLY: unknown benchmark "${name}" (${ALL.join(', ')})`);

console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`runs: ${DURATION} s each after a ${WARMUP} s warm-up, concurrency ${CONCURRENCY.join(', ')}; benchmarks: ${[...only].join(', ')}`);
const db = await createBenchDatabase();
let code = 0;
try {
  await seed(db.url, seedOptionsFromEnv());
  if (only.has('list')) {
    console.log('\n== documents-list: API vs pgbench ==');
    await documentsList(db.url);
  }
  if (only.has('by-id')) {
    console.log('\n== document-by-id: API vs pgbench ==');
    await documentById(db.url);
  }
  if (only.has('create')) {
    console.log('\n== create-document: API vs pgbench ==');
    await createDocument(db.url);
  }
  if (only.has('rls')) {
    console.log('\n== RLS overhead ==');
    const b = await startBenchApp(db.url);
    const statements = await captureStatements(b).finally(() => b.stop());
    await rlsOverhead(db.url, statements);
  }
  if (only.has('scaling')) {
    console.log('\n== tenant scaling ==');
    await tenantScaling(db);
  }
  if (only.has('fanout')) {
    console.log('\n== subscription fan-out ==');
    await subscriptionFanout(db.url);
  }
  if (only.has('backup')) {
    console.log('\n== backup throughput ==');
    await backupThroughput(db.url);
  }
  console.log(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
} catch (e) {
  console.error(e);
  code = 1;
} finally {
  await db.stop();
}
exitCleanly(code);
