import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import pg from 'pg';
import { withDatabase } from './support/global-setup.ts';
import {
  COORDINATOR_SCHEMAS,
  TENANT_COLUMN,
  distributionColumnViolations,
  foreignKeyViolations,
  planDistribution,
  primaryKeyViolations,
  readCatalogue,
  renderDistribution,
  spliceDoc,
  uniquenessViolations,
  type CatalogueFacts,
  type DistributionPlan,
  type DocException,
} from '../src/db/distribution.ts';

/**
 * Issue 10 §5: the pooled control-plane tables are ready to be distributed by tenant_id on Citus. Everything here is
 * derived from the migrated catalogue (a new table is covered the day its migration lands); the only list is the
 * unique keys that are global on purpose, each saying why and what Citus would need. docs/scale-out.md shows the
 * statements and the lists this derives (UPDATE_DOCS=1 rewrites them).
 */

/**
 * Unique keys of distributed tables without tenant_id. Citus refuses a unique constraint or index that lacks the
 * distribution column (a shard can only check its own rows), so each of these must change before the tables are
 * distributed. They are global today on purpose; the schema is not changed silently.
 */
const GLOBALLY_UNIQUE: Record<string, DocException> = {
  'app_public.tenants (slug)': {
    why: 'a slug names a tenant in `tenant(slug:)` and `X-Tenant`, deployment-wide',
    citus: 'a `tenant_slugs (slug primary key, tenant_id)` table (reference, or distributed by slug) holding the uniqueness; lookups by slug read it first',
  },
  'app_public.sites (name)': {
    why: 'a site name is a DNS label, unique in the deployment',
    citus: 'a `site_names (name primary key, tenant_id, site_id)` table (reference, or distributed by name) written in `createSite`’s transaction',
  },
  'app_public.sites (domain)': {
    why: '`<name>.<BASE_DOMAIN>` routes to exactly one site',
    citus: 'the same lookup table, keyed by domain',
  },
  'app_public.sites (schema_name)': {
    why: 'a PostgreSQL schema name on a database server',
    citus: '`(tenant_id, schema_name)`: the name is `site_<site uuid hex>` (enforced by the lifecycle trigger), so per-tenant uniqueness loses nothing',
  },
  'app_public.sites (login_role)': {
    why: 'the site’s LOGIN role on its database server, where role names are global',
    citus: '`(tenant_id, login_role)`: the name is `site_<site uuid hex>` (its check constraint), unique with the site',
  },
  'app_public.tenant_schemas (schema_name)': {
    why: 'the same schema name, recorded once',
    citus: '`(tenant_id, schema_name)`, the primary key already',
  },
  'app_public.tenant_schemas (owner_role)': {
    why: 'PostgreSQL role names are global to a server',
    citus: '`(tenant_id, owner_role)`: the role name is derived from the site uuid',
  },
  'app_public.invitations (token_hash)': {
    why: '`acceptInvitation(token)` finds the invitation by its token alone',
    citus: '`(tenant_id, token_hash)` and a token that names its tenant (routed to one shard), or a lookup across shards; a 256-bit random token does not collide',
  },
  'app_public.api_keys (identifier)': {
    why: 'every cache miss looks a key up by its identifier alone',
    citus: 'a key format carrying the tenant (`tpk_<tenant>_<identifier>_…`) with `(tenant_id, identifier)` unique, or an `identifier → tenant_id` lookup table',
  },
  'app_private.api_key_secrets (secret_hash)': {
    why: 'an HMAC of the whole key, unique by construction',
    citus: '`(tenant_id, secret_hash)`, or no unique key: the identifier already names the key',
  },
};

const DOC = path.join(import.meta.dirname, '..', 'docs', 'scale-out.md');

let db: pg.Client;
let facts: CatalogueFacts;
let plan: DistributionPlan;

beforeAll(async () => {
  // A clone of the migrated template of its own: connecting to the template would block the other files' clones.
  const adminUrl = inject('adminUrl');
  const template = inject('templateDb');
  const name = `tp_test_${template.replace('tp_template_', '')}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name} template ${template}`);
  await admin.end();
  db = new pg.Client({ connectionString: withDatabase(adminUrl, name) });
  await db.connect();
  facts = await readCatalogue(db);
  plan = planDistribution(facts);
});
afterAll(async () => {
  await db?.end();
});

const tablesOf = (kind: 'distributed' | 'reference' | 'local') => [...plan.placements].filter(([, p]) => p.kind === kind).map(([t]) => t);

describe('every table has a place on Citus', () => {
  it('distributed (tenant_id, or the tenants themselves), reference or local; none ambiguous', () => {
    // Sanity: the derivation found what sql/ makes (and would find tomorrow's tables the same way).
    expect(plan.root).toBe('app_public.tenants');
    expect(plan.rootColumn).toBe('id');
    const withTenantId = facts.tables.filter((t) => !(t.schema in COORDINATOR_SCHEMAS) && t.columns.some((c) => c.name === TENANT_COLUMN)).map((t) => t.table);
    expect(withTenantId.length).toBeGreaterThan(10);
    expect(tablesOf('distributed').sort()).toEqual([plan.root, ...withTenantId].sort());
    for (const t of ['app_public.users', 'app_public.plans', 'app_public.permissions']) expect(tablesOf('reference')).toContain(t);
    expect(tablesOf('local')).toContain('pgboss.job');
    expect([...plan.placements.keys()].sort()).toEqual(facts.tables.map((t) => t.table).sort());
    // A table with no tenant_id that points at tenant rows could be neither replicated nor kept on the coordinator.
    expect(plan.ambiguous).toEqual([]);
  });
});

describe('keys lead with tenant_id', () => {
  it('every tenant table’s primary key starts with tenant_id (the tenants’ with id)', () => {
    expect(primaryKeyViolations(facts, plan)).toEqual([]);
  });

  it('tenant_id is NOT NULL and of the type of tenants.id everywhere (co-location needs one type)', () => {
    expect(distributionColumnViolations(facts, plan)).toEqual([]);
  });

  it('every foreign key between tenant tables has tenant_id first on both sides; the others point at reference tables', () => {
    expect(foreignKeyViolations(facts, plan)).toEqual([]);
    // Foreign keys to non-tenant tables (users, plans…) are allowed: their targets are reference tables.
    for (const k of facts.constraints) {
      if (k.kind !== 'f' || plan.placements.get(k.table)?.kind !== 'distributed') continue;
      expect(['distributed', 'reference'], `${k.table} ${k.name} → ${k.refTable}`).toContain(plan.placements.get(k.refTable!)?.kind);
    }
    expect(plan.referenceReferences).toContain('app_public.memberships (user_id) → app_public.users (id)');
  });

  it('unique constraints and indexes of tenant tables include tenant_id, but for the documented global ones', () => {
    const found = uniquenessViolations(facts, plan).map((u) => u.key);
    const undocumented = found.filter((k) => !(k in GLOBALLY_UNIQUE));
    expect(undocumented, 'a new unique key without tenant_id: add tenant_id to it, or document it in GLOBALLY_UNIQUE (why, and what Citus would need)').toEqual([]);
    // An exception that no longer exists is taken off the list (and off the doc).
    expect(Object.keys(GLOBALLY_UNIQUE).filter((k) => !found.includes(k))).toEqual([]);
  });
});

describe('the rules fail when they should', () => {
  it('on a key that does not lead with tenant_id, a global unique key and a table pointing into tenants without tenant_id (and place new tables unasked)', async () => {
    await db.query('begin');
    try {
      await db.query(`create table app_public.zz_bad (
                        id uuid primary key,
                        tenant_id uuid not null references app_public.tenants (id),
                        document_id uuid not null,
                        code text unique,
                        foreign key (document_id, tenant_id) references app_public.documents (id, tenant_id))`);
      await db.query(`create table app_private.zz_orphan (
                        id uuid primary key,
                        owner_tenant uuid not null,
                        document_id uuid not null,
                        foreign key (owner_tenant, document_id) references app_public.documents (tenant_id, id))`);
      // A platform table that a tenant table references is placed without anyone listing it (e.g. the fleet's).
      await db.query(`create table app_public.zz_servers (id uuid primary key, name text not null unique)`);
      await db.query(`create table app_public.zz_placements (
                        tenant_id uuid not null references app_public.tenants (id), id uuid not null,
                        server_id uuid not null references app_public.zz_servers (id), primary key (tenant_id, id))`);
      const f = await readCatalogue(db);
      const p = planDistribution(f);
      expect(primaryKeyViolations(f, p)).toEqual(['app_public.zz_bad: primary key (id) does not lead with tenant_id']);
      expect(foreignKeyViolations(f, p)).toEqual([
        'app_public.zz_bad zz_bad_document_id_tenant_id_fkey: (document_id, tenant_id) → app_public.documents (id, tenant_id) does not lead with tenant_id → tenant_id',
      ]);
      expect(uniquenessViolations(f, p).map((u) => u.key).filter((k) => k.includes('zz_'))).toEqual(['app_public.zz_bad (code)', 'app_public.zz_bad (id)']);
      expect(p.placements.get('app_public.zz_servers')).toEqual({ kind: 'reference', why: 'referenced by app_public.zz_placements (zz_placements_server_id_fkey)' });
      expect(p.placements.get('app_public.zz_placements')).toEqual({ kind: 'distributed', column: 'tenant_id', root: false });
      expect(p.ambiguous).toEqual([
        'app_private.zz_orphan has no tenant_id but references app_public.documents (zz_orphan_owner_tenant_document_id_fkey): add tenant_id (distributed) or drop the reference',
      ]);
    } finally {
      await db.query('rollback');
    }
  });
});

describe('docs/scale-out.md', () => {
  it('shows the statements and lists of the current catalogue', () => {
    const doc = fs.readFileSync(DOC, 'utf8');
    const rendered = spliceDoc(doc, renderDistribution(facts, plan, GLOBALLY_UNIQUE));
    if (process.env.UPDATE_DOCS === '1') fs.writeFileSync(DOC, rendered);
    expect(fs.readFileSync(DOC, 'utf8'), 'docs/scale-out.md is stale: UPDATE_DOCS=1 npx vitest run test/distribution.test.ts').toBe(rendered);
  });
});
