import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startTestApp, type TestApp } from './support/app.ts';
import { addMember, createTenant, signUp, uniqueEmail, type TestUser } from './support/client.ts';

/**
 * The policies of sql/ as a matrix, below the API: SQL sent on a connection switched to the request role, exactly as
 * src/db/database.ts does it. User A (owner of tenant A) aims every statement at tenant B's rows; the same statement
 * aimed at A's own rows is the control that proves the statement would have worked, and the same statement run
 * as the superuser proves B's rows exist and match it. Every transaction is rolled back.
 */
const APP_ROLE = 'tenantplane_app';

interface Side {
  tenantId: string;
  slug: string;
  ownerId: string;
  memberId: string;
  /** A chat session of the owner and one of the member, each with one message (sql/0006: private to their user). */
  ownerSessionId: string;
  memberSessionId: string;
}

let app: TestApp;
let db: pg.Client;
let A: Side;
let B: Side;
let staffId: string;

const uuidOf = (globalId: string) => decodeGlobalID(globalId).id;

async function setUpTenant(prefix: string): Promise<Side> {
  const owner = await signUp(app, `${prefix}-owner`);
  const member = await signUp(app, `${prefix}-member`);
  const tenant = await createTenant(owner, prefix);
  await addMember(owner, tenant.id, member, 'MEMBER');
  // A pending invitation (the member's one is accepted by now).
  await owner.gql.ok(`mutation($input: InviteMemberInput!) { inviteMember(input: $input) { id } }`, {
    input: { tenantId: tenant.id, email: uniqueEmail(`${prefix}-pending`), role: 'VIEWER' },
  });
  // Chats of each, and a social link of the tenant.
  const chat = async (u: TestUser) => {
    const s = await u.gql.ok(`mutation($i: CreateChatSessionInput!) { createChatSession(input: $i) { id } }`, { i: { tenantId: tenant.id, title: `${prefix} chat` } });
    await u.gql.ok(`mutation($i: PostMessageInput!) { postMessage(input: $i) { id } }`, { i: { sessionId: s.createChatSession.id, role: 'USER', content: 'hello' } });
    return (JSON.parse(uuidOf(s.createChatSession.id)) as [string, string])[1];
  };
  const [ownerSessionId, memberSessionId] = [await chat(owner), await chat(member)];
  await owner.gql.ok(`mutation($i: AddSocialLinkInput!) { addSocialLink(input: $i) { id } }`, {
    i: { tenantId: tenant.id, platform: 'TWITTER', url: `https://twitter.com/${prefix}` },
  });
  return { tenantId: uuidOf(tenant.id), slug: tenant.slug, ownerId: uuidOf(owner.id), memberId: uuidOf(member.id), ownerSessionId, memberSessionId };
}

beforeAll(async () => {
  app = await startTestApp();
  A = await setUpTenant('pol-a');
  B = await setUpTenant('pol-b');
  const staff: TestUser = await signUp(app, 'pol-staff');
  staffId = uuidOf(staff.id);
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  await db.query(`update app_public.users set platform_role = 'SUPERADMIN' where id = $1`, [staffId]);
  // The set-up wrote what the matrix needs on both sides.
  for (const side of [A, B]) {
    const { rows } = await db.query(
      `select (select count(*) from app_public.memberships where tenant_id = $1)::int as memberships,
              (select count(*) from app_public.invitations where tenant_id = $1 and accepted_at is null)::int as pending,
              (select count(*) from app_public.invitations where tenant_id = $1)::int as invitations,
              (select count(*) from app_public.audit_events where tenant_id = $1)::int as audit`,
      [side.tenantId],
    );
    expect(rows[0].memberships).toBe(2);
    expect(rows[0].pending).toBe(1);
    expect(rows[0].invitations).toBe(2);
    expect(rows[0].audit).toBeGreaterThanOrEqual(3);
  }
});
afterAll(async () => {
  await db?.end();
  await app?.stop();
});

interface Ctx {
  userId?: string | null;
  tenant?: string | null;
}

/** One transaction, always rolled back: as the request role with ctx, or as the superuser when ctx is null. */
async function inTx<T>(ctx: Ctx | null, fn: () => Promise<T>): Promise<T> {
  await db.query('begin');
  try {
    if (ctx) {
      await db.query(`select set_config('role', $1, true), set_config('app.user_id', $2, true), set_config('app.tenant_id', $3, true)`, [
        APP_ROLE,
        ctx.userId ?? '',
        ctx.tenant ?? '',
      ]);
    }
    return await fn();
  } finally {
    await db.query('rollback');
  }
}

type Outcome = number | 'all' | 'permission' | 'rls';

/** rowCount, or the kind of refusal: 'permission' (no grant) or 'rls' (a WITH CHECK policy refused the row). */
async function outcome(sql: string, params: unknown[]): Promise<number | 'permission' | 'rls'> {
  try {
    const r = await db.query(sql, params);
    return r.rowCount ?? 0;
  } catch (e) {
    const err = e as { code?: string; message: string };
    if (err.code === '42501' && /row-level security/.test(err.message)) return 'rls';
    if (err.code === '42501' && /permission denied/.test(err.message)) return 'permission';
    throw e;
  }
}

interface Case {
  name: string;
  /** The statement aimed at `target`'s rows, run by `actor`. */
  sql: (target: Side, actorId: string) => [string, unknown[]];
  /** A aiming at B. Never rows: 0 or a refusal. */
  foreign: 0 | 'permission' | 'rls';
  /** A aiming at A (the control): 'all' = as many rows as the superuser gets. */
  own: Outcome;
  /** Platform staff (SUPERADMIN, member of nothing) aiming at B. */
  staff: Outcome;
  /** Inserts add rows whatever exists; everything else must match some of B's rows for the superuser. */
  insert?: boolean;
}

const token = () => crypto.randomBytes(32);
const inAWeek = () => new Date(Date.now() + 7 * 86400_000);

const cases: Case[] = [
  // SELECT
  { name: 'select tenants', sql: (t) => [`select * from app_public.tenants where id = $1`, [t.tenantId]], foreign: 0, own: 'all', staff: 'all' },
  { name: 'select tenant by slug', sql: (t) => [`select * from app_public.tenants where slug = $1`, [t.slug]], foreign: 0, own: 'all', staff: 'all' },
  { name: 'select memberships', sql: (t) => [`select * from app_public.memberships where tenant_id = $1`, [t.tenantId]], foreign: 0, own: 'all', staff: 'all' },
  { name: 'select invitations', sql: (t) => [`select * from app_public.invitations where tenant_id = $1`, [t.tenantId]], foreign: 0, own: 'all', staff: 0 },
  { name: 'select audit_events', sql: (t) => [`select * from app_public.audit_events where tenant_id = $1`, [t.tenantId]], foreign: 0, own: 'all', staff: 'all' },
  { name: 'select owner user', sql: (t) => [`select * from app_public.users where id = $1`, [t.ownerId]], foreign: 0, own: 'all', staff: 'all' },
  { name: 'select member user', sql: (t) => [`select * from app_public.users where id = $1`, [t.memberId]], foreign: 0, own: 'all', staff: 'all' },

  // UPDATE … RETURNING
  { name: 'update tenants', sql: (t) => [`update app_public.tenants set name = 'pwned', updated_at = now() where id = $1 returning *`, [t.tenantId]], foreign: 0, own: 'all', staff: 0 },
  { name: 'update tenants.status (no column grant)', sql: (t) => [`update app_public.tenants set status = 'SUSPENDED' where id = $1 returning *`, [t.tenantId]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'update memberships', sql: (t) => [`update app_public.memberships set updated_at = now() where tenant_id = $1 returning *`, [t.tenantId]], foreign: 0, own: 'all', staff: 0 },
  { name: 'promote a membership', sql: (t) => [`update app_public.memberships set role = 'OWNER' where tenant_id = $1 and user_id = $2 returning *`, [t.tenantId, t.memberId]], foreign: 0, own: 'all', staff: 0 },
  { name: "move tenant A's memberships into the target tenant", sql: (t) => [`update app_public.memberships set tenant_id = $1 where tenant_id = $2 returning *`, [t.tenantId, A.tenantId]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'update invitations (no grant)', sql: (t) => [`update app_public.invitations set role = 'OWNER' where tenant_id = $1 returning *`, [t.tenantId]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'update audit_events (no grant)', sql: (t) => [`update app_public.audit_events set action = 'rewritten' where tenant_id = $1 returning *`, [t.tenantId]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'update owner user', sql: (t) => [`update app_public.users set name = 'pwned', updated_at = now() where id = $1 returning *`, [t.ownerId]], foreign: 0, own: 'all', staff: 0 },
  { name: 'update member user', sql: (t) => [`update app_public.users set name = 'pwned' where id = $1 returning *`, [t.memberId]], foreign: 0, own: 0, staff: 0 },
  { name: 'update users.platform_role (no column grant)', sql: (t) => [`update app_public.users set platform_role = 'SUPERADMIN' where id = $1 returning *`, [t.ownerId]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'update users.email (no column grant)', sql: (t) => [`update app_public.users set email = 'x@example.test' where id = $1 returning *`, [t.ownerId]], foreign: 'permission', own: 'permission', staff: 'permission' },

  // DELETE … RETURNING
  { name: 'delete tenants (no grant)', sql: (t) => [`delete from app_public.tenants where id = $1 returning *`, [t.tenantId]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'delete member membership', sql: (t) => [`delete from app_public.memberships where tenant_id = $1 and user_id = $2 returning *`, [t.tenantId, t.memberId]], foreign: 0, own: 'all', staff: 0 },
  { name: 'delete invitations', sql: (t) => [`delete from app_public.invitations where tenant_id = $1 returning *`, [t.tenantId]], foreign: 0, own: 'all', staff: 0 },
  { name: 'delete audit_events (no grant)', sql: (t) => [`delete from app_public.audit_events where tenant_id = $1 returning *`, [t.tenantId]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'delete users (no grant)', sql: (t) => [`delete from app_public.users where id = $1 returning *`, [t.memberId]], foreign: 'permission', own: 'permission', staff: 'permission' },

  // INSERT with the target's tenant_id
  { name: 'insert memberships (no grant)', insert: true, sql: (t, actor) => [`insert into app_public.memberships (tenant_id, user_id, role) values ($1, $2, 'OWNER')`, [t.tenantId, actor]], foreign: 'permission', own: 'permission', staff: 'permission' },
  {
    name: 'insert invitations',
    insert: true,
    sql: (t, actor) => [
      `insert into app_public.invitations (tenant_id, email, role, token_hash, invited_by, expires_at) values ($1, $2, 'VIEWER', $3, $4, $5)`,
      [t.tenantId, uniqueEmail('probe'), token(), actor, inAWeek()],
    ],
    foreign: 'rls',
    own: 1,
    staff: 'rls',
  },
  {
    name: 'insert invitations in the name of the target owner',
    insert: true,
    sql: (t) => [
      `insert into app_public.invitations (tenant_id, email, role, token_hash, invited_by, expires_at) values ($1, $2, 'VIEWER', $3, $4, $5)`,
      [t.tenantId, uniqueEmail('probe'), token(), t.ownerId, inAWeek()],
    ],
    foreign: 'rls',
    own: 1, // for A's own tenant the target owner is A
    staff: 'rls',
  },
  {
    name: 'insert audit_events',
    insert: true,
    sql: (t, actor) => [`insert into app_public.audit_events (tenant_id, actor_id, action, outcome) values ($1, $2, 'probe', 'SUCCESS')`, [t.tenantId, actor]],
    foreign: 'rls',
    own: 1,
    staff: 'rls',
  },
  {
    name: 'insert audit_events as another actor',
    insert: true,
    sql: (t) => [`insert into app_public.audit_events (tenant_id, actor_id, action, outcome) values ($1, $2, 'probe', 'SUCCESS')`, [t.tenantId, t.memberId]],
    foreign: 'rls',
    own: 'rls',
    staff: 'rls',
  },
  { name: 'insert tenants (no grant)', insert: true, sql: () => [`insert into app_public.tenants (slug, name) values ($1, 'x')`, [`probe-${crypto.randomBytes(4).toString('hex')}`]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'insert users (no grant)', insert: true, sql: () => [`insert into app_public.users (email, name) values ($1, 'x')`, [uniqueEmail('probe')]], foreign: 'permission', own: 'permission', staff: 'permission' },

  // Chats (private to their user, even inside the tenant) and social links (sql/0006)
  { name: "select the owner's chat_sessions", sql: (t) => [`select * from app_public.chat_sessions where tenant_id = $1 and user_id = $2`, [t.tenantId, t.ownerId]], foreign: 0, own: 'all', staff: 0 },
  { name: "select a member's chat_sessions (private)", sql: (t) => [`select * from app_public.chat_sessions where tenant_id = $1 and user_id = $2`, [t.tenantId, t.memberId]], foreign: 0, own: 0, staff: 0 },
  { name: "select the owner's chat_messages", sql: (t) => [`select * from app_public.chat_messages where tenant_id = $1 and session_id = $2`, [t.tenantId, t.ownerSessionId]], foreign: 0, own: 'all', staff: 0 },
  { name: "select a member's chat_messages (private)", sql: (t) => [`select * from app_public.chat_messages where tenant_id = $1 and session_id = $2`, [t.tenantId, t.memberSessionId]], foreign: 0, own: 0, staff: 0 },
  { name: 'select social_links', sql: (t) => [`select * from app_public.social_links where tenant_id = $1`, [t.tenantId]], foreign: 0, own: 'all', staff: 0 },
  { name: "update the owner's chat_sessions.updated_at", sql: (t) => [`update app_public.chat_sessions set updated_at = now() where tenant_id = $1 and id = $2 returning *`, [t.tenantId, t.ownerSessionId]], foreign: 0, own: 'all', staff: 0 },
  { name: "update a member's chat_sessions.updated_at", sql: (t) => [`update app_public.chat_sessions set updated_at = now() where tenant_id = $1 and id = $2 returning *`, [t.tenantId, t.memberSessionId]], foreign: 0, own: 0, staff: 0 },
  { name: 'update chat_sessions.title (no column grant)', sql: (t) => [`update app_public.chat_sessions set title = 'pwned' where tenant_id = $1 returning *`, [t.tenantId]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'take over chat_sessions.user_id (no column grant)', sql: (t, actor) => [`update app_public.chat_sessions set user_id = $2 where tenant_id = $1 returning *`, [t.tenantId, actor]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'update chat_messages (no grant)', sql: (t) => [`update app_public.chat_messages set content = 'rewritten' where tenant_id = $1 returning *`, [t.tenantId]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'update social_links (no grant)', sql: (t) => [`update app_public.social_links set url = 'https://twitter.com/pwned' where tenant_id = $1 returning *`, [t.tenantId]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'delete chat_sessions (no grant)', sql: (t) => [`delete from app_public.chat_sessions where tenant_id = $1 returning *`, [t.tenantId]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'delete chat_messages (no grant)', sql: (t) => [`delete from app_public.chat_messages where tenant_id = $1 returning *`, [t.tenantId]], foreign: 'permission', own: 'permission', staff: 'permission' },
  { name: 'delete social_links', sql: (t) => [`delete from app_public.social_links where tenant_id = $1 returning *`, [t.tenantId]], foreign: 0, own: 'all', staff: 0 },
  { name: 'insert chat_sessions', insert: true, sql: (t, actor) => [`insert into app_public.chat_sessions (tenant_id, user_id, title) values ($1, $2, 'probe')`, [t.tenantId, actor]], foreign: 'rls', own: 1, staff: 'rls' },
  { name: 'insert chat_sessions for the target member', insert: true, sql: (t) => [`insert into app_public.chat_sessions (tenant_id, user_id, title) values ($1, $2, 'probe')`, [t.tenantId, t.memberId]], foreign: 'rls', own: 'rls', staff: 'rls' },
  { name: "insert chat_messages into the owner's session", insert: true, sql: (t) => [`insert into app_public.chat_messages (tenant_id, session_id, role, content) values ($1, $2, 'USER', 'probe')`, [t.tenantId, t.ownerSessionId]], foreign: 'rls', own: 1, staff: 'rls' },
  { name: "insert chat_messages into a member's session", insert: true, sql: (t) => [`insert into app_public.chat_messages (tenant_id, session_id, role, content) values ($1, $2, 'USER', 'probe')`, [t.tenantId, t.memberSessionId]], foreign: 'rls', own: 'rls', staff: 'rls' },
  {
    name: 'insert social_links',
    insert: true,
    sql: (t, actor) => [`insert into app_public.social_links (tenant_id, platform, url, created_by) values ($1, 'YOUTUBE', $2, $3)`, [t.tenantId, `https://youtube.com/@${crypto.randomBytes(4).toString('hex')}`, actor]],
    foreign: 'rls',
    own: 1,
    staff: 'rls',
  },
  {
    name: 'insert social_links in the name of the target member',
    insert: true,
    sql: (t) => [`insert into app_public.social_links (tenant_id, platform, url, created_by) values ($1, 'YOUTUBE', $2, $3)`, [t.tenantId, `https://youtube.com/@${crypto.randomBytes(4).toString('hex')}`, t.memberId]],
    foreign: 'rls',
    own: 'rls',
    staff: 'rls',
  },
];

describe('user A (owner of tenant A) against tenant B, statement by statement', () => {
  it.each(cases)('$name', async (c) => {
    const expectFor = async (actorId: string, target: Side, expected: Outcome, label: string) => {
      const [sql, params] = c.sql(target, actorId);
      const privileged = c.insert ? undefined : await inTx(null, () => outcome(sql, params));
      if (!c.insert) expect(privileged, `${label}: the superuser's run must match rows, or the case proves nothing`).toBeGreaterThan(0);
      const got = await inTx({ userId: actorId }, () => outcome(sql, params));
      expect(got, label).toBe(expected === 'all' ? privileged : expected);
    };
    await expectFor(A.ownerId, B, c.foreign, 'A → B');
    await expectFor(A.ownerId, A, c.own, 'A → A (control)');
    await expectFor(staffId, B, c.staff, 'platform staff → B');
  });

  it('sees only its own tenant in whole-table reads', async () => {
    await inTx({ userId: A.ownerId }, async () => {
      const tenants = await db.query(`select id from app_public.tenants`);
      expect(tenants.rows.map((r) => r.id)).toEqual([A.tenantId]);
      for (const table of ['memberships', 'invitations', 'audit_events', 'chat_sessions', 'chat_messages', 'social_links']) {
        const { rows } = await db.query(`select distinct tenant_id from app_public.${table}`);
        expect(rows.map((r) => r.tenant_id), table).toEqual([A.tenantId]);
      }
      const users = await db.query(`select id from app_public.users order by id`);
      expect(users.rows.map((r) => r.id)).toEqual([A.ownerId, A.memberId].sort());
    });
  });

  it('gets nothing from the SECURITY DEFINER helpers about B', async () => {
    await inTx({ userId: A.ownerId }, async () => {
      const { rows } = await db.query(
        `select app.tenant_role($1) as role, app.has_tenant_role($1, 'VIEWER') as viewer, app.can_manage_role($1, 'VIEWER') as manage,
                $1 = any (app.visible_tenant_ids()) as visible, app.is_platform_staff() as staff`,
        [B.tenantId],
      );
      expect(rows[0]).toEqual({ role: null, viewer: false, manage: false, visible: false, staff: false });
    });
  });
});

describe('X-Tenant narrowing (app.tenant_id)', () => {
  const counts = async () => {
    const { rows } = await db.query(
      `select (select count(*) from app_public.tenants)::int as tenants,
              (select count(*) from app_public.memberships)::int as memberships,
              (select count(*) from app_public.invitations)::int as invitations,
              (select count(*) from app_public.audit_events)::int as audit_events,
              (select array_agg(id) from app_public.users) as users`,
    );
    return rows[0] as { tenants: number; memberships: number; invitations: number; audit_events: number; users: string[] };
  };

  it.each([
    ['slug', () => B.slug],
    ['id', () => B.tenantId],
  ])("to tenant B's %s leaves user A nothing of A (and of course nothing of B)", async (_kind, value) => {
    await inTx({ userId: A.ownerId, tenant: value() }, async () => {
      const c = await counts();
      expect(c).toMatchObject({ tenants: 0, memberships: 0, invitations: 0, audit_events: 0 });
      // Only A's own user row stays visible (users_select lets everyone see themselves).
      expect(c.users).toEqual([A.ownerId]);
      expect(await outcome(`update app_public.tenants set name = 'narrowed' where id = $1 returning *`, [A.tenantId])).toBe(0);
      expect(await outcome(`delete from app_public.invitations where tenant_id = $1 returning *`, [A.tenantId])).toBe(0);
      expect(
        await outcome(`insert into app_public.audit_events (tenant_id, actor_id, action, outcome) values ($1, $2, 'probe', 'SUCCESS')`, [A.tenantId, A.ownerId]),
      ).toBe('rls');
    });
  });

  it.each([
    ['slug', () => A.slug],
    ['id', () => A.tenantId],
    ['id in capitals', () => A.tenantId.toUpperCase()],
  ])("to tenant A's own %s keeps A's tenant (control)", async (_kind, value) => {
    await inTx({ userId: A.ownerId, tenant: value() }, async () => {
      const c = await counts();
      expect(c.tenants).toBe(1);
      expect(c.memberships).toBe(2);
    });
  });

  it('to an unknown tenant shows nothing', async () => {
    await inTx({ userId: A.ownerId, tenant: crypto.randomUUID() }, async () => {
      expect(await counts()).toMatchObject({ tenants: 0, memberships: 0, invitations: 0, audit_events: 0 });
    });
  });
});

describe('without a user', () => {
  const nothingVisible = async () => {
    for (const table of ['tenants', 'memberships', 'invitations', 'audit_events', 'users', 'chat_sessions', 'chat_messages', 'social_links']) {
      const { rows } = await db.query(`select count(*)::int as n from app_public.${table}`);
      expect(rows[0].n, table).toBe(0);
    }
    // The role switch did happen: plans are readable by everyone.
    const plans = await db.query(`select count(*)::int as n from app_public.plans`);
    expect(plans.rows[0].n).toBeGreaterThan(0);
  };

  it("app.user_id = '' sees no tenant, membership, invitation, audit entry or user", async () => {
    await inTx({ userId: '' }, nothingVisible);
  });

  it("app.user_id = '' with X-Tenant set still sees nothing", async () => {
    await inTx({ userId: '', tenant: B.slug }, nothingVisible);
  });

  it('app.user_id never set on the session sees nothing either', async () => {
    const fresh = new pg.Client({ connectionString: app.databaseUrl });
    await fresh.connect();
    try {
      await fresh.query('begin');
      await fresh.query(`select set_config('role', $1, true)`, [APP_ROLE]);
      const { rows } = await fresh.query(`select current_setting('app.user_id', true) as u`);
      expect(rows[0].u).toBeNull();
      for (const table of ['tenants', 'memberships', 'invitations', 'audit_events', 'users', 'chat_sessions', 'chat_messages', 'social_links']) {
        const r = await fresh.query(`select count(*)::int as n from app_public.${table}`);
        expect(r.rows[0].n, table).toBe(0);
      }
      await fresh.query('rollback');
    } finally {
      await fresh.end();
    }
  });

  it('an unknown user id sees nothing; a malformed one reads as no user (sql/0016: zero rows, no error)', async () => {
    await inTx({ userId: crypto.randomUUID() }, nothingVisible);
    await inTx({ userId: 'not-a-uuid' }, nothingVisible);
  });

  it('cannot write anywhere', async () => {
    await inTx({ userId: '' }, async () => {
      expect(await outcome(`update app_public.tenants set name = 'x' returning *`, [])).toBe(0);
      expect(await outcome(`update app_public.memberships set updated_at = now() returning *`, [])).toBe(0);
      expect(await outcome(`update app_public.users set name = 'x' returning *`, [])).toBe(0);
      expect(await outcome(`delete from app_public.memberships returning *`, [])).toBe(0);
      expect(await outcome(`delete from app_public.invitations returning *`, [])).toBe(0);
      expect(
        await outcome(`insert into app_public.audit_events (tenant_id, actor_id, action, outcome) values ($1, null, 'probe', 'SUCCESS')`, [B.tenantId]),
      ).toBe('rls');
    });
  });
});

describe('platform staff', () => {
  it('sees every tenant but can change none of them', async () => {
    await inTx({ userId: staffId }, async () => {
      const { rows } = await db.query(`select id from app_public.tenants`);
      const ids = rows.map((r) => r.id);
      expect(ids).toContain(A.tenantId);
      expect(ids).toContain(B.tenantId);
      const all = await db.query(`select count(*)::int as n from app_public.tenants`);
      expect(rows.length).toBe(all.rows[0].n);
      expect(await outcome(`update app_public.tenants set name = 'staff was here' where id = $1 returning *`, [B.tenantId])).toBe(0);
      expect(await outcome(`update app_public.tenants set name = 'staff was here' returning *`, [])).toBe(0);
    });
    const { rows } = await db.query(`select name from app_public.tenants where id = $1`, [B.tenantId]);
    expect(rows[0].name).not.toBe('staff was here');
  });

  it('is staff only while platform_role says so', async () => {
    const plain = await signUp(app, 'pol-plain');
    await inTx({ userId: uuidOf(plain.id) }, async () => {
      const { rows } = await db.query(`select count(*)::int as n from app_public.tenants`);
      expect(rows[0].n).toBe(0);
    });
  });
});
