import { decodeGlobalID } from '@pothos/plugin-relay';
import { tenantScopedIdFromGlobalId } from '../../src/graphql/ids.ts';
import type { TestApp } from './app.ts';

export interface GqlError {
  message: string;
  extensions?: { code?: string; field?: string; requestId?: string };
  path?: string[];
}
export interface GqlResponse<T = any> {
  data?: T | null;
  errors?: GqlError[];
  status: number;
}

/** A raw GraphQL-over-HTTP client, as a hostile or sloppy client would use it. */
export class Gql {
  constructor(
    private readonly app: TestApp,
    public token?: string,
    public headers: Record<string, string> = {},
  ) {}

  async request<T = any>(query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<GqlResponse<T>> {
    const res = await fetch(this.app.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        ...this.headers,
        ...headers,
      },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as GqlResponse<T>;
    return { ...body, status: res.status };
  }

  /** The data, or a thrown error listing the GraphQL errors. */
  async ok<T = any>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const r = await this.request<T>(query, variables);
    if (r.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors)}`);
    return r.data as T;
  }

  /** The code of the first error (the request is expected to fail). */
  async code(query: string, variables: Record<string, unknown> = {}): Promise<string | undefined> {
    const r = await this.request(query, variables);
    return r.errors?.[0]?.extensions?.code;
  }
}

let counter = 0;
export function uniqueEmail(prefix = 'user') {
  return `${prefix}-${process.pid}-${Date.now()}-${counter++}@example.test`;
}

export const PASSWORD = 'correct horse battery staple';

export interface TestUser {
  id: string;
  email: string;
  gql: Gql;
  refreshToken: string;
}

export async function signUp(app: TestApp, name = 'user'): Promise<TestUser> {
  const email = uniqueEmail(name);
  const anon = new Gql(app);
  const data = await anon.ok(
    `mutation($input: SignUpInput!) { signUp(input: $input) { accessToken refreshToken user { id } } }`,
    { input: { email, password: PASSWORD, name } },
  );
  return { id: data.signUp.user.id, email, gql: new Gql(app, data.signUp.accessToken), refreshToken: data.signUp.refreshToken };
}

let slugCounter = 0;
export async function createTenant(user: TestUser, prefix = 'org') {
  const slug = `${prefix}-${process.pid}-${slugCounter++}`;
  const data = await user.gql.ok(`mutation($input: CreateTenantInput!) { createTenant(input: $input) { id slug } }`, {
    input: { name: `${prefix} ${slugCounter}`, slug },
  });
  return data.createTenant as { id: string; slug: string };
}

/** Invites `invitee` into the tenant with `role` and has them accept. */
export async function addMember(owner: TestUser, tenantId: string, invitee: TestUser, role: string) {
  const inv = await owner.gql.ok(`mutation($input: InviteMemberInput!) { inviteMember(input: $input) { token } }`, {
    input: { tenantId, email: invitee.email, role },
  });
  await invitee.gql.ok(`mutation($t: String!) { acceptInvitation(token: $t) { id } }`, { t: inv.inviteMember.token });
}

/** The row uuid inside a tenant-owned node's global id (decoded by the server's own helper). */
export function rowUuid(globalId: string): string {
  const { typename } = decodeGlobalID(globalId);
  return tenantScopedIdFromGlobalId(typename, globalId, 'id').id;
}
