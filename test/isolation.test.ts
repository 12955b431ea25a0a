import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, signUp, createTenant, addMember, uniqueEmail, type TestUser } from './support/client.ts';

/**
 * The isolation matrix through the public API: a member (and owner) of tenant A aims every query, mutation
 * and subscription of the foundation at tenant B's ids and slug. Nothing is visible, nothing changes, and the
 * answer is the one a missing object gets.
 */
let app: TestApp;
let ownerA: TestUser;
let ownerB: TestUser;
let memberB: TestUser;
let tenantA: { id: string; slug: string };
let tenantB: { id: string; slug: string };
const idsB: Record<string, string> = {};
let invitationTokenB: string;

const gid = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64');

beforeAll(async () => {
  app = await startTestApp();
  ownerA = await signUp(app, 'owner-a');
  ownerB = await signUp(app, 'owner-b');
  memberB = await signUp(app, 'member-b');
  tenantA = await createTenant(ownerA, 'iso-a');
  tenantB = await createTenant(ownerB, 'iso-b');
  await addMember(ownerB, tenantB.id, memberB, 'MEMBER');
  const inv = await ownerB.gql.ok(`mutation($input: InviteMemberInput!) { inviteMember(input: $input) { id token } }`, {
    input: { tenantId: tenantB.id, email: uniqueEmail('pending'), role: 'VIEWER' },
  });
  idsB.invitation = inv.inviteMember.id;
  invitationTokenB = inv.inviteMember.token;
  const b = await ownerB.gql.ok(`query($s: String!) { tenant(slug: $s) { members { edges { node { id user { id } } } } auditLog { edges { node { id } } } } }`, { s: tenantB.slug });
  idsB.membership = b.tenant.members.edges[0].node.id;
  idsB.user = b.tenant.members.edges[0].node.user.id;
  idsB.auditEvent = b.tenant.auditLog.edges[0].node.id;
});
afterAll(async () => {
  await app?.stop();
});

/** Everything observable about tenant B, read by its owner. */
async function snapshotB() {
  return ownerB.gql.ok(
    `query($s: String!) { tenant(slug: $s) { name status members { edges { node { role user { email } } } } invitations { totalCount } auditLog(first: 100) { edges { node { action actor { email } outcome } } } } }`,
    { s: tenantB.slug },
  );
}

describe('a member of tenant A aiming at tenant B', () => {
  it('sees nothing of B through queries', async () => {
    const q = ownerA.gql;
    expect((await q.ok(`query($s: String!) { tenant(slug: $s) { id } }`, { s: tenantB.slug })).tenant).toBeNull();
    for (const id of [tenantB.id, idsB.membership, idsB.user, idsB.auditEvent, idsB.invitation]) {
      expect((await q.ok(`query($id: ID!) { node(id: $id) { id } }`, { id })).node, `node(${id})`).toBeNull();
    }
    for (const garbage of ['nope', gid('Tenant', 'not-a-uuid'), gid('Membership', '{broken'), gid('Nope', tenantB.id)]) {
      const r = await q.request(`query($id: ID!) { node(id: $id) { id } }`, { id: garbage });
      expect(r.data?.node ?? null, garbage).toBeNull();
      expect(r.errors?.[0]?.extensions?.code ?? 'NONE', garbage).not.toBe('INTERNAL_SERVER_ERROR');
    }
    const mine = await q.ok(`{ tenants { edges { node { slug } } } }`);
    expect(mine.tenants.edges.map((e: any) => e.node.slug)).toEqual([tenantA.slug]);
    expect(await q.code(`{ platformTenants { edges { node { slug } } } }`)).toBe('FORBIDDEN');
  });

  it('cannot change B through any mutation, and each answers NOT_FOUND', async () => {
    const before = await snapshotB();
    const q = ownerA.gql;
    const attempts: Array<[string, string, Record<string, unknown>]> = [
      ['updateTenant', `mutation($i: UpdateTenantInput!) { updateTenant(input: $i) { id } }`, { i: { tenantId: tenantB.id, name: 'pwned' } }],
      ['inviteMember', `mutation($i: InviteMemberInput!) { inviteMember(input: $i) { id } }`, { i: { tenantId: tenantB.id, email: ownerA.email, role: 'OWNER' } }],
      ['changeMemberRole', `mutation($i: ChangeMemberRoleInput!) { changeMemberRole(input: $i) { id } }`, { i: { tenantId: tenantB.id, userId: memberB.id, role: 'VIEWER' } }],
      ['changeMemberRole via own tenant', `mutation($i: ChangeMemberRoleInput!) { changeMemberRole(input: $i) { id } }`, { i: { tenantId: tenantA.id, userId: memberB.id, role: 'VIEWER' } }],
      ['removeMember', `mutation($i: RemoveMemberInput!) { removeMember(input: $i) }`, { i: { tenantId: tenantB.id, userId: memberB.id } }],
      ['removeMember via own tenant', `mutation($i: RemoveMemberInput!) { removeMember(input: $i) }`, { i: { tenantId: tenantA.id, userId: memberB.id } }],
      ['leaveTenant', `mutation($t: ID!) { leaveTenant(tenantId: $t) }`, { t: tenantB.id }],
      ['acceptInvitation of B (addressed to someone else)', `mutation($t: String!) { acceptInvitation(token: $t) { id } }`, { t: invitationTokenB }],
    ];
    for (const [name, query, variables] of attempts) {
      const r = await q.request(query, variables);
      expect(r.errors?.[0]?.extensions?.code, name).toBe('NOT_FOUND');
      expect(r.data?.[Object.keys(r.data ?? {})[0] ?? ''] ?? null, name).toBeNull();
    }
    expect(await snapshotB()).toEqual(before);
  });

  it('answers for B exactly as for an object that does not exist', async () => {
    const missing = gid('Tenant', '00000000-0000-4000-8000-000000000000');
    const q = `mutation($i: UpdateTenantInput!) { updateTenant(input: $i) { id } }`;
    const forB = await ownerA.gql.request(q, { i: { tenantId: tenantB.id, name: 'x' } });
    const forNothing = await ownerA.gql.request(q, { i: { tenantId: missing, name: 'x' } });
    expect(forB.errors?.[0]?.message).toBe(forNothing.errors?.[0]?.message);
    expect(forB.errors?.[0]?.extensions).toEqual(forNothing.errors?.[0]?.extensions);
  });

  it('cannot reach B’s chats or social links: NOT_FOUND for every mutation, null for node, nothing changed', async () => {
    // B's content: a member's chat session with a message, and a social link added by the owner.
    const s = await memberB.gql.ok(`mutation($i: CreateChatSessionInput!) { createChatSession(input: $i) { id } }`, { i: { tenantId: tenantB.id, title: 'B only' } });
    const sessionB = s.createChatSession.id as string;
    const m = await memberB.gql.ok(`mutation($i: PostMessageInput!) { postMessage(input: $i) { id } }`, { i: { sessionId: sessionB, role: 'USER', content: 'B secret' } });
    const l = await ownerB.gql.ok(`mutation($i: AddSocialLinkInput!) { addSocialLink(input: $i) { id } }`, { i: { tenantId: tenantB.id, platform: 'TWITTER', url: 'https://twitter.com/tenant-b' } });
    const linkB = l.addSocialLink.id as string;
    const contentB = async () => ({
      chats: await memberB.gql.ok(`query($id: ID!) { node(id: $id) { ... on ChatSession { title updatedAt messages { edges { node { role content } } } } } }`, { id: sessionB }),
      b: await snapshotB(),
      links: await ownerB.gql.ok(`query($s: String!) { tenant(slug: $s) { socialLinks { edges { node { id platform url } } } } }`, { s: tenantB.slug }),
    });
    const before = await contentB();
    // The same rows, addressed through ids forged to name tenant A.
    const rowOf = (globalId: string) => JSON.parse(Buffer.from(globalId, 'base64').toString().replace(/^\w+:/, '')) as [string, string];
    const tenantAUuid = Buffer.from(tenantA.id, 'base64').toString().split(':')[1];
    const forgedSession = gid('ChatSession', JSON.stringify([tenantAUuid, rowOf(sessionB)[1]]));
    const forgedLink = gid('SocialLink', JSON.stringify([tenantAUuid, rowOf(linkB)[1]]));
    const memberA = await signUp(app, 'member-a');
    await addMember(ownerA, tenantA.id, memberA, 'MEMBER');
    for (const actor of [ownerA, memberA]) {
      const attempts: Array<[string, string, Record<string, unknown>]> = [
        ['createChatSession', `mutation($i: CreateChatSessionInput!) { createChatSession(input: $i) { id } }`, { i: { tenantId: tenantB.id, title: 'pwned' } }],
        ['postMessage', `mutation($i: PostMessageInput!) { postMessage(input: $i) { id } }`, { i: { sessionId: sessionB, role: 'ASSISTANT', content: 'pwned' } }],
        ['postMessage via forged id', `mutation($i: PostMessageInput!) { postMessage(input: $i) { id } }`, { i: { sessionId: forgedSession, role: 'USER', content: 'pwned' } }],
        ['addSocialLink', `mutation($i: AddSocialLinkInput!) { addSocialLink(input: $i) { id } }`, { i: { tenantId: tenantB.id, platform: 'TWITTER', url: 'https://twitter.com/pwned' } }],
        ['removeSocialLink', `mutation($id: ID!) { removeSocialLink(id: $id) }`, { id: linkB }],
      ];
      // Only A's owner may manage A's links at all; a member of A is refused in A before anything else.
      if (actor === ownerA) attempts.push(['removeSocialLink via forged id', `mutation($id: ID!) { removeSocialLink(id: $id) }`, { id: forgedLink }]);
      for (const [name, query, variables] of attempts) {
        const r = await actor.gql.request(query, variables);
        expect(r.errors?.[0]?.extensions?.code, `${actor.email}: ${name}`).toBe('NOT_FOUND');
        expect(r.data?.[Object.keys(r.data ?? {})[0] ?? ''] ?? null, name).toBeNull();
      }
      for (const id of [sessionB, m.postMessage.id, linkB, forgedSession, forgedLink]) {
        expect((await actor.gql.ok(`query($id: ID!) { node(id: $id) { id } }`, { id })).node, `node(${id})`).toBeNull();
      }
      const own = await actor.gql.ok(`query($s: String!) { tenant(slug: $s) { chatSessions { totalCount } socialLinks { totalCount } } }`, { s: tenantA.slug });
      expect(own.tenant).toEqual({ chatSessions: { totalCount: 0 }, socialLinks: { totalCount: 0 } });
    }
    expect(await contentB()).toEqual(before);
  });

  it('X-Tenant naming B narrows A to nothing, and a forged X-Tenant gives no access', async () => {
    const narrowed = new Gql(app, ownerA.gql.token, { 'x-tenant': tenantB.slug });
    const r = await narrowed.ok(`{ me { email } tenants { edges { node { slug } } } }`);
    expect(r.me.email).toBe(ownerA.email);
    expect(r.tenants.edges).toEqual([]);
    expect((await narrowed.ok(`query($s: String!) { tenant(slug: $s) { id } }`, { s: tenantB.slug })).tenant).toBeNull();
    const byId = new Gql(app, ownerA.gql.token, { 'x-tenant': tenantB.id });
    expect((await byId.ok(`query($id: ID!) { node(id: $id) { id } }`, { id: tenantB.id })).node).toBeNull();
    const own = new Gql(app, ownerA.gql.token, { 'x-tenant': tenantA.slug });
    expect((await own.ok(`{ tenants { edges { node { slug } } } }`)).tenants.edges.map((e: any) => e.node.slug)).toEqual([tenantA.slug]);
  });

  it('cannot subscribe to B’s audit events, and receives none of them', async () => {
    const wsUrl = app.url.replace(/^http/, 'ws');
    const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${ownerA.gql.token}` }, retryAttempts: 0 });
    const errors: any[] = [];
    const events: any[] = [];
    await new Promise<void>((resolve) => {
      client.subscribe(
        { query: `subscription($t: ID!) { auditEvents(tenantId: $t) { action } }`, variables: { t: tenantB.id } },
        {
          // A refused subscription arrives as one result carrying errors, then completes.
          next: (v) => (v.errors ? errors.push(...v.errors) : events.push(v)),
          error: (e) => {
            errors.push(...(Array.isArray(e) ? e : [e]));
            resolve();
          },
          complete: () => resolve(),
        },
      );
    });
    expect(events).toEqual([]);
    expect(errors[0]?.extensions?.code).toBe('NOT_FOUND');
    await client.dispose();
  });

  it('does not even leave a trace in B’s audit log', async () => {
    const log = await snapshotB();
    const actors = log.tenant.auditLog.edges.map((e: any) => e.node.actor?.email);
    expect(actors).not.toContain(ownerA.email);
    // …while A's failures inside A are recorded for A's admins.
    await ownerA.gql.request(`mutation($i: InviteMemberInput!) { inviteMember(input: $i) { id } }`, { i: { tenantId: tenantA.id, email: ownerA.email, role: 'MEMBER' } });
    const a = await ownerA.gql.ok(`query($s: String!) { tenant(slug: $s) { auditLog { edges { node { action outcome } } } } }`, { s: tenantA.slug });
    expect(a.tenant.auditLog.edges[0].node).toEqual({ action: 'inviteMember', outcome: 'FAILURE' });
  });

  it('B’s rows are untouched at the database level', async () => {
    const c = new pg.Client({ connectionString: app.databaseUrl });
    await c.connect();
    const b = Buffer.from(tenantB.id, 'base64').toString().split(':')[1];
    const { rows } = await c.query(`select name, (select count(*)::int from app_public.memberships where tenant_id = $1) as members from app_public.tenants where id = $1`, [b]);
    await c.end();
    expect(rows[0]).toEqual({ name: expect.not.stringMatching(/pwned/), members: 2 });
  });
});
