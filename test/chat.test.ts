import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, addMember, createTenant, signUp, type TestUser } from './support/client.ts';

/**
 * Chat sessions through the API: members start and use their own; nobody else (other members, admins, the owner)
 * sees or writes to them, which the RLS policies of sql/0006 decide; viewers read only.
 */
let app: TestApp;
let owner: TestUser, member: TestUser, other: TestUser, viewer: TestUser;
let tenant: { id: string; slug: string };
let elsewhere: { id: string; slug: string };

const CREATE = `mutation($i: CreateChatSessionInput!) { createChatSession(input: $i) { id title createdAt updatedAt owner { id } } }`;
const POST = `mutation($i: PostMessageInput!) { postMessage(input: $i) { id role content createdAt session { id updatedAt } } }`;
const LIST = `query($s: String!, $first: Int, $after: String) {
  tenant(slug: $s) { chatSessions(first: $first, after: $after) { totalCount edges { cursor node { id title updatedAt } } pageInfo { hasNextPage endCursor } } }
}`;
const SESSION = `query($id: ID!, $first: Int, $after: String) {
  node(id: $id) { id ... on ChatSession { title owner { id } messages(first: $first, after: $after) { totalCount edges { node { id role content } } pageInfo { hasNextPage endCursor } } } }
}`;

const gid = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64');
const decode = (globalId: string) => Buffer.from(globalId, 'base64').toString();

async function createSession(u: TestUser, title: string, tenantId = tenant.id) {
  return (await u.gql.ok(CREATE, { i: { tenantId, title } })).createChatSession as { id: string; title: string; createdAt: string; updatedAt: string; owner: { id: string } };
}
async function post(u: TestUser, sessionId: string, content: string, role = 'USER') {
  return (await u.gql.ok(POST, { i: { sessionId, role, content } })).postMessage;
}
async function sessionIds(u: TestUser, slug = tenant.slug) {
  const r = await u.gql.ok(LIST, { s: slug, first: 100 });
  return r.tenant.chatSessions.edges.map((e: any) => e.node.id) as string[];
}
async function messageCount(sessionGlobalId: string) {
  const c = new pg.Client({ connectionString: app.databaseUrl });
  await c.connect();
  const [tenantId, id] = JSON.parse(decode(sessionGlobalId).replace(/^ChatSession:/, '')) as [string, string];
  const { rows } = await c.query(`select count(*)::int as n from app_public.chat_messages where tenant_id = $1 and session_id = $2`, [tenantId, id]);
  await c.end();
  return rows[0].n as number;
}

beforeAll(async () => {
  app = await startTestApp();
  [owner, member, other, viewer] = await Promise.all(['owner', 'member', 'other', 'viewer'].map((n) => signUp(app, n)));
  tenant = await createTenant(owner, 'chat');
  await addMember(owner, tenant.id, member, 'MEMBER');
  await addMember(owner, tenant.id, other, 'MEMBER');
  await addMember(owner, tenant.id, viewer, 'VIEWER');
  elsewhere = await createTenant(member, 'chat-else');
});
afterAll(async () => {
  await app?.stop();
});

describe('chat sessions', () => {
  it('a member creates sessions and posts messages; the title is trimmed and the owner is the member', async () => {
    const s = await createSession(member, '  Planning  ');
    expect(s.title).toBe('Planning');
    expect(s.owner.id).toBe(member.id);
    expect(decode(s.id)).toMatch(/^ChatSession:/);
    const m = await post(member, s.id, 'Hello there', 'USER');
    expect(m).toMatchObject({ role: 'USER', content: 'Hello there', session: { id: s.id } });
    const a = await post(member, s.id, '  General Kenobi  ', 'ASSISTANT');
    expect(a).toMatchObject({ role: 'ASSISTANT', content: '  General Kenobi  ' }); // content is kept as written
    expect(new Date(a.session.updatedAt).getTime()).toBeGreaterThanOrEqual(new Date(a.createdAt).getTime());
    expect(new Date(a.session.updatedAt).getTime()).toBeGreaterThan(new Date(s.updatedAt).getTime());
    const r = await member.gql.ok(SESSION, { id: s.id, first: 10 });
    expect(r.node.messages.edges.map((e: any) => e.node.content)).toEqual(['Hello there', '  General Kenobi  ']);
    // Messages are nodes too.
    expect((await member.gql.ok(`query($id: ID!) { node(id: $id) { ... on ChatMessage { content } } }`, { id: m.id })).node.content).toBe('Hello there');
  });

  it('lists your sessions most recently active first, paginated; a new message moves a session to the top', async () => {
    // A tenant of the lister's own (owners chat too), so that only these three sessions are in it.
    const u = await signUp(app, 'lister');
    const t = await createTenant(u, 'chat-list');
    const s1 = await createSession(u, 'one', t.id);
    const s2 = await createSession(u, 'two', t.id);
    const s3 = await createSession(u, 'three', t.id);
    expect(await sessionIds(u, t.slug)).toEqual([s3.id, s2.id, s1.id]);
    await post(u, s1.id, 'bump');
    expect(await sessionIds(u, t.slug)).toEqual([s1.id, s3.id, s2.id]);

    const page1 = (await u.gql.ok(LIST, { s: t.slug, first: 2 })).tenant.chatSessions;
    expect(page1.totalCount).toBe(3);
    expect(page1.edges.map((e: any) => e.node.title)).toEqual(['one', 'three']);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = (await u.gql.ok(LIST, { s: t.slug, first: 2, after: page1.pageInfo.endCursor })).tenant.chatSessions;
    expect(page2.edges.map((e: any) => e.node.title)).toEqual(['two']);
    expect(page2.pageInfo.hasNextPage).toBe(false);
  });

  it('pages messages oldest to newest, also when several are posted in one request', async () => {
    const s = await createSession(member, 'paging');
    for (let i = 1; i <= 3; i++) await post(member, s.id, `m${i}`, i % 2 ? 'USER' : 'ASSISTANT');
    // One request = one transaction: the order must still follow the order of posting.
    await member.gql.ok(
      `mutation($s: ID!) {
        a: postMessage(input: { sessionId: $s, role: USER, content: "m4" }) { id }
        b: postMessage(input: { sessionId: $s, role: ASSISTANT, content: "m5" }) { id }
        c: postMessage(input: { sessionId: $s, role: USER, content: "m6" }) { id }
      }`,
      { s: s.id },
    );
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 10; page++) {
      const r = (await member.gql.ok(SESSION, { id: s.id, first: 4, after })).node.messages;
      expect(r.totalCount).toBe(6);
      seen.push(...r.edges.map((e: any) => e.node.content));
      if (!r.pageInfo.hasNextPage) break;
      after = r.pageInfo.endCursor;
    }
    expect(seen).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    const roles = (await member.gql.ok(SESSION, { id: s.id, first: 2 })).node.messages.edges.map((e: any) => e.node.role);
    expect(roles).toEqual(['USER', 'ASSISTANT']);
  });
});

describe('privacy inside one tenant', () => {
  it('another member, an admin-level owner and a viewer cannot list, read or write to a member’s session', async () => {
    const s = await createSession(member, 'private thoughts');
    const m = await post(member, s.id, 'secret');
    const before = await messageCount(s.id);
    for (const u of [other, owner, viewer]) {
      const ids = await sessionIds(u);
      expect(ids, u.email).not.toContain(s.id);
      const total = (await u.gql.ok(LIST, { s: tenant.slug, first: 100 })).tenant.chatSessions.totalCount;
      expect(total, u.email).toBe(ids.length);
      expect((await u.gql.ok(`query($id: ID!) { node(id: $id) { id } }`, { id: s.id })).node, u.email).toBeNull();
      expect((await u.gql.ok(`query($id: ID!) { node(id: $id) { id } }`, { id: m.id })).node, u.email).toBeNull();
    }
    for (const u of [other, owner]) {
      const r = await u.gql.request(POST, { i: { sessionId: s.id, role: 'USER', content: 'let me in' } });
      expect(r.errors?.[0]?.extensions?.code, u.email).toBe('NOT_FOUND');
      expect(r.data?.postMessage ?? null).toBeNull();
    }
    // The answer is the same as for a session that does not exist.
    const [tenantUuid] = JSON.parse(decode(s.id).replace(/^ChatSession:/, '')) as [string];
    const missing = gid('ChatSession', JSON.stringify([tenantUuid, '00000000-0000-4000-8000-000000000000']));
    const forMissing = await other.gql.request(POST, { i: { sessionId: missing, role: 'USER', content: 'x' } });
    const forTheirs = await other.gql.request(POST, { i: { sessionId: s.id, role: 'USER', content: 'x' } });
    expect(forTheirs.errors?.[0]?.message).toBe(forMissing.errors?.[0]?.message);
    expect(forTheirs.errors?.[0]?.extensions).toEqual(forMissing.errors?.[0]?.extensions);
    expect(await messageCount(s.id)).toBe(before);
    // The member still sees everything of theirs.
    expect(await sessionIds(member)).toContain(s.id);
  });

  it('a session of another tenant is NOT_FOUND, even through a forged id naming your own tenant', async () => {
    const s = await createSession(member, 'elsewhere', elsewhere.id);
    const r = await other.gql.request(POST, { i: { sessionId: s.id, role: 'USER', content: 'x' } });
    expect(r.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const [, sessionUuid] = JSON.parse(decode(s.id).replace(/^ChatSession:/, '')) as [string, string];
    const [ownTenant] = JSON.parse(decode((await createSession(other, 'mine')).id).replace(/^ChatSession:/, '')) as [string];
    const forged = gid('ChatSession', JSON.stringify([ownTenant, sessionUuid]));
    expect(await other.gql.code(POST, { i: { sessionId: forged, role: 'USER', content: 'x' } })).toBe('NOT_FOUND');
    expect(await other.gql.code(CREATE, { i: { tenantId: elsewhere.id, title: 'x' } })).toBe('NOT_FOUND');
    expect(await messageCount(s.id)).toBe(0);
  });
});

describe('roles', () => {
  it('viewers cannot create sessions or post (FORBIDDEN), and a demoted member keeps reading but not posting', async () => {
    expect(await viewer.gql.code(CREATE, { i: { tenantId: tenant.id, title: 'x' } })).toBe('FORBIDDEN');
    const demoted = await signUp(app, 'demoted');
    await addMember(owner, tenant.id, demoted, 'MEMBER');
    const s = await createSession(demoted, 'before demotion');
    await post(demoted, s.id, 'still a member');
    await owner.gql.ok(`mutation($i: ChangeMemberRoleInput!) { changeMemberRole(input: $i) { role } }`, {
      i: { tenantId: tenant.id, userId: demoted.id, role: 'VIEWER' },
    });
    expect(await demoted.gql.code(POST, { i: { sessionId: s.id, role: 'USER', content: 'now a viewer' } })).toBe('FORBIDDEN');
    expect(await demoted.gql.code(CREATE, { i: { tenantId: tenant.id, title: 'x' } })).toBe('FORBIDDEN');
    const r = await demoted.gql.ok(SESSION, { id: s.id, first: 10 });
    expect(r.node.messages.edges.map((e: any) => e.node.content)).toEqual(['still a member']);
    expect(await messageCount(s.id)).toBe(1);
  });

  it('anonymous callers are UNAUTHENTICATED', async () => {
    const anon = new Gql(app);
    expect(await anon.code(CREATE, { i: { tenantId: tenant.id, title: 'x' } })).toBe('UNAUTHENTICATED');
    const s = await createSession(member, 'anon');
    expect(await anon.code(POST, { i: { sessionId: s.id, role: 'USER', content: 'x' } })).toBe('UNAUTHENTICATED');
    expect((await anon.ok(`query($id: ID!) { node(id: $id) { id } }`, { id: s.id })).node).toBeNull();
  });
});

describe('input', () => {
  async function expectBad(query: string, variables: Record<string, unknown>, field: string) {
    const r = await member.gql.request(query, variables);
    expect(r.errors?.[0]?.extensions?.code, JSON.stringify(variables).slice(0, 200)).toBe('BAD_USER_INPUT');
    expect(r.errors?.[0]?.extensions?.field, JSON.stringify(variables).slice(0, 200)).toBe(field);
  }

  it('titles have 1–200 characters after trimming, without control characters', async () => {
    for (const title of ['', '   ', '\t\n', 'a'.repeat(201), ` ${'b'.repeat(201)} `, 'line\nbreak', 'nul\u0000']) {
      await expectBad(CREATE, { i: { tenantId: tenant.id, title } }, 'title');
    }
    expect((await createSession(member, 'c'.repeat(200))).title).toHaveLength(200);
    expect((await createSession(member, ` ${'d'.repeat(200)} `)).title).toHaveLength(200);
  });

  it('content has 1–32000 characters and is not blank; the role is USER or ASSISTANT', async () => {
    const s = await createSession(member, 'input');
    for (const content of ['', '   ', 'x'.repeat(32001), 'nul\u0000']) {
      await expectBad(POST, { i: { sessionId: s.id, role: 'USER', content } }, 'content');
    }
    expect((await post(member, s.id, 'y'.repeat(32000))).content).toHaveLength(32000);
    const r = await member.gql.request(POST, { i: { sessionId: s.id, role: 'SYSTEM', content: 'x' } });
    expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await messageCount(s.id)).toBe(1);
  });

  it('malformed ids are BAD_USER_INPUT on their field', async () => {
    const s = await createSession(member, 'ids');
    const tenantUuid = JSON.parse(decode(s.id).replace(/^ChatSession:/, ''))[0] as string;
    for (const sessionId of ['nope', tenant.id, gid('ChatSession', 'not-json'), gid('ChatSession', JSON.stringify([tenantUuid])), gid('ChatMessage', decode(s.id).replace(/^ChatSession:/, ''))]) {
      await expectBad(POST, { i: { sessionId, role: 'USER', content: 'x' } }, 'sessionId');
    }
    for (const tenantId of ['nope', s.id]) {
      await expectBad(CREATE, { i: { tenantId, title: 'x' } }, 'tenantId');
    }
  });
});
