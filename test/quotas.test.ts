import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, PASSWORD, createTenant, signUp, uniqueEmail, type TestUser } from './support/client.ts';
import { CREATE_UPLOAD, COMPLETE_UPLOAD, putBytes, sha256hex } from './support/uploads.ts';

/**
 * Issue 14 §2: every plan limit holds under concurrency. Many concurrent GraphQL calls on one tenant: never more than
 * the cap, the losers answer QUOTA_EXCEEDED, and a refused call leaves nothing (no row, no job, no SUCCESS audit entry:
 * only its FAILURE entry). The limits are enforced by sql/0015 (app.enforce_tenant_quota), below the API's own checks.
 */
const APP_ROLE = 'tenantplane_app';
const PARALLEL = 24;

let app: TestApp;
let sql: pg.Client;

beforeAll(async () => {
  // A pool as large as the burst, so the calls really are in the database at the same time.
  app = await startTestApp({ DATABASE_POOL_SIZE: String(PARALLEL) });
  sql = new pg.Client({ connectionString: app.databaseUrl });
  await sql.connect();
});
afterAll(async () => {
  await sql?.end();
  await app?.stop();
});

async function tenantOf(owner: TestUser, prefix: string) {
  const t = await createTenant(owner, prefix);
  const id: string = (await sql.query(`select id from app_public.tenants where slug = $1`, [t.slug])).rows[0].id;
  return { gid: t.id, id, slug: t.slug };
}

async function audit(tenantId: string, action: string) {
  const { rows } = await sql.query(
    `select outcome::text, details ->> 'error' as error, count(*)::int as n from app_public.audit_events where tenant_id = $1 and action = $2 group by 1, 2`,
    [tenantId, action],
  );
  return Object.fromEntries(rows.map((r) => [`${r.outcome}${r.error ? ` ${r.error}` : ''}`, r.n]));
}

function codes(results: Array<{ errors?: Array<{ extensions?: { code?: string } }> }>) {
  const out: Record<string, number> = {};
  for (const r of results) {
    const code = r.errors?.[0]?.extensions?.code ?? 'OK';
    out[code] = (out[code] ?? 0) + 1;
  }
  return out;
}

describe('sites (plans.max_sites)', () => {
  it(`${PARALLEL} concurrent createSite on a free tenant (2 sites): 2 sites, the rest QUOTA_EXCEEDED, nothing left`, async () => {
    const owner = await signUp(app, 'q-sites');
    const t = await tenantOf(owner, 'q-sites');
    const results = await Promise.all(
      Array.from({ length: PARALLEL }, (_, i) =>
        owner.gql.request(`mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } job { id } } }`, {
          i: { tenantId: t.gid, name: `qs-${process.pid}-${i}`, displayName: `Site ${i}` },
        }),
      ),
    );
    expect(codes(results)).toEqual({ OK: 2, QUOTA_EXCEEDED: PARALLEL - 2 });
    const refused = results.find((r) => r.errors)!.errors![0]!;
    expect(refused.message).toBe('the Free plan allows 2 sites');
    const counts = (
      await sql.query(
        `select (select count(*) from app_public.sites where tenant_id = $1)::int as sites,
                (select count(*) from app_public.jobs where tenant_id = $1 and type = 'site-provision')::int as jobs`,
        [t.id],
      )
    ).rows[0];
    expect(counts).toEqual({ sites: 2, jobs: 2 });
    expect(await audit(t.id, 'createSite')).toEqual({ SUCCESS: 2, 'FAILURE QUOTA_EXCEEDED': PARALLEL - 2 });
  });

  it('a DELETED site frees its place; the request role cannot insert past the cap either', async () => {
    const owner = await signUp(app, 'q-sites2');
    const t = await tenantOf(owner, 'q-sites2');
    const ownerId: string = (await sql.query(`select id from app_public.users where email = $1`, [owner.email])).rows[0].id;
    const insert = (name: string) =>
      sql.query(`insert into app_public.sites (tenant_id, name, display_name, domain, created_by) values ($1, $2, 'S', $2::text || '.test', $3)`, [t.id, name, ownerId]);
    await sql.query('begin');
    try {
      await sql.query(`select set_config('role', $1, true), set_config('app.user_id', $2, true)`, [APP_ROLE, ownerId]);
      // Two rows in one statement, then one more: the statement past the cap fails.
      await sql.query(
        `insert into app_public.sites (tenant_id, name, display_name, domain, created_by)
         select $1, 'qd-' || g || '-' || $3::text, 'S', 'qd-' || g || '-' || $3::text || '.test', $2 from generate_series(1, 2) g`,
        [t.id, ownerId, process.pid],
      );
      await sql.query('savepoint s');
      await expect(insert(`qd-3-${process.pid}`)).rejects.toMatchObject({ code: 'TPQU0', message: 'the Free plan allows 2 sites' });
      await sql.query('rollback to savepoint s');
      // A site that is DELETED no longer counts (the purge got to it).
      await sql.query(`update app_public.sites set status = 'SOFT_DELETED' where tenant_id = $1 and name = $2`, [t.id, `qd-1-${process.pid}`]);
      await sql.query('reset role');
      await sql.query(`update app_public.sites set status = 'DELETED' where tenant_id = $1 and name = $2`, [t.id, `qd-1-${process.pid}`]);
      await sql.query(`select set_config('role', $1, true)`, [APP_ROLE]);
      await insert(`qd-4-${process.pid}`);
    } finally {
      await sql.query('rollback');
    }
  });
});

describe("another tenant's quota is no oracle", () => {
  it("inserting into a full tenant B as A's owner is refused by RLS before any count, and GraphQL answers like a missing tenant", async () => {
    const a = await signUp(app, 'q-oracle-a');
    const b = await signUp(app, 'q-oracle-b');
    await tenantOf(a, 'q-oracle-a');
    const tb = await tenantOf(b, 'q-oracle-b');
    for (let i = 0; i < 2; i++) {
      await b.gql.ok(`mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } } }`, { i: { tenantId: tb.gid, name: `qo-${process.pid}-${i}`, displayName: 'B' } });
    }
    const aId: string = (await sql.query(`select id from app_public.users where email = $1`, [a.email])).rows[0].id;
    for (const narrowed of ['', tb.id]) {
      await sql.query('begin');
      try {
        await sql.query(`select set_config('role', $1, true), set_config('app.user_id', $2, true), set_config('app.tenant_id', $3, true)`, [APP_ROLE, aId, narrowed]);
        const e = await sql
          .query(`insert into app_public.sites (tenant_id, name, display_name, domain, created_by) values ($1, $2, 'S', $2::text || '.test', $3)`, [tb.id, `qo-x-${process.pid}`, aId])
          .catch((err) => err);
        expect(e).toMatchObject({ code: '42501', message: expect.stringMatching(/row-level security/) });
      } finally {
        await sql.query('rollback');
      }
    }
    const viaApi = await a.gql.request(`mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } } }`, { i: { tenantId: tb.gid, name: `qo-y-${process.pid}`, displayName: 'A' } });
    expect(viaApi.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('members (plans.max_members, pending invitations counted)', () => {
  it(`${PARALLEL} concurrent inviteMember on a free tenant (5 members, 1 owner): 4 invitations, the rest QUOTA_EXCEEDED`, async () => {
    const owner = await signUp(app, 'q-members');
    const t = await tenantOf(owner, 'q-members');
    const emails = Array.from({ length: PARALLEL }, (_, i) => uniqueEmail(`q-inv-${i}`));
    const results = await Promise.all(
      emails.map((email) =>
        owner.gql.request(`mutation($input: InviteMemberInput!) { inviteMember(input: $input) { id token } }`, { input: { tenantId: t.gid, email, role: 'MEMBER' } }),
      ),
    );
    expect(codes(results)).toEqual({ OK: 4, QUOTA_EXCEEDED: PARALLEL - 4 });
    expect(results.find((r) => r.errors)!.errors![0]!.message).toBe('the Free plan allows 5 members (counting pending invitations)');
    const { rows } = await sql.query(`select count(*)::int as n from app_public.invitations where tenant_id = $1`, [t.id]);
    expect(rows[0].n).toBe(4);
    expect(await audit(t.id, 'inviteMember')).toEqual({ SUCCESS: 4, 'FAILURE QUOTA_EXCEEDED': PARALLEL - 4 });

    // The 4 invitees accept at the same time: 5 members, and no room for anyone else (invitation or membership).
    const winners = results
      .map((r, i) => ({ r, email: emails[i]! }))
      .filter(({ r }) => !r.errors)
      .map(({ r, email }) => ({ email, token: (r.data as any).inviteMember.token as string }));
    const invitees = await Promise.all(winners.map((w) => signUpAs(w.email)));
    const accepted = await Promise.all(invitees.map((u, i) => u.gql.request(`mutation($t: String!) { acceptInvitation(token: $t) { id } }`, { t: winners[i]!.token })));
    expect(codes(accepted)).toEqual({ OK: 4 });
    expect((await sql.query(`select count(*)::int as n from app_public.memberships where tenant_id = $1`, [t.id])).rows[0].n).toBe(5);
    const more = await owner.gql.request(`mutation($input: InviteMemberInput!) { inviteMember(input: $input) { id } }`, {
      input: { tenantId: t.gid, email: uniqueEmail('q-late'), role: 'VIEWER' },
    });
    expect(more.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
  });

  it('the request role cannot insert invitations past the cap, one statement or many', async () => {
    const owner = await signUp(app, 'q-members2');
    const t = await tenantOf(owner, 'q-members2');
    const ownerId: string = (await sql.query(`select id from app_public.users where email = $1`, [owner.email])).rows[0].id;
    await sql.query('begin');
    try {
      await sql.query(`select set_config('role', $1, true), set_config('app.user_id', $2, true)`, [APP_ROLE, ownerId]);
      const e = await sql
        .query(
          `insert into app_public.invitations (tenant_id, email, role, token_hash, invited_by, expires_at)
           select $1, 'bulk-' || g || '@example.test', 'VIEWER', sha256(convert_to(g::text || $3::text, 'UTF8')), $2, now() + interval '1 day' from generate_series(1, 5) g`,
          [t.id, ownerId, crypto.randomUUID()],
        )
        .catch((err) => err);
      expect(e).toMatchObject({ code: 'TPQU0' });
    } finally {
      await sql.query('rollback');
    }
  });
});

/** Signs up a user with exactly this email (the invitation is addressed to it). */
async function signUpAs(email: string): Promise<TestUser> {
  const anon = new Gql(app);
  const data = await anon.ok(`mutation($input: SignUpInput!) { signUp(input: $input) { accessToken refreshToken user { id } } }`, {
    input: { email, password: PASSWORD, name: 'invitee' },
  });
  return { id: data.signUp.user.id, email, gql: new Gql(app, data.signUp.accessToken), refreshToken: data.signUp.refreshToken };
}

describe('storage bytes (plans.max_storage_bytes, deduplicated bytes counted once)', () => {
  async function tinyTenant(prefix: string, maxBytes: number) {
    const owner = await signUp(app, prefix);
    const t = await tenantOf(owner, prefix);
    const plan = `tiny-${crypto.randomBytes(3).toString('hex')}`;
    await sql.query(`insert into app_public.plans (id, name, max_members, max_storage_bytes, max_sites) values ($1, 'Tiny', 5, $2, 1)`, [plan, maxBytes]);
    await sql.query(`update app_public.tenants set plan_id = $2 where id = $1`, [t.id, plan]);
    return { owner, t };
  }
  const announce = (owner: TestUser, tenantGid: string, bytes: Buffer, name = `f-${crypto.randomBytes(4).toString('hex')}.txt`) =>
    owner.gql.request(CREATE_UPLOAD, { i: { tenantId: tenantGid, filename: name, sizeBytes: bytes.length, mimeType: 'text/plain', sha256: sha256hex(bytes) } });

  it(`${PARALLEL} concurrent createUpload of distinct 100-byte files under a 1,000-byte plan: 10 accepted, the rest QUOTA_EXCEEDED; all 10 complete`, async () => {
    const { owner, t } = await tinyTenant('q-bytes', 1000);
    const files = Array.from({ length: PARALLEL }, () => crypto.randomBytes(100));
    const results = await Promise.all(files.map((b) => announce(owner, t.gid, b)));
    expect(codes(results)).toEqual({ OK: 10, QUOTA_EXCEEDED: PARALLEL - 10 });
    expect(results.find((r) => r.errors)!.errors![0]!.message).toMatch(/^the Tiny plan stores 1000 bytes; with this upload the tenant would need 1100 /);
    expect((await sql.query(`select count(*)::int as n from app_public.uploads where tenant_id = $1`, [t.id])).rows[0].n).toBe(10);
    expect(await audit(t.id, 'createUpload')).toEqual({ SUCCESS: 10, 'FAILURE QUOTA_EXCEEDED': PARALLEL - 10 });
    // The accepted ones send their bytes and complete concurrently: exactly at the cap.
    const done = await Promise.all(
      results.map(async (r, i) => {
        if (r.errors) return null;
        const ticket = (r.data as any).createUpload;
        await putBytes(ticket, files[i]!);
        return owner.gql.request(COMPLETE_UPLOAD, { u: ticket.id });
      }),
    );
    expect(codes(done.filter((d) => d !== null))).toEqual({ OK: 10 });
    expect((await sql.query(`select coalesce(sum(size_bytes), 0)::int as n from app_public.files where tenant_id = $1`, [t.id])).rows[0].n).toBe(1000);
    // Full: one more byte is refused at once.
    expect((await announce(owner, t.gid, Buffer.from('x'))).errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
  });

  it(`${PARALLEL} concurrent createUpload of the same 600 bytes under a 1,000-byte plan: all accepted (counted once); other 600 bytes refused`, async () => {
    const { owner, t } = await tinyTenant('q-dedup', 1000);
    const bytes = crypto.randomBytes(600);
    const results = await Promise.all(Array.from({ length: PARALLEL }, () => announce(owner, t.gid, bytes)));
    expect(codes(results)).toEqual({ OK: PARALLEL });
    const other = await announce(owner, t.gid, crypto.randomBytes(600));
    expect(other.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
    // Once stored, the same bytes are free to announce again (alreadyStored), and other bytes still do not fit.
    const first = (results[0]!.data as any).createUpload;
    await putBytes(first, bytes);
    expect((await owner.gql.request(COMPLETE_UPLOAD, { u: first.id })).errors).toBeUndefined();
    const again = await announce(owner, t.gid, bytes);
    expect((again.data as any)?.createUpload?.alreadyStored).toBe(true);
    expect((await announce(owner, t.gid, crypto.randomBytes(500))).errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
    expect((await announce(owner, t.gid, crypto.randomBytes(400))).errors).toBeUndefined();
  });

  it('an upload deleted before it completes (as the request role) frees its reservation and its bytes go too', async () => {
    const { owner, t } = await tinyTenant('q-abandon', 1000);
    const bytes = crypto.randomBytes(800);
    const ticket = (await announce(owner, t.gid, bytes)).data!.createUpload;
    await putBytes(ticket, bytes);
    const row = (await sql.query(`select id, object_key from app_public.uploads where tenant_id = $1`, [t.id])).rows[0];
    expect(await app.services.storage.size(row.object_key)).toBe(800);
    expect((await announce(owner, t.gid, crypto.randomBytes(800))).errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
    const ownerId: string = (await sql.query(`select id from app_public.users where email = $1`, [owner.email])).rows[0].id;
    await sql.query('begin');
    await sql.query(`select set_config('role', $1, true), set_config('app.user_id', $2, true)`, [APP_ROLE, ownerId]);
    expect((await sql.query(`delete from app_public.uploads where tenant_id = $1 and id = $2`, [t.id, row.id])).rowCount).toBe(1);
    await sql.query('commit');
    // The bytes sent under its key are deleted by the job the deletion enqueued; the room is free again.
    const start = Date.now();
    while ((await app.services.storage.size(row.object_key)) !== null) {
      if (Date.now() - start > 15000) throw new Error('the abandoned upload\'s bytes are still stored');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await announce(owner, t.gid, crypto.randomBytes(800))).errors).toBeUndefined();
  });

  it('the request role cannot store past the cap by inserting file rows itself', async () => {
    const { owner, t } = await tinyTenant('q-files', 1000);
    const ownerId: string = (await sql.query(`select id from app_public.users where email = $1`, [owner.email])).rows[0].id;
    await sql.query('begin');
    try {
      await sql.query(`select set_config('role', $1, true), set_config('app.user_id', $2, true)`, [APP_ROLE, ownerId]);
      const insert = (size: number) =>
        sql.query(
          `insert into app_public.files (tenant_id, sha256, size_bytes, mime_type, object_key) values ($1, $2, $3, 'text/plain', 'tenants/' || $1::uuid::text || '/objects/' || gen_random_uuid()::text)`,
          [t.id, crypto.randomBytes(32).toString('hex'), size],
        );
      await insert(900);
      await sql.query('savepoint s');
      await expect(insert(101)).rejects.toMatchObject({ code: 'TPQU0' });
      await sql.query('rollback to savepoint s');
      await insert(100);
    } finally {
      await sql.query('rollback');
    }
  });
});

describe('every limit of a plan is enforced by the database', () => {
  it('each max_* column of app_public.plans has a branch in app.enforce_tenant_quota and a trigger using it', async () => {
    const columns = (
      await sql.query(`select column_name from information_schema.columns where table_schema = 'app_public' and table_name = 'plans' and column_name like 'max\\_%' order by 1`)
    ).rows.map((r) => r.column_name as string);
    expect(columns).toEqual(['max_members', 'max_sites', 'max_storage_bytes']);
    const source: string = (await sql.query(`select prosrc from pg_proc where oid = 'app.enforce_tenant_quota()'::regprocedure`)).rows[0].prosrc;
    for (const c of columns) expect(source, c).toContain(`v_tenant.${c}`);
    const triggers = (
      await sql.query(
        `select tgrelid::regclass::text as t from pg_trigger where tgfoid = 'app.enforce_tenant_quota()'::regprocedure and tgenabled <> 'D' order by 1`,
      )
    ).rows.map((r) => r.t);
    expect(triggers).toEqual(['app_public.files', 'app_public.invitations', 'app_public.memberships', 'app_public.sites', 'app_public.uploads']);
  });

  it('a quota-counted insert under REPEATABLE READ (whose counts could miss concurrent rows) is refused as a serialization failure', async () => {
    const owner = await signUp(app, 'q-rr');
    const t = await tenantOf(owner, 'q-rr');
    const ownerId: string = (await sql.query(`select id from app_public.users where email = $1`, [owner.email])).rows[0].id;
    await sql.query('begin isolation level repeatable read');
    try {
      const e = await sql
        .query(`insert into app_public.sites (tenant_id, name, display_name, domain, created_by) values ($1, $2, 'S', $2::text || '.test', $3)`, [t.id, `rr-${process.pid}`, ownerId])
        .catch((err) => err);
      expect(e).toMatchObject({ code: '40001' });
    } finally {
      await sql.query('rollback');
    }
  });
});
