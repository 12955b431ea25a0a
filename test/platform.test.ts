import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, PASSWORD, createTenant, signUp, uniqueEmail, type GqlResponse } from './support/client.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const PASSWORD_LINE = /^password \(shown once, store it now\): (\S+)$/m;

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.stop();
});

/** `npm run admin:create -- …` as an operator runs it: a child process, stdin not a terminal. */
function adminCreate(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), ['src/main.ts', 'admin:create', ...args], {
      cwd: ROOT,
      // The pinned node@24 first on PATH (tsx's shebang is `env node`); the machine's own node may be older.
      env: { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}`, DATABASE_URL: app.databaseUrl, LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const LOG_IN = `mutation($input: LogInInput!) { logIn(input: $input) { accessToken } }`;

async function logIn(email: string, password: string) {
  const r = await new Gql(app).request(LOG_IN, { input: { email, password } });
  return r;
}

async function staffClient(email: string, password: string) {
  const r = await logIn(email, password);
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return new Gql(app, r.data.logIn.accessToken);
}

function only(r: GqlResponse) {
  expect(r.errors, JSON.stringify(r)).toHaveLength(1);
  return r.errors![0]!;
}

describe('admin:create', () => {
  const email = uniqueEmail('admin');
  let password: string;

  it('creates a SUPERADMIN with a generated password printed once', { timeout: 60_000 }, async () => {
    const run = await adminCreate(['--email', email]);
    expect(run.code, run.stderr).toBe(0);
    const match = PASSWORD_LINE.exec(run.stdout);
    expect(match, run.stdout).not.toBeNull();
    password = match![1]!;
    expect(password.length).toBeGreaterThanOrEqual(20);
    expect(run.stdout.split(password)).toHaveLength(2); // printed exactly once
    expect(run.stderr).not.toContain(password);

    const admin = await staffClient(email, password);
    const me = await admin.ok(`{ me { email platformRole } }`);
    expect(me.me).toEqual({ email, platformRole: 'SUPERADMIN' });
  });

  it('run again for the same email: stays SUPERADMIN, password unchanged, nothing printed', { timeout: 60_000 }, async () => {
    expect(password).toBeTruthy();
    const run = await adminCreate(['--email', email]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).not.toMatch(PASSWORD_LINE);
    expect(run.stdout).toContain('password unchanged');
    const admin = await staffClient(email, password);
    expect((await admin.ok(`{ me { platformRole } }`)).me.platformRole).toBe('SUPERADMIN');
  });

  it('promotes an existing normal user without touching their password', { timeout: 60_000 }, async () => {
    const user = await signUp(app, 'promoted');
    expect((await user.gql.ok(`{ me { platformRole } }`)).me.platformRole).toBe('NONE');
    expect(await user.gql.code(`{ platformTenants { edges { node { slug } } } }`)).toBe('FORBIDDEN');

    const run = await adminCreate(['--email', user.email.toUpperCase()]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).not.toMatch(PASSWORD_LINE);

    // The role is read per request: the token they already hold now carries staff visibility.
    expect((await user.gql.ok(`{ me { platformRole } }`)).me.platformRole).toBe('SUPERADMIN');
    expect(await user.gql.ok(`{ platformTenants { edges { node { slug } } } }`)).toBeTruthy();
    const again = await logIn(user.email, PASSWORD);
    expect(again.errors).toBeUndefined();
  });

  it('refuses a missing or malformed email', { timeout: 60_000 }, async () => {
    const run = await adminCreate(['--email', 'not-an-email']);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('usage');
    expect(run.stdout).not.toMatch(PASSWORD_LINE);
  });
});

describe('platform staff', () => {
  let staff: Gql;
  beforeAll(async () => {
    const email = uniqueEmail('staff');
    const run = await adminCreate(['--email', email]);
    expect(run.code, run.stderr).toBe(0);
    staff = await staffClient(email, PASSWORD_LINE.exec(run.stdout)![1]!);
  }, 60_000);

  it('see every tenant through platformTenants; a normal user is FORBIDDEN', async () => {
    const alice = await signUp(app, 'alice');
    const bob = await signUp(app, 'bob');
    const a = await createTenant(alice, 'alice');
    const b = await createTenant(bob, 'bob');

    const data = await staff.ok(`{ platformTenants(first: 100) { edges { node { slug viewerRole } } } }`);
    const slugs = data.platformTenants.edges.map((e: any) => e.node.slug);
    expect(slugs).toEqual(expect.arrayContaining([a.slug, b.slug]));
    expect(data.platformTenants.edges.every((e: any) => e.node.viewerRole === null)).toBe(true);

    // Alice, a normal user, sees only her own tenant in `tenants` and is refused platformTenants.
    const forbidden = await alice.gql.request(`{ platformTenants { edges { node { slug } } } }`);
    expect(only(forbidden).extensions?.code).toBe('FORBIDDEN');
    expect(forbidden.data?.platformTenants ?? null).toBeNull();
    const own = await alice.gql.ok(`{ tenants { edges { node { slug } } } }`);
    expect(own.tenants.edges.map((e: any) => e.node.slug)).toEqual([a.slug]);

    const anon = await new Gql(app).request(`{ platformTenants { edges { node { slug } } } }`);
    expect(only(anon).extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('cannot update a tenant they are not a member of (NOT_FOUND), and nothing changes', async () => {
    const carol = await signUp(app, 'carol');
    const t = await createTenant(carol, 'carol');
    const r = await staff.request(`mutation($input: UpdateTenantInput!) { updateTenant(input: $input) { name } }`, {
      input: { tenantId: t.id, name: 'taken over' },
    });
    expect(only(r).extensions?.code).toBe('NOT_FOUND');
    const after = await carol.gql.ok(`query($s: String!) { tenant(slug: $s) { name } }`, { s: t.slug });
    expect(after.tenant.name).not.toBe('taken over');
  });
});
