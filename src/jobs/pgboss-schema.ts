import { getConstructionPlans } from 'pg-boss';

/**
 * pg-boss's own construction SQL for schema `pgboss`, without its transaction and lock statements: sql/0014
 * embeds exactly this text (test/job-queue.test.ts checks), so the schema is created by our migrations and
 * pg-boss starts with `migrate: false`. After upgrading pg-boss, paste `npm run -s pgboss:sql` into a new
 * migration (pg-boss's getMigrationPlans gives the upgrade steps).
 */
export function pgBossSchemaSql(): string {
  const plan = getConstructionPlans('pgboss');
  const start = plan.indexOf('CREATE SCHEMA IF NOT EXISTS pgboss;');
  const end = plan.lastIndexOf('COMMIT;');
  if (start < 0 || end < 0) throw new Error('pg-boss construction plan has an unexpected shape');
  return plan.slice(start, end).trimEnd() + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(pgBossSchemaSql());
