import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, PASSWORD, signUp, uniqueEmail, type GqlResponse, type TestUser } from './support/client.ts';

/**
 * Login brute force (sql/0010_login_throttle.sql, logIn in src/modules/identity/service.ts): more than 10 failed
 * logIn attempts per email, or 50 per client ip, in 15 minutes → every attempt gets the ordinary
 * "invalid email or password" answer, even with the right password, until the window has passed.
 * The app trusts X-Forwarded-For from loopback (TRUST_PROXY), so each test plays a client ip of its own.
 */
let app: TestApp;
let db: pg.Client;

const LOG_IN = `mutation($input: LogInInput!) { logIn(input: $input) { accessToken user { id } } }`;
const WRONG = 'not the right password at all';

beforeAll(async () => {
  app = await startTestApp({ TRUST_PROXY: 'loopback' });
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
});
afterAll(async () => {
  await db?.end();
  await app?.stop();
});

let ipCounter = 1;
/** A client at an ip of its own (through the trusted proxy header). */
function client(ip = `198.51.100.${ipCounter++}`) {
  return { ip, gql: new Gql(app, undefined, { 'x-forwarded-for': ip }) };
}

function logIn(gql: Gql, email: string, password: string) {
  return gql.request(LOG_IN, { input: { email, password } });
}

/** The answer without what legitimately differs between two requests. */
function answer(r: GqlResponse) {
  return { status: r.status, data: r.data ?? null, errors: r.errors };
}

async function failures(where: string, value: string) {
  const { rows } = await db.query(
    `select count(*) filter (where action = 'logIn')::int as failed, count(*) filter (where action = 'logInThrottled')::int as throttled
       from app_private.auth_events where ${where} = $1 and outcome = 'FAILURE' and created_at > now() - interval '15 minutes'`,
    [value],
  );
  return rows[0] as { failed: number; throttled: number };
}

/** Moves every recorded attempt 16 minutes into the past: the throttling window has passed. */
async function windowPasses() {
  await db.query(`update app_private.auth_events set created_at = created_at - interval '16 minutes'`);
}

beforeEach(windowPasses);

describe('per account', () => {
  let victim: TestUser;
  beforeAll(async () => {
    victim = await signUp(app, 'victim');
  });

  it('the right password works after 10 failures; after the 11th it is refused like a wrong one, until the window passes', async () => {
    const attacker = client();
    const reference = answer(await logIn(attacker.gql, victim.email, WRONG));
    expect(reference.errors?.[0]).toMatchObject({ message: 'invalid email or password', extensions: { code: 'UNAUTHENTICATED' } });
    for (let i = 2; i <= 10; i++) expect(answer(await logIn(attacker.gql, victim.email, WRONG))).toEqual(reference);
    expect(await failures('email', victim.email)).toEqual({ failed: 10, throttled: 0 });

    // Ten failures are not enough to lock the owner out (from another ip, too).
    const owner = client();
    const ok = await logIn(owner.gql, victim.email, PASSWORD);
    expect(ok.errors).toBeUndefined();
    expect(ok.data.logIn.user.id).toBe(victim.id);

    // The 11th failure…
    expect(answer(await logIn(attacker.gql, victim.email, WRONG))).toEqual(reference);
    expect(await failures('email', victim.email)).toEqual({ failed: 11, throttled: 0 });
    // …and now even the right password, from anywhere, gets the same answer.
    expect(answer(await logIn(attacker.gql, victim.email, PASSWORD))).toEqual(reference);
    expect(answer(await logIn(owner.gql, victim.email, PASSWORD))).toEqual(reference);
    expect(answer(await logIn(client().gql, victim.email.toUpperCase(), PASSWORD))).toEqual(reference);
    // Refused attempts are recorded, under their own action: they do not extend the window.
    expect(await failures('email', victim.email)).toEqual({ failed: 11, throttled: 3 });

    await windowPasses();
    const after = await logIn(owner.gql, victim.email, PASSWORD);
    expect(after.errors).toBeUndefined();
    expect(after.data.logIn.user.id).toBe(victim.id);
  });

  it('an unknown email answers exactly like a known one: before, at and after the threshold', async () => {
    const known = (await signUp(app, 'known')).email;
    const unknown = uniqueEmail('nobody');
    const attacker = client();
    const answers = { known: [] as ReturnType<typeof answer>[], unknown: [] as ReturnType<typeof answer>[] };
    const timings = { known: [] as number[], unknown: [] as number[] };
    for (let i = 0; i < 13; i++) {
      for (const [kind, email] of [['known', known], ['unknown', unknown]] as const) {
        const started = performance.now();
        answers[kind].push(answer(await logIn(attacker.gql, email, i < 11 ? WRONG : PASSWORD)));
        timings[kind].push(performance.now() - started);
      }
    }
    expect(answers.unknown).toEqual(answers.known);
    expect(new Set(answers.known.map((a) => JSON.stringify(a))).size).toBe(1);
    // Both were counted alike (the unknown email's failures are recorded with its address).
    expect(await failures('email', known)).toEqual({ failed: 11, throttled: 2 });
    expect(await failures('email', unknown)).toEqual({ failed: 11, throttled: 2 });
    // Same work on both paths (argon2 against the real hash or a dummy one): similar latency.
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const ratio = median(timings.unknown) / median(timings.known);
    expect(ratio).toBeGreaterThan(0.33);
    expect(ratio).toBeLessThan(3);
  });
});

describe('per ip', () => {
  it('more than 50 failures from one ip throttle every account from it, not from other ips', async () => {
    const user = await signUp(app, 'ip-victim');
    const attacker = client();
    // Password spraying: 51 different (unknown) emails from one ip, none of them reaching 10.
    for (let i = 0; i < 51; i++) {
      const r = await logIn(attacker.gql, uniqueEmail('spray'), WRONG);
      expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    expect(await failures('ip', attacker.ip)).toEqual({ failed: 51, throttled: 0 });
    const fromAttacker = await logIn(attacker.gql, user.email, PASSWORD);
    expect(fromAttacker.errors?.[0]).toMatchObject({ message: 'invalid email or password', extensions: { code: 'UNAUTHENTICATED' } });
    const fromElsewhere = await logIn(client().gql, user.email, PASSWORD);
    expect(fromElsewhere.errors).toBeUndefined();
    await windowPasses();
    expect((await logIn(attacker.gql, user.email, PASSWORD)).errors).toBeUndefined();
  });
});
