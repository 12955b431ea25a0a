import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runner } from 'node-pg-migrate';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../sql');
const MIGRATIONS_SCHEMA = 'migrations';
const MIGRATIONS_TABLE = 'applied';

/** Applies the SQL files of sql/ in order (node-pg-migrate, advisory-locked, one transaction each). Re-running is a no-op. */
export async function migrate(databaseUrl: string, log: (m: string) => void = () => {}) {
  await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsSchema: MIGRATIONS_SCHEMA,
    createMigrationsSchema: true,
    migrationsTable: MIGRATIONS_TABLE,
    checkOrder: true,
    // Processes starting together (several `npm run worker`, a worker next to `npm start`) take turns: the second
    // waits for the first's migrations, then finds nothing to do, instead of failing "Another migration is running".
    advisoryLockMode: 'wait',
    log,
    verbose: false,
    logger: { info: log, warn: log, error: log, debug: () => {} },
  });
}

/** Names of the migration files that have not been applied yet (readiness: this list must be empty). */
export async function pendingMigrations(client: pg.ClientBase | pg.Pool): Promise<string[]> {
  const files = fs.readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, ''));
  const exists = await client.query(`select to_regclass('${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE}') is not null as ok`);
  if (!exists.rows[0].ok) return files;
  const { rows } = await client.query(`select name from ${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE}`);
  const done = new Set(rows.map((r) => r.name));
  return files.filter((f) => !done.has(f));
}
