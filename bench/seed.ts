/**
 * Deterministic benchmark data set, written set-based as the privileged role (RLS bypassed).
 * N tenants × M documents; each tenant has U users (members), one file per document (distinct sha256),
 * uploaders cycling over the tenant's members. Ids are derived from md5 of a seed string, so the same
 * (N, M, U) always gives the same ids, slugs and timestamps.
 */
import crypto from 'node:crypto';
import pg from 'pg';
import { migrate } from '../src/db/migrate.ts';

export interface SeedOptions {
  tenants: number;
  docsPerTenant: number;
  usersPerTenant: number;
}

export function seedOptionsFromEnv(env = process.env): SeedOptions {
  return {
    tenants: Number(env.BENCH_TENANTS ?? 1000),
    docsPerTenant: Number(env.BENCH_DOCS ?? 200),
    usersPerTenant: Number(env.BENCH_USERS ?? 5),
  };
}

/** The user the benchmarks act as (owner of tenant 1) and its tenant. */
export const benchUserId = (): string => uuidOf('user-1-1');
export const benchTenantId = (): string => uuidOf('tenant-1');
export const benchTenantSlug = 'bench-t000001';

/** md5-based uuid, the same expression as the SQL below. */
export function uuidOf(s: string) {
  const h = crypto.createHash('md5').update(s).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Seeds tenants firstTenant..o.tenants (1 for a fresh database; more to grow an existing data set in place). */
export async function seed(url: string, o: SeedOptions, log: (m: string) => void = console.log, firstTenant = 1) {
  const t0 = Date.now();
  await migrate(url);
  log(`migrated in ${Date.now() - t0} ms`);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const t1 = Date.now();
    await c.query('begin');
    await c.query(`set local synchronous_commit = off`);
    // Tenants: enterprise plan so member quotas never matter.
    await c.query(
      `insert into app_public.tenants (id, slug, name, plan_id, created_at, updated_at)
       select md5('tenant-' || t)::uuid, 'bench-t' || lpad(t::text, 6, '0'), 'Bench tenant ' || t, 'enterprise',
              timestamptz '2026-01-01' + t * interval '1 second', timestamptz '2026-01-01'
         from generate_series($2::int, $1::int) t`,
      [o.tenants, firstTenant],
    );
    await c.query(
      `insert into app_public.users (id, email, name, created_at, updated_at)
       select md5('user-' || t || '-' || u)::uuid, 'u' || u || '.t' || t || '@bench.example', 'User ' || u || ' of ' || t,
              timestamptz '2026-01-01', timestamptz '2026-01-01'
         from generate_series($3::int, $1::int) t, generate_series(1, $2::int) u`,
      [o.tenants, o.usersPerTenant, firstTenant],
    );
    await c.query(
      `insert into app_public.memberships (tenant_id, id, user_id, role, created_at, updated_at)
       select md5('tenant-' || t)::uuid, md5('membership-' || t || '-' || u)::uuid, md5('user-' || t || '-' || u)::uuid,
              (case when u = 1 then 'OWNER' when u = 2 then 'ADMIN' else 'MEMBER' end)::app_public.tenant_role,
              timestamptz '2026-01-01' + u * interval '1 second', timestamptz '2026-01-01'
         from generate_series($3::int, $1::int) t, generate_series(1, $2::int) u`,
      [o.tenants, o.usersPerTenant, firstTenant],
    );
    await c.query(
      `insert into app_public.files (tenant_id, id, sha256, size_bytes, mime_type, object_key, created_at)
       select md5('tenant-' || t)::uuid, md5('file-' || t || '-' || d)::uuid,
              encode(sha256(convert_to('content-' || t || '-' || d, 'UTF8')), 'hex'),
              1000 + (d * 37) % 100000, 'text/plain',
              'tenants/' || md5('tenant-' || t)::uuid || '/' || md5('file-' || t || '-' || d)::uuid,
              timestamptz '2026-01-01' + d * interval '1 minute'
         from generate_series($3::int, $1::int) t, generate_series(1, $2::int) d`,
      [o.tenants, o.docsPerTenant, firstTenant],
    );
    await c.query(
      `insert into app_public.documents (tenant_id, id, file_id, uploader_id, filename, original_name, size_bytes, mime_type,
                                         status, processed_at, char_count, word_count, line_count, preview, created_at, updated_at)
       select md5('tenant-' || t)::uuid, md5('doc-' || t || '-' || d)::uuid, md5('file-' || t || '-' || d)::uuid,
              md5('user-' || t || '-' || (1 + d % $3::int))::uuid,
              'doc-' || lpad(d::text, 6, '0') || '.txt', 'doc-' || d || '.txt', 1000 + (d * 37) % 100000, 'text/plain',
              'PROCESSED', timestamptz '2026-01-01' + d * interval '1 minute', 1000, 180, 20, 'Lorem ipsum ' || d,
              timestamptz '2026-01-01' + d * interval '1 minute', timestamptz '2026-01-01' + d * interval '1 minute'
         from generate_series($4::int, $1::int) t, generate_series(1, $2::int) d`,
      [o.tenants, o.docsPerTenant, o.usersPerTenant, firstTenant],
    );
    await c.query('commit');
    log(`seeded tenants ${firstTenant}–${o.tenants} × ${o.docsPerTenant} documents (${o.usersPerTenant} members each) in ${Date.now() - t1} ms`);
    const t2 = Date.now();
    await c.query('vacuum analyze app_public.tenants, app_public.users, app_public.memberships, app_public.files, app_public.documents');
    log(`vacuum analyze in ${Date.now() - t2} ms`);
  } catch (e) {
    await c.query('rollback').catch(() => undefined);
    throw e;
  } finally {
    await c.end();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('set BENCH_DATABASE_URL (a fresh database, privileged role)');
  await seed(url, seedOptionsFromEnv());
}
