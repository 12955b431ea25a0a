/** npm run bench: a fresh database, seeded, then each benchmark in turn (never two at once). */
import os from 'node:os';
import { createBenchDatabase } from './db.ts';
import { seed, seedOptionsFromEnv } from './seed.ts';
import { documentsList } from './documents-list.ts';
import { rlsOverhead } from './rls-overhead.ts';
import { exitCleanly, DURATION, WARMUP, CONCURRENCY } from './common.ts';

console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}`);
console.log(`runs: ${DURATION} s each after a ${WARMUP} s warm-up, concurrency ${CONCURRENCY.join(', ')}`);
const opts = seedOptionsFromEnv();
const db = await createBenchDatabase();
let code = 0;
try {
  await seed(db.url, opts);
  console.log('\n== documents list: API vs pgbench ==');
  const list = await documentsList(db.url);
  console.log('\n== RLS overhead ==');
  await rlsOverhead(db.url, list.statements);
} catch (e) {
  console.error(e);
  code = 1;
} finally {
  await db.stop();
}
exitCleanly(code);
