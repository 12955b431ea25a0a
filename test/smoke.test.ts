import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, signUp, createTenant, addMember } from './support/client.ts';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.stop();
});

describe('foundation smoke', () => {
  it('signs up, creates a tenant, invites a member', async () => {
    const owner = await signUp(app, 'owner');
    const tenant = await createTenant(owner);
    const member = await signUp(app, 'member');
    await addMember(owner, tenant.id, member, 'MEMBER');
    const data = await member.gql.ok(`query($s: String!) { tenant(slug: $s) { viewerRole members { totalCount edges { node { role } } } } }`, { s: tenant.slug });
    expect(data.tenant.viewerRole).toBe('MEMBER');
    expect(data.tenant.members.edges.map((e: any) => e.node.role).sort()).toEqual(['MEMBER', 'OWNER']);
    const anon = new Gql(app);
    expect((await anon.ok(`{ me { id } }`)).me).toBeNull();
  });
});
