import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { signUp, createTenant, addMember, type TestUser } from './support/client.ts';

/** A members list with each member's user costs the same number of SQL statements for 2 or 20 members (no N+1). */
let app: TestApp;
let owner: TestUser;

beforeAll(async () => {
  app = await startTestApp();
  owner = await signUp(app, 'owner');
});
afterAll(async () => {
  await app?.stop();
});

const LIST = `query($s: String!) { tenant(slug: $s) { viewerRole plan { name } members(first: 50) { totalCount edges { node { role user { id email name } tenant { slug } } } } } }`;

async function statementsFor(slug: string) {
  await owner.gql.ok(LIST, { s: slug }); // warm-up
  const before = app.services.db.statements;
  const data = await owner.gql.ok(LIST, { s: slug });
  return { count: app.services.db.statements - before, members: data.tenant.members.edges.length };
}

describe('batching', () => {
  it('members with their users: constant statements whatever the list length', async () => {
    const small = await createTenant(owner, 'small');
    const big = await createTenant(owner, 'big');
    const c = new pg.Client({ connectionString: app.databaseUrl });
    await c.connect();
    await c.query(`update app_public.tenants set plan_id = 'pro' where slug = $1`, [big.slug]);
    await c.end();
    const people = await Promise.all(Array.from({ length: 19 }, (_, i) => signUp(app, `m${i}`)));
    for (const p of people) await addMember(owner, big.id, p, 'MEMBER');
    const a = await statementsFor(small.slug);
    const b = await statementsFor(big.slug);
    expect(a.members).toBe(1);
    expect(b.members).toBe(20);
    expect(b.count).toBe(a.count);
    expect(b.count).toBeLessThanOrEqual(10);
  });
});
