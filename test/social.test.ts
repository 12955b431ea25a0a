import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, addMember, createTenant, signUp, type TestUser } from './support/client.ts';

/** A tenant's social links: https URLs on the platform's own hosts, managed by admins and owners, read by every member. */
let app: TestApp;
let owner: TestUser, admin: TestUser, member: TestUser, viewer: TestUser;
let tenant: { id: string; slug: string };

const ADD = `mutation($i: AddSocialLinkInput!) { addSocialLink(input: $i) { id platform url createdAt createdBy { id } } }`;
const REMOVE = `mutation($id: ID!) { removeSocialLink(id: $id) }`;
const LIST = `query($s: String!, $first: Int, $after: String) {
  tenant(slug: $s) { socialLinks(first: $first, after: $after) { totalCount edges { node { id platform url } } pageInfo { hasNextPage endCursor } } }
}`;

const gid = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64');

async function add(u: TestUser, platform: string, url: string) {
  return (await u.gql.ok(ADD, { i: { tenantId: tenant.id, platform, url } })).addSocialLink;
}
async function linkCount() {
  const c = new pg.Client({ connectionString: app.databaseUrl });
  await c.connect();
  const { rows } = await c.query(`select count(*)::int as n from app_public.social_links`);
  await c.end();
  return rows[0].n as number;
}

beforeAll(async () => {
  app = await startTestApp();
  [owner, admin, member, viewer] = await Promise.all(['owner', 'admin', 'member', 'viewer'].map((n) => signUp(app, n)));
  tenant = await createTenant(owner, 'social');
  await addMember(owner, tenant.id, admin, 'ADMIN');
  await addMember(owner, tenant.id, member, 'MEMBER');
  await addMember(owner, tenant.id, viewer, 'VIEWER');
});
afterAll(async () => {
  await app?.stop();
});

describe('valid links', () => {
  it('are accepted for every platform and host variant, normalized, and listed oldest first for every member', async () => {
    const valid: Array<[string, string, string]> = [
      ['TWITTER', 'https://twitter.com/acme', 'https://twitter.com/acme'],
      ['TWITTER', 'https://x.com/acme', 'https://x.com/acme'],
      ['TWITTER', 'https://www.twitter.com/acme', 'https://www.twitter.com/acme'],
      ['TWITTER', 'https://m.x.com/acme?lang=en', 'https://m.x.com/acme?lang=en'],
      ['FACEBOOK', 'https://facebook.com/acme', 'https://facebook.com/acme'],
      ['FACEBOOK', 'https://www.fb.com/acme', 'https://www.fb.com/acme'],
      ['FACEBOOK', 'https://m.facebook.com/acme', 'https://m.facebook.com/acme'],
      ['LINKEDIN', 'https://www.linkedin.com/company/acme', 'https://www.linkedin.com/company/acme'],
      ['LINKEDIN', 'https://linkedin.com/in/someone', 'https://linkedin.com/in/someone'],
      ['INSTAGRAM', 'https://instagram.com/acme', 'https://instagram.com/acme'],
      ['INSTAGRAM', 'https://www.instagram.com/acme/', 'https://www.instagram.com/acme/'],
      ['YOUTUBE', 'https://youtube.com/@acme', 'https://youtube.com/@acme'],
      ['YOUTUBE', 'https://m.youtube.com/watch?v=abc#t=10', 'https://m.youtube.com/watch?v=abc#t=10'],
      ['YOUTUBE', 'https://youtu.be/dQw4w9WgXcQ', 'https://youtu.be/dQw4w9WgXcQ'],
      // Normalized: scheme and host lowercased, default port dropped, surrounding spaces trimmed.
      ['TWITTER', '  HTTPS://Twitter.COM:443/Acme2  ', 'https://twitter.com/Acme2'],
      ['LINKEDIN', 'https://linkedin.com', 'https://linkedin.com/'],
    ];
    const added = [];
    for (const [platform, url, expected] of valid) {
      const link = await add(admin, platform, url);
      expect(link, url).toMatchObject({ platform, url: expected, createdBy: { id: admin.id } });
      added.push(link.id);
    }
    for (const u of [owner, admin, member, viewer]) {
      const r = (await u.gql.ok(LIST, { s: tenant.slug, first: 100 })).tenant.socialLinks;
      expect(r.totalCount, u.email).toBe(valid.length);
      expect(r.edges.map((e: any) => e.node.id), u.email).toEqual(added);
    }
    const page = (await member.gql.ok(LIST, { s: tenant.slug, first: 5 })).tenant.socialLinks;
    expect(page.edges).toHaveLength(5);
    expect(page.pageInfo.hasNextPage).toBe(true);
    const next = (await member.gql.ok(LIST, { s: tenant.slug, first: 5, after: page.pageInfo.endCursor })).tenant.socialLinks;
    expect(next.edges.map((e: any) => e.node.id)).toEqual(added.slice(5, 10));
    // Links are nodes.
    expect((await viewer.gql.ok(`query($id: ID!) { node(id: $id) { ... on SocialLink { url } } }`, { id: added[0] })).node.url).toBe('https://twitter.com/acme');
  });

  it('owners add them too', async () => {
    expect((await add(owner, 'INSTAGRAM', 'https://instagram.com/by-owner')).url).toBe('https://instagram.com/by-owner');
  });
});

describe('invalid links', () => {
  it('answer BAD_USER_INPUT on field url and store nothing', async () => {
    const before = await linkCount();
    const invalid: Array<[string, string]> = [
      ['TWITTER', 'http://twitter.com/acme'],
      ['TWITTER', 'ftp://twitter.com/acme'],
      ['TWITTER', '//twitter.com/acme'],
      ['TWITTER', 'twitter.com/acme'],
      ['TWITTER', 'javascript:alert(1)'],
      ['TWITTER', 'JavaScript://twitter.com/%0Aalert(1)'],
      ['TWITTER', 'data:text/html,<script>alert(1)</script>'],
      ['TWITTER', 'https://twitter.com.evil.io/acme'],
      ['TWITTER', 'https://x.com.evil.io/acme'],
      ['TWITTER', 'https://eviltwitter.com/acme'],
      ['TWITTER', 'https://evil.io/twitter.com'],
      ['TWITTER', 'https://evil.io/?u=https://twitter.com'],
      ['TWITTER', 'https://evil.io#twitter.com'],
      ['TWITTER', 'https://evil.io\\@twitter.com'],
      ['TWITTER', 'https://twitter.com./acme'],
      ['TWITTER', 'https://api.twitter.com/acme'],
      ['TWITTER', 'https://www.www.twitter.com/acme'],
      ['TWITTER', 'https://twitter.com:8443/acme'],
      ['TWITTER', 'https://user:pass@twitter.com/acme'],
      ['TWITTER', 'https://user@twitter.com/acme'],
      ['TWITTER', 'https://@twitter.com/acme'],
      ['TWITTER', 'https://twitter.com@evil.io/acme'],
      ['TWITTER', 'https://twitter.com%40evil.io/acme'],
      ['TWITTER', 'https://twit\nter.com/acme'],
      ['TWITTER', 'https://twitter.com/ac me'],
      ['TWITTER', 'https://twіtter.com/acme'], // Cyrillic і
      ['TWITTER', 'https://facebook.com/acme'], // the wrong platform's host
      ['FACEBOOK', 'https://twitter.com/acme'],
      ['FACEBOOK', 'https://facebook.co/acme'],
      ['LINKEDIN', 'https://linkedin.com.evil.io/in/x'],
      ['INSTAGRAM', 'https://instagr.am/acme'],
      ['YOUTUBE', 'https://youtu.be.evil.io/x'],
      ['YOUTUBE', 'https://www.youtu.be.evil.io/x'],
      ['YOUTUBE', `https://youtube.com/${'a'.repeat(2030)}`],
      ['YOUTUBE', 'https://[::1]/x'],
      ['YOUTUBE', 'https://127.0.0.1/x'],
      ['YOUTUBE', 'https://'],
      ['YOUTUBE', ''],
      ['YOUTUBE', '   '],
    ];
    for (const [platform, url] of invalid) {
      const r = await admin.gql.request(ADD, { i: { tenantId: tenant.id, platform, url } });
      expect(r.errors?.[0]?.extensions?.code, `${platform} ${url.slice(0, 80)}`).toBe('BAD_USER_INPUT');
      expect(r.errors?.[0]?.extensions?.field, `${platform} ${url.slice(0, 80)}`).toBe('url');
    }
    // 2048 characters is the limit, not less.
    const longest = `https://youtube.com/${'a'.repeat(2048 - 'https://youtube.com/'.length)}`;
    expect((await add(admin, 'YOUTUBE', longest)).url).toHaveLength(2048);
    expect(await admin.gql.code(ADD, { i: { tenantId: tenant.id, platform: 'YOUTUBE', url: `${longest}a` } })).toBe('BAD_USER_INPUT');
    // An unknown platform is refused by the schema.
    expect(await admin.gql.code(ADD, { i: { tenantId: tenant.id, platform: 'MYSPACE', url: 'https://myspace.com/acme' } })).toBe('BAD_USER_INPUT');
    expect(await linkCount()).toBe(before + 1);
  });

  it('the same platform and URL twice is a CONFLICT, however the URL was typed', async () => {
    await add(admin, 'TWITTER', 'https://twitter.com/dupe');
    for (const url of ['https://twitter.com/dupe', 'https://TWITTER.com/dupe', ' https://twitter.com:443/dupe ']) {
      const r = await owner.gql.request(ADD, { i: { tenantId: tenant.id, platform: 'TWITTER', url } });
      expect(r.errors?.[0]?.extensions?.code, url).toBe('CONFLICT');
      expect(r.errors?.[0]?.extensions?.field, url).toBe('url');
    }
    // Another tenant may list the same URL.
    const t2 = await createTenant(owner, 'social-2');
    expect((await owner.gql.ok(ADD, { i: { tenantId: t2.id, platform: 'TWITTER', url: 'https://twitter.com/dupe' } })).addSocialLink.url).toBe('https://twitter.com/dupe');
  });
});

describe('roles and removal', () => {
  it('members and viewers can neither add nor remove (FORBIDDEN)', async () => {
    const link = await add(admin, 'FACEBOOK', 'https://facebook.com/roles');
    const before = await linkCount();
    for (const u of [member, viewer]) {
      expect(await u.gql.code(ADD, { i: { tenantId: tenant.id, platform: 'FACEBOOK', url: 'https://facebook.com/by-member' } }), u.email).toBe('FORBIDDEN');
      expect(await u.gql.code(REMOVE, { id: link.id }), u.email).toBe('FORBIDDEN');
    }
    expect(await new Gql(app).code(ADD, { i: { tenantId: tenant.id, platform: 'FACEBOOK', url: 'https://facebook.com/anon' } })).toBe('UNAUTHENTICATED');
    expect(await linkCount()).toBe(before);
  });

  it('admins and owners remove links; a removed or unknown link is NOT_FOUND; malformed ids are BAD_USER_INPUT', async () => {
    const a = await add(admin, 'LINKEDIN', 'https://linkedin.com/company/remove-me');
    const b = await add(admin, 'LINKEDIN', 'https://linkedin.com/company/remove-me-too');
    expect((await admin.gql.ok(REMOVE, { id: a.id })).removeSocialLink).toBe(true);
    expect((await owner.gql.ok(REMOVE, { id: b.id })).removeSocialLink).toBe(true);
    const ids = (await member.gql.ok(LIST, { s: tenant.slug, first: 100 })).tenant.socialLinks.edges.map((e: any) => e.node.id);
    expect(ids).not.toContain(a.id);
    expect(ids).not.toContain(b.id);
    expect(await admin.gql.code(REMOVE, { id: a.id })).toBe('NOT_FOUND');
    // Removed links can be added again.
    expect((await add(admin, 'LINKEDIN', 'https://linkedin.com/company/remove-me')).url).toBe('https://linkedin.com/company/remove-me');
    for (const id of ['nope', tenant.id, gid('SocialLink', 'x'), gid('SocialLink', JSON.stringify(['a', 'b']))]) {
      const r = await admin.gql.request(REMOVE, { id });
      expect(r.errors?.[0]?.extensions?.code, id).toBe('BAD_USER_INPUT');
      expect(r.errors?.[0]?.extensions?.field, id).toBe('id');
    }
  });

  it('both mutations are audited, failures by members included', async () => {
    const r = await owner.gql.ok(
      `query($s: String!) { tenant(slug: $s) { auditLog(first: 100) { edges { node { action outcome targetType targetId details actor { id } } } } } }`,
      { s: tenant.slug },
    );
    const entries = r.tenant.auditLog.edges.map((e: any) => e.node);
    const added = entries.find((e: any) => e.action === 'addSocialLink' && e.outcome === 'SUCCESS' && e.details.url === 'https://twitter.com/dupe');
    expect(added).toMatchObject({ targetType: 'SocialLink', actor: { id: admin.id }, details: { platform: 'TWITTER' } });
    const removed = entries.find((e: any) => e.action === 'removeSocialLink' && e.outcome === 'SUCCESS');
    expect(removed).toMatchObject({ targetType: 'SocialLink', details: { platform: 'LINKEDIN' } });
    expect(entries.some((e: any) => e.action === 'addSocialLink' && e.outcome === 'FAILURE' && e.actor?.id === member.id && e.details.error === 'FORBIDDEN')).toBe(true);
    expect(entries.some((e: any) => e.action === 'addSocialLink' && e.outcome === 'FAILURE' && e.details.error === 'CONFLICT')).toBe(true);
    expect(entries.some((e: any) => e.action === 'removeSocialLink' && e.outcome === 'FAILURE' && e.actor?.id === viewer.id)).toBe(true);
  });
});
