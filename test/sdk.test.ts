import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WsWebSocket from 'ws';
import { startTestApp, type TestApp } from './support/app.ts';
import { uniqueEmail, PASSWORD } from './support/client.ts';
import {
  createTenantplaneClient,
  TenantplaneError,
  type TenantplaneClient,
  type TenantplaneSubscription,
  type AuditEventsSubscription,
  SignUpDocument,
  LogInDocument,
  RefreshSessionDocument,
  LogOutDocument,
  MeDocument,
  CreateTenantDocument,
  UpdateTenantDocument,
  InviteMemberDocument,
  AcceptInvitationDocument,
  ChangeMemberRoleDocument,
  TenantDocument,
  TenantsDocument,
  PlatformTenantsDocument,
  AuditEventsDocument,
  LeaveTenantDocument,
} from '../src/sdk/index.ts';

let app: TestApp;
const clients: TenantplaneClient[] = [];
const subscriptions: TenantplaneSubscription<unknown>[] = [];

function client(accessToken?: string, tenant?: string, webSocketImpl?: unknown) {
  const c = createTenantplaneClient({ url: app.url, accessToken, tenant, webSocketImpl });
  clients.push(c);
  return c;
}

/** `promise`'s outcome, or 'timeout' after `ms` (the promise stays usable). */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([promise, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);
}

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  for (const s of subscriptions) s.dispose();
  for (const c of clients) await c.dispose();
  await app?.stop();
});

describe('typed SDK end to end', () => {
  it('drives accounts, tenants, members and the live audit log through the SDK only', async () => {
    const anon = client();

    // Two accounts.
    const ownerEmail = uniqueEmail('sdk-owner');
    const owner = (await anon.request(SignUpDocument, { input: { email: ownerEmail, password: PASSWORD, name: 'SDK Owner' } })).signUp;
    const member = (await anon.request(SignUpDocument, { input: { email: uniqueEmail('sdk-member'), password: PASSWORD, name: 'SDK Member' } }))
      .signUp;
    expect(owner.user.email).toBe(ownerEmail);
    expect(owner.user.platformRole).toBe('NONE');
    expect(typeof owner.expiresAt).toBe('string');

    // Sessions: log in, rotate, log out; the spent refresh token is refused with a typed error.
    const login = (await anon.request(LogInDocument, { input: { email: ownerEmail, password: PASSWORD } })).logIn;
    const rotated = (await anon.request(RefreshSessionDocument, { refreshToken: login.refreshToken })).refreshSession;
    expect(rotated.user.id).toBe(owner.user.id);
    expect((await anon.request(LogOutDocument, { refreshToken: rotated.refreshToken })).logOut).toBe(true);
    const refused = await anon.request(RefreshSessionDocument, { refreshToken: rotated.refreshToken }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TenantplaneError);
    expect((refused as TenantplaneError).code).toBe('UNAUTHENTICATED');
    expect((refused as TenantplaneError).errors.length).toBeGreaterThan(0);

    const ownerApi = client(owner.accessToken);
    const memberApi = client(member.accessToken);
    expect((await ownerApi.request(MeDocument)).me?.id).toBe(owner.user.id);
    expect((await anon.request(MeDocument)).me).toBeNull();

    // A tenant, and an invitation accepted by the second user.
    const slug = `sdk-${process.pid}-${Date.now().toString(36)}`;
    const tenant = (await ownerApi.request(CreateTenantDocument, { input: { name: 'SDK Org', slug } })).createTenant;
    expect(tenant).toMatchObject({ slug, name: 'SDK Org', status: 'ACTIVE', viewerRole: 'OWNER' });
    expect(typeof tenant.plan.maxStorageBytes).toBe('number');

    const invitation = (await ownerApi.request(InviteMemberDocument, { input: { tenantId: tenant.id, email: member.user.email, role: 'VIEWER' } }))
      .inviteMember;
    expect(invitation.token).toBeTruthy();
    const membership = (await memberApi.request(AcceptInvitationDocument, { token: invitation.token! })).acceptInvitation;
    expect(membership.role).toBe('VIEWER');
    expect(membership.tenant.id).toBe(tenant.id);
    expect(membership.user.id).toBe(member.user.id);

    // A viewer may not manage members: the error carries the contract code.
    const denied = await memberApi
      .request(ChangeMemberRoleDocument, { input: { tenantId: tenant.id, userId: owner.user.id, role: 'VIEWER' } })
      .catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(TenantplaneError);
    expect(['FORBIDDEN', 'NOT_FOUND']).toContain((denied as TenantplaneError).code);

    // The owner promotes the member.
    const changed = (await ownerApi.request(ChangeMemberRoleDocument, { input: { tenantId: tenant.id, userId: member.user.id, role: 'ADMIN' } }))
      .changeMemberRole;
    expect(changed.role).toBe('ADMIN');

    // Members and audit log, as the promoted member sees them (X-Tenant narrowing by slug).
    const scoped = client(member.accessToken, slug);
    const read = (await scoped.request(TenantDocument, { slug })).tenant;
    expect(read?.viewerRole).toBe('ADMIN');
    const roles = Object.fromEntries(read!.members.edges.map((e) => [e.node.user.id, e.node.role]));
    expect(roles).toEqual({ [owner.user.id]: 'OWNER', [member.user.id]: 'ADMIN' });
    const actions = read!.auditLog.edges.map((e) => e.node.action);
    expect(actions).toEqual(expect.arrayContaining(['createTenant', 'inviteMember', 'acceptInvitation', 'changeMemberRole']));
    expect((await scoped.request(TenantsDocument, { first: 10 })).tenants.edges.map((e) => e.node.slug)).toEqual([slug]);

    // Not platform staff.
    const staffOnly = await ownerApi.request(PlatformTenantsDocument).catch((e: unknown) => e);
    expect((staffOnly as TenantplaneError).code).toBe('FORBIDDEN');

    // Live audit log over graphql-ws: the admin subscribes, the owner renames the tenant afterwards.
    const sub = memberApi.subscribe(AuditEventsDocument, { tenantId: tenant.id });
    subscriptions.push(sub as TenantplaneSubscription<unknown>);
    // The protocol has no "subscribed" acknowledgement, so rename until an event arrives (normally at once).
    const names: string[] = [];
    let event: AuditEventsSubscription['auditEvents'] | undefined;
    const pending = sub.next();
    for (let attempt = 0; attempt < 20 && !event; attempt++) {
      const name = `SDK Org renamed ${attempt}`;
      names.push(name);
      const updated = (await ownerApi.request(UpdateTenantDocument, { input: { tenantId: tenant.id, name } })).updateTenant;
      expect(updated.name).toBe(name);
      const got = await within(pending, 500);
      if (got !== 'timeout') {
        expect(got.done).toBe(false);
        event = got.value!.auditEvents;
      }
    }
    expect(event, 'no audit event received over graphql-ws').toBeDefined();
    expect(event!.action).toBe('updateTenant');
    expect(event!.outcome).toBe('SUCCESS');
    expect(event!.actor?.id).toBe(owner.user.id);
    expect(event!.actor?.email).toBe(ownerEmail);
    expect(event!.targetType).toBe('Tenant');
    expect(names).toContain((event!.details as { name?: string }).name);

    // A mere member may not subscribe: the iterator rejects with the contract code (here over the `ws` package,
    // the fallback where globalThis.WebSocket is missing).
    await ownerApi.request(ChangeMemberRoleDocument, { input: { tenantId: tenant.id, userId: member.user.id, role: 'MEMBER' } });
    const refusedSub = client(member.accessToken, undefined, WsWebSocket).subscribe(AuditEventsDocument, { tenantId: tenant.id });
    subscriptions.push(refusedSub as TenantplaneSubscription<unknown>);
    const failure = await refusedSub.next().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(TenantplaneError);
    expect((failure as TenantplaneError).code).toBe('FORBIDDEN');

    // A bad token: the socket is refused and the iterator rejects at once (no reconnect loop).
    const started = Date.now();
    const badToken = client('not-a-token').subscribe(AuditEventsDocument, { tenantId: tenant.id });
    subscriptions.push(badToken as TenantplaneSubscription<unknown>);
    const unauthenticated = await badToken.next().catch((e: unknown) => e);
    expect((unauthenticated as TenantplaneError).code).toBe('UNAUTHENTICATED');
    expect(Date.now() - started).toBeLessThan(5_000);

    sub.dispose();
    expect(await sub.next()).toEqual({ done: true, value: undefined });

    // The member leaves; the owner is alone again.
    expect((await memberApi.request(LeaveTenantDocument, { tenantId: tenant.id })).leaveTenant).toBe(true);
    const after = (await ownerApi.request(TenantDocument, { slug, auditLogFirst: 1 })).tenant;
    expect(after?.members.edges.map((e) => e.node.user.id)).toEqual([owner.user.id]);
    expect(after?.auditLog.edges[0]?.node.action).toBe('leaveTenant');
  });
});
