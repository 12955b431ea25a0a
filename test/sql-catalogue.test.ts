import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';

/**
 * The isolation model as the catalogue states it (sql/0001–0004): every table forces RLS, the request role can
 * bypass nothing and owns nothing, app_private is out of its reach, and the audit log is append-only for it.
 * These read pg_catalog through the privileged connection, so they hold whatever the API does.
 */
const APP_ROLE = 'tenantplane_app';
const SCHEMAS = ['app', 'app_public', 'app_private'];
const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'];

let app: TestApp;
let db: pg.Client;

beforeAll(async () => {
  app = await startTestApp();
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
});
afterAll(async () => {
  await db?.end();
  await app?.stop();
});

async function rows<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
  return (await db.query(sql, params)).rows as T[];
}

/** Runs statements as the request role (the way the API does) in a transaction that is always rolled back. */
async function asAppRole<T>(fn: () => Promise<T>): Promise<T> {
  await db.query('begin');
  try {
    await db.query(`select set_config('role', $1, true), set_config('app.user_id', '', true), set_config('app.tenant_id', '', true)`, [APP_ROLE]);
    return await fn();
  } finally {
    await db.query('rollback');
  }
}

async function sqlError(sql: string): Promise<{ code?: string; message: string }> {
  try {
    await db.query(sql);
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
  throw new Error(`expected an error from: ${sql}`);
}

describe('row-level security is enabled and forced', () => {
  it('on every table of app, app_public and app_private', async () => {
    const tables = await rows<{ schema: string; name: string; rls: boolean; forced: boolean }>(
      `select n.nspname as schema, c.relname as name, c.relrowsecurity as rls, c.relforcerowsecurity as forced
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any($1) and c.relkind in ('r', 'p')
        order by 1, 2`,
      [SCHEMAS],
    );
    // Sanity: the migrations created what we think they did.
    const names = tables.map((t) => `${t.schema}.${t.name}`);
    for (const expected of ['app_public.users', 'app_public.tenants', 'app_public.memberships', 'app_public.invitations', 'app_public.audit_events', 'app_public.chat_sessions', 'app_public.chat_messages', 'app_public.social_links', 'app_private.user_secrets', 'app_private.refresh_tokens']) {
      expect(names).toContain(expected);
    }
    const unprotected = tables.filter((t) => !t.rls || !t.forced).map((t) => `${t.schema}.${t.name} (rls=${t.rls}, forced=${t.forced})`);
    expect(unprotected).toEqual([]);
  });

  it('no view, materialized view or foreign table exposes rows around the policies', async () => {
    // A view runs with its owner's rights (unless security_invoker), so one over an RLS table would be a hole.
    const others = await rows<{ name: string; kind: string }>(
      `select n.nspname || '.' || c.relname as name, c.relkind::text as kind
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ('app', 'app_public', 'app_private') and c.relkind in ('v', 'm', 'f')`,
    );
    expect(others).toEqual([]);
  });
});

describe('the request role', () => {
  it('is neither superuser nor BYPASSRLS, cannot log in, and belongs to no other role', async () => {
    const [role] = await rows<{ rolsuper: boolean; rolbypassrls: boolean; rolcanlogin: boolean; rolcreaterole: boolean; rolcreatedb: boolean }>(
      `select rolsuper, rolbypassrls, rolcanlogin, rolcreaterole, rolcreatedb from pg_roles where rolname = $1`,
      [APP_ROLE],
    );
    expect(role).toBeDefined();
    expect(role!.rolsuper).toBe(false);
    expect(role!.rolbypassrls).toBe(false);
    expect(role!.rolcanlogin).toBe(false);
    expect(role!.rolcreaterole).toBe(false);
    expect(role!.rolcreatedb).toBe(false);
    // Membership in another role would let a request SET ROLE (or inherit) its way out of the policies.
    const memberOf = await rows<{ role: string }>(
      `select r.rolname as role from pg_auth_members m join pg_roles r on r.oid = m.roleid
        where m.member = (select oid from pg_roles where rolname = $1)`,
      [APP_ROLE],
    );
    expect(memberOf).toEqual([]);
  });

  it('owns no relation, function, type or schema (owners bypass non-forced RLS and may ALTER/DROP)', async () => {
    const owned = await rows<{ what: string }>(
      `with r as (select oid from pg_roles where rolname = $1)
       select 'relation ' || c.oid::regclass::text as what from pg_class c, r where c.relowner = r.oid
       union all select 'function ' || p.oid::regprocedure::text from pg_proc p, r where p.proowner = r.oid
       union all select 'type ' || t.oid::regtype::text from pg_type t, r where t.typowner = r.oid
       union all select 'schema ' || n.nspname from pg_namespace n, r where n.nspowner = r.oid`,
      [APP_ROLE],
    );
    expect(owned).toEqual([]);
  });

  it('has no privilege at all on app_private: not on the schema, its tables, or any column', async () => {
    const [schema] = await rows<{ usage: boolean; create: boolean }>(
      `select has_schema_privilege($1, 'app_private', 'USAGE') as usage, has_schema_privilege($1, 'app_private', 'CREATE') as create`,
      [APP_ROLE],
    );
    expect(schema).toEqual({ usage: false, create: false });
    const tables = await rows<{ name: string }>(
      `select c.oid::regclass::text as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'app_private' and c.relkind in ('r', 'p')`,
    );
    expect(tables.length).toBeGreaterThan(0);
    const granted: string[] = [];
    for (const { name } of tables) {
      for (const privilege of TABLE_PRIVILEGES) {
        const [r] = await rows<{ t: boolean }>(`select has_table_privilege($1, $2::regclass, $3) as t`, [APP_ROLE, name, privilege]);
        if (r!.t) granted.push(`${privilege} on ${name}`);
      }
      for (const privilege of ['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) {
        const [r] = await rows<{ c: boolean }>(`select has_any_column_privilege($1, $2::regclass, $3) as c`, [APP_ROLE, name, privilege]);
        if (r!.c) granted.push(`column ${privilege} on ${name}`);
      }
    }
    expect(granted).toEqual([]);
  });

  it('is refused by app_private when it tries anyway', async () => {
    await asAppRole(async () => {
      const e = await sqlError('select * from app_private.user_secrets');
      expect(e.code).toBe('42501');
    });
  });

  it('cannot UPDATE, DELETE or TRUNCATE app_public.audit_events (append-only)', async () => {
    const [p] = await rows<Record<string, boolean>>(
      `select has_table_privilege($1, 'app_public.audit_events', 'UPDATE') as update,
              has_any_column_privilege($1, 'app_public.audit_events', 'UPDATE') as column_update,
              has_table_privilege($1, 'app_public.audit_events', 'DELETE') as delete,
              has_table_privilege($1, 'app_public.audit_events', 'TRUNCATE') as truncate,
              has_table_privilege($1, 'app_public.audit_events', 'INSERT') as insert,
              has_table_privilege($1, 'app_public.audit_events', 'SELECT') as select`,
      [APP_ROLE],
    );
    expect(p).toEqual({ update: false, column_update: false, delete: false, truncate: false, insert: true, select: true });
    for (const statement of [
      `update app_public.audit_events set action = 'rewritten'`,
      `delete from app_public.audit_events`,
      `truncate app_public.audit_events`,
    ]) {
      await asAppRole(async () => {
        const e = await sqlError(statement);
        expect(e.code, statement).toBe('42501');
        expect(e.message, statement).toMatch(/permission denied/);
      });
    }
  });

  it('has no TRUNCATE, REFERENCES or TRIGGER on any app_public table (TRUNCATE ignores RLS)', async () => {
    const granted = await rows<{ what: string }>(
      `select p.privilege || ' on ' || c.oid::regclass::text as what
         from pg_class c join pg_namespace n on n.oid = c.relnamespace,
              unnest(array['TRUNCATE', 'REFERENCES', 'TRIGGER']) as p(privilege)
        where n.nspname = 'app_public' and c.relkind in ('r', 'p') and has_table_privilege($1, c.oid, p.privilege)`,
      [APP_ROLE],
    );
    expect(granted).toEqual([]);
  });

  it('only reads the tables of schema app (the lifecycle transitions of sql/0016): no write, no TRUNCATE', async () => {
    const granted = await rows<{ what: string }>(
      `select p.privilege || ' on ' || c.oid::regclass::text as what
         from pg_class c join pg_namespace n on n.oid = c.relnamespace,
              unnest(array['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) as p(privilege)
        where n.nspname = 'app' and c.relkind in ('r', 'p')
          and (has_table_privilege($1, c.oid, p.privilege) or (p.privilege in ('INSERT', 'UPDATE', 'REFERENCES') and has_any_column_privilege($1, c.oid, p.privilege)))`,
      [APP_ROLE],
    );
    expect(granted).toEqual([]);
    await asAppRole(async () => {
      const e = await sqlError(`insert into app.lifecycle_transitions (entity, from_status, to_status) values ('site', 'DELETED', 'HEALTHY')`);
      expect(e.code).toBe('42501');
    });
  });

  it('cannot create objects in any schema it can reach', async () => {
    const creatable = await rows<{ nspname: string }>(
      `select nspname from pg_namespace where nspname not like 'pg\\_%' and nspname <> 'information_schema'
          and has_schema_privilege($1, oid, 'CREATE')`,
      [APP_ROLE],
    );
    expect(creatable).toEqual([]);
  });
});

describe('functions', () => {
  it('every SECURITY DEFINER function pins its search_path', async () => {
    const unpinned = await rows<{ fn: string }>(
      `select p.oid::regprocedure::text as fn from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname in ('app', 'app_public', 'app_private') and p.prosecdef
          and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%')`,
    );
    expect(unpinned).toEqual([]);
  });

  it('PUBLIC cannot reach our functions: no USAGE on their schemas', async () => {
    // Note: sql/0001's `alter default privileges in schema … revoke execute on functions from public` is a no-op
    // (a per-schema REVOKE cannot remove the global default grant), so PUBLIC does hold EXECUTE on every function
    // here. What keeps other roles out is the missing schema USAGE, checked below.
    const reachable = await rows<{ schema: string }>(
      `select n.nspname as schema from pg_namespace n,
              aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
        where n.nspname in ('app', 'app_public', 'app_private') and a.grantee = 0 and a.privilege_type in ('USAGE', 'CREATE')`,
    );
    expect(reachable).toEqual([]);
    const usage = await rows<{ role: string; schema: string }>(
      `select r.rolname as role, n.nspname as schema from pg_roles r, pg_namespace n
        where n.nspname in ('app', 'app_public', 'app_private') and has_schema_privilege(r.oid, n.oid, 'USAGE')
          and not r.rolsuper and r.oid <> n.nspowner and r.rolname <> $1 and r.rolname not like 'pg\\_%'`,
      [APP_ROLE],
    );
    expect(usage).toEqual([]);
  });

  it('the request role executes only functions granted to it by name, never through the PUBLIC default', async () => {
    // Because of the no-op revoke above, a new function in schema app would be callable by the request role even
    // without a grant. Every non-trigger function it can run must carry an explicit grant to it.
    const implicit = await rows<{ fn: string }>(
      `select p.oid::regprocedure::text as fn from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname in ('app', 'app_public', 'app_private')
          and p.prorettype <> 'trigger'::regtype
          and has_schema_privilege($1, n.oid, 'USAGE') and has_function_privilege($1, p.oid, 'EXECUTE')
          and not exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                           where a.grantee = (select oid from pg_roles where rolname = $1) and a.privilege_type = 'EXECUTE')
        order by 1`,
      [APP_ROLE],
    );
    expect(implicit).toEqual([]);
  });
});

describe('functions', () => {
  it('none of ours is executable by PUBLIC: the app role gets EXECUTE by name only', async () => {
    const open = await rows<{ fn: string }>(
      `select n.nspname || '.' || p.proname as fn
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname in ('app', 'app_public', 'app_private')
          and exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                       where a.grantee = 0 and a.privilege_type = 'EXECUTE')`,
    );
    expect(open).toEqual([]);
  });
});
