import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { Writable } from 'node:stream';
import util from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';
import { withDatabase } from './support/global-setup.ts';
import { addMember, createTenant, rowUuid, signUp, type TestUser } from './support/client.ts';
import { uuidFromGlobalId } from '../src/graphql/ids.ts';
import type { Tx } from '../src/db/database.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/observability/logger.ts';
import { SecretBox, SecretError, keyIdOf, parseMasterKey, sealedKeyId } from '../src/secrets/envelope.ts';
import { deleteSecret, getSecret, putFleetSecret, putSecret, putSiteSecret } from '../src/secrets/store.ts';
import { remainingCount, rotateSecrets } from '../src/secrets/rotate.ts';

/** Secrets at rest (issue 10 §3): the envelope, its storage out of the request role's reach, the definer functions, rotation. */
let app: TestApp;
let sql: pg.Client;
const pools: pg.Pool[] = [];
const databases: string[] = [];

const APP_ROLE = 'tenantplane_app';
const PLAIN = 'hunter2-correct-horse-battery-staple';
const newKey = () => crypto.randomBytes(32).toString('base64');

/** A database of its own, cloned from the migrated template: no key has been generated in it yet. */
async function freshDatabase() {
  const name = `tp_test_${inject('templateDb').replace('tp_template_', '')}_sec_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  await admin.query(`create database ${name} template ${inject('templateDb')}`);
  await admin.end();
  databases.push(name);
  return withDatabase(inject('adminUrl'), name);
}

function pool(url: string) {
  const p = new pg.Pool({ connectionString: url, max: 2 });
  pools.push(p);
  return p;
}

/** Runs SQL as the request role with a user's context, in a transaction that is rolled back. */
async function asRequestRole<T>(userId: string | null, fn: () => Promise<T>): Promise<T> {
  await sql.query('begin');
  try {
    await sql.query(`select set_config('role', $1, true), set_config('app.user_id', $2, true), set_config('app.tenant_id', '', true)`, [APP_ROLE, userId ?? '']);
    return await fn();
  } finally {
    await sql.query('rollback');
  }
}

const errorOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string; extensions?: { code?: string } };
  }
  throw new Error('expected a failure');
};

beforeAll(async () => {
  app = await startTestApp({ WORKERS: 'false' });
  sql = new pg.Client({ connectionString: app.databaseUrl });
  await sql.connect();
});

afterAll(async () => {
  await sql?.end();
  await app?.stop();
  for (const p of pools) await p.end().catch(() => undefined);
  const admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  for (const d of databases) await admin.query(`drop database if exists ${d} with (force)`).catch(() => undefined);
  await admin.end();
});

describe('the envelope', () => {
  it('seals and opens; the sealed string is self-describing and holds no plaintext', () => {
    const box = app.services.secrets;
    const ctx = `site-password:${crypto.randomUUID()}`;
    const sealed = box.seal(PLAIN, ctx);
    expect(sealed).toMatch(/^tpsec:v1:[0-9a-f]{12}:[A-Za-z0-9_-]{80}:[A-Za-z0-9_-]+$/);
    expect(sealedKeyId(sealed)).toBe(box.currentKeyId);
    expect(sealed).not.toContain(PLAIN);
    expect(sealed).not.toContain(Buffer.from(PLAIN).toString('base64url').slice(0, 12));
    expect(sealed).not.toContain(ctx);
    expect(box.open(sealed, ctx)).toBe(PLAIN);
    // Every seal is fresh (new data key, new IVs); unicode and empty values round-trip.
    expect(box.seal(PLAIN, ctx)).not.toBe(sealed);
    for (const v of ['', 'pässwörd ✓ 🔑', 'x'.repeat(2000)]) expect(box.open(box.seal(v, ctx), ctx)).toBe(v);
  });

  it('refuses the wrong context, any altered character, and an unknown key id — with messages that carry no secret', () => {
    const box = app.services.secrets;
    const ref = crypto.randomUUID();
    const sealed = box.seal(PLAIN, `site-password:${ref}`);
    const refusal = (s: string, ctx = `site-password:${ref}`) => {
      try {
        box.open(s, ctx);
      } catch (e) {
        expect(e).toBeInstanceOf(SecretError);
        expect((e as Error).message).not.toContain(PLAIN);
        expect((e as Error).message).not.toContain(sealed.split(':')[4]!.slice(0, 16));
        return (e as SecretError).code;
      }
      return 'opened';
    };
    expect(refusal(sealed, `site-password:${crypto.randomUUID()}`)).toBe('refused');
    expect(refusal(sealed, `storage-secret-key:${ref}`)).toBe('refused');
    const parts = sealed.split(':');
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    for (const [part, at] of [[3, 0], [3, 40], [4, 0], [4, 20], [4, parts[4]!.length - 2]] as const) {
      const altered = [...parts];
      altered[part] = flip(altered[part]!, at);
      expect(refusal(altered.join(':')), `part ${part} at ${at}`).toBe('refused');
    }
    // Another value's wrapped data key spliced in.
    const other = box.seal('other', `site-password:${ref}`).split(':');
    expect(refusal([...parts.slice(0, 3), other[3], parts[4]].join(':'))).toBe('refused');
    expect(refusal([parts[0], parts[1], 'aaaaaaaaaaaa', parts[3], parts[4]].join(':'))).toBe('unknown-key');
    expect(refusal('tpsec:v1:nope')).toBe('malformed');
    expect(refusal(PLAIN)).toBe('malformed');
    expect(() => box.seal(PLAIN, '')).toThrow(/context/);
  });

  it('never shows key material when logged or serialised; keys are validated readably', () => {
    const key = newKey();
    expect(() => parseMasterKey('too-short')).toThrow(/SECRETS_KEY must be 32 bytes/);
    expect(() => parseMasterKey(crypto.randomBytes(16).toString('base64'))).toThrow(/decodes to 16 bytes/);
    expect(parseMasterKey(crypto.randomBytes(32).toString('hex'))).toHaveLength(32);
    expect(parseMasterKey(crypto.randomBytes(32).toString('base64url'))).toHaveLength(32);
    const bad = crypto.randomBytes(20).toString('base64');
    const e = (() => {
      try {
        loadConfig({ SECRETS_KEY: bad, SECRETS_KEY_PREVIOUS: `${key},short` });
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    })();
    expect(e).toMatch(/SECRETS_KEY: SECRETS_KEY must be 32 bytes/);
    expect(e).toMatch(/SECRETS_KEY_PREVIOUS: SECRETS_KEY_PREVIOUS \(entry 2\) must be 32 bytes/);
    expect(e).not.toContain(bad);
    expect(loadConfig({ SECRETS_KEY: key, SECRETS_KEY_PREVIOUS: ` ${key} ,` }).secrets).toEqual({ key, previousKeys: [key] });

    const box = app.services.secrets;
    const shown = JSON.stringify(box) + util.inspect(box, { depth: 5, showHidden: true });
    expect(shown).toContain(box.currentKeyId);
    expect(shown).not.toMatch(/[A-Za-z0-9+/]{40,}/);

    // The logger redacts keys, passwords, storage secrets and sealed values wherever they sit.
    let out = '';
    const log = createLogger('info', new Writable({ write: (c, _e, cb) => ((out += c), cb()) }));
    const secret = crypto.randomBytes(12).toString('hex');
    log.info({ password: secret, sealed: secret, secretAccessKey: secret, SECRETS_KEY: secret, config: { secrets: { key: secret, previousKeys: [secret] } }, server: { adminPassword: secret, passwords: [secret] } }, 'x');
    expect(out).toContain('[redacted]');
    expect(out).not.toContain(secret);
  });
});

describe('storage out of the request role\'s reach', () => {
  it('the request role can neither read nor write app_private.secrets or the key table', async () => {
    for (const table of ['app_private.secrets', 'app_private.secret_keys']) {
      await asRequestRole(null, async () => expect(await errorOf(sql.query(`select * from ${table}`))).toMatchObject({ code: '42501' }));
      await asRequestRole(null, async () => expect(await errorOf(sql.query(`delete from ${table}`))).toMatchObject({ code: '42501' }));
    }
    const { rows } = await sql.query(`select relrowsecurity as rls, relforcerowsecurity as forced from pg_class where oid = any (array['app_private.secrets'::regclass, 'app_private.secret_keys'::regclass])`);
    expect(rows).toEqual([{ rls: true, forced: true }, { rls: true, forced: true }]);
  });

  it('putSecret / getSecret / deleteSecret with the owner pool; a value copied to another row does not open', async () => {
    const owner = app.services.ownerPool;
    const box = app.services.secrets;
    const a = crypto.randomUUID();
    const b = crypto.randomUUID();
    await putSecret(owner, box, 'database-server-password', a, PLAIN);
    await putSecret(owner, box, 'database-server-password', b, 'the other one');
    expect(await getSecret(owner, box, 'database-server-password', a)).toBe(PLAIN);
    await putSecret(owner, box, 'database-server-password', a, 'changed');
    expect(await getSecret(owner, box, 'database-server-password', a)).toBe('changed');
    expect(await getSecret(owner, box, 'storage-secret-key', a)).toBeNull();
    const { rows } = await sql.query(`select sealed, key_id, tenant_id from app_private.secrets where kind = 'database-server-password' and ref = $1`, [a]);
    expect(rows[0].sealed).not.toContain('changed');
    expect(rows[0]).toMatchObject({ key_id: box.currentKeyId, tenant_id: null });
    await sql.query(`update app_private.secrets set sealed = $1 where kind = 'database-server-password' and ref = $2`, [rows[0].sealed, b]);
    expect(await errorOf(getSecret(owner, box, 'database-server-password', b))).toMatchObject({ code: 'refused' });
    await deleteSecret(owner, 'database-server-password', b);
    expect(await deleteSecret(owner, 'database-server-password', a)).toBe(true);
    expect(await deleteSecret(owner, 'database-server-password', a)).toBe(false);
    expect(await getSecret(owner, box, 'database-server-password', a)).toBeNull();
    await expect(putSecret(owner, box, 'site-password', a, PLAIN)).rejects.toThrow(/needs its tenant/);
    // Plaintext cannot be stored by mistake: the column takes sealed values only.
    expect(await errorOf(sql.query(`insert into app_private.secrets (kind, ref, key_id, sealed) values ('registry-password', gen_random_uuid(), $1, 'plaintext')`, [box.currentKeyId]))).toMatchObject({ code: '23514' });
  });
});

describe('requests store what they sealed through the definer functions', () => {
  let owner: TestUser, member: TestUser, outsider: TestUser, staff: TestUser;
  let tenant: { id: string; uuid: string }, other: { id: string; uuid: string };
  let site: string, otherSite: string;
  const uuid = (u: TestUser) => uuidFromGlobalId('User', u.id, 'id');
  const CREATE_SITE = `mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } } }`;
  const as = (u: TestUser, fn: (tx: Tx) => Promise<unknown>) => app.services.db.withContext({ userId: uuid(u) }, fn);
  const stored = async (ref: string) => (await sql.query(`select tenant_id, sealed from app_private.secrets where kind = 'site-password' and ref = $1`, [ref])).rows[0];

  beforeAll(async () => {
    [owner, member, outsider, staff] = await Promise.all([signUp(app, 'sec-owner'), signUp(app, 'sec-member'), signUp(app, 'sec-outsider'), signUp(app, 'sec-staff')]);
    const t = await createTenant(owner, 'sec');
    const o = await createTenant(outsider, 'sec-other');
    tenant = { id: t.id, uuid: uuidFromGlobalId('Tenant', t.id, 'id') };
    other = { id: o.id, uuid: uuidFromGlobalId('Tenant', o.id, 'id') };
    await addMember(owner, tenant.id, member, 'MEMBER');
    site = rowUuid((await owner.gql.ok(CREATE_SITE, { i: { tenantId: tenant.id, name: `sec-${process.pid}`, displayName: 'Secret site' } })).createSite.site.id);
    otherSite = rowUuid((await outsider.gql.ok(CREATE_SITE, { i: { tenantId: other.id, name: `sec-o-${process.pid}`, displayName: 'Other site' } })).createSite.site.id);
    await sql.query(`update app_public.users set platform_role = 'SUPERADMIN' where id = $1`, [uuid(staff)]);
  });

  it('a member with sites:write stores a site password; the stored value opens for that site only', async () => {
    await as(owner, (tx) => putSiteSecret(tx, app.services.secrets, tenant.uuid, site, PLAIN));
    const row = await stored(site);
    expect(row.tenant_id).toBe(tenant.uuid);
    expect(row.sealed).not.toContain(PLAIN);
    expect(await getSecret(app.services.ownerPool, app.services.secrets, 'site-password', site)).toBe(PLAIN);
    // Seal-and-store again: a new password replaces the old.
    await as(owner, (tx) => putSiteSecret(tx, app.services.secrets, tenant.uuid, site, 'second'));
    expect(await getSecret(app.services.ownerPool, app.services.secrets, 'site-password', site)).toBe('second');
  });

  it('refuses a member without sites:write, another tenant\'s site, a site of the same id in another tenant, and garbage', async () => {
    const before = await stored(site);
    const refused = async (u: TestUser, tenantUuid: string, siteUuid: string) =>
      (await errorOf(as(u, (tx) => putSiteSecret(tx, app.services.secrets, tenantUuid, siteUuid, 'stolen')))).extensions?.code;
    expect(await refused(member, tenant.uuid, site)).toBe('FORBIDDEN');
    expect(await refused(outsider, tenant.uuid, site)).toBe('FORBIDDEN');
    expect(await refused(owner, other.uuid, otherSite)).toBe('FORBIDDEN');
    expect(await refused(owner, tenant.uuid, otherSite)).toBe('NOT_FOUND');
    expect(await refused(owner, tenant.uuid, crypto.randomUUID())).toBe('NOT_FOUND');
    // The request role may pick a site's id: a site of the other tenant with the same uuid cannot take over the secret.
    await sql.query(`insert into app_public.sites (tenant_id, id, name, display_name, domain) values ($1, $2, $3, 'Twin', $4)`, [other.uuid, site, `twin-${process.pid}`, `twin-${process.pid}.example`]);
    expect(await refused(outsider, other.uuid, site)).toBe('NOT_FOUND');
    expect(await stored(site)).toEqual(before);
    // Only sealed values are taken, and only by name through the function.
    await asRequestRole(uuid(owner), async () => {
      expect(await errorOf(sql.query(`select app.put_site_secret($1, $2, 'plaintext')`, [tenant.uuid, site]))).toMatchObject({ code: 'TPIN0' });
    });
    await asRequestRole(uuid(owner), async () => {
      expect(await errorOf(sql.query(`insert into app_private.secrets (kind, ref, tenant_id, key_id, sealed) values ('site-password', $1, $2, 'x', 'y')`, [site, tenant.uuid]))).toMatchObject({ code: '42501' });
    });
    expect(await stored(site)).toEqual(before);
  });

  it('fleet secrets need platform.fleet:write and a fleet kind', async () => {
    const ref = crypto.randomUUID();
    expect((await errorOf(as(owner, (tx) => putFleetSecret(tx, app.services.secrets, 'storage-secret-key', ref, PLAIN)))).extensions?.code).toBe('FORBIDDEN');
    await as(staff, (tx) => putFleetSecret(tx, app.services.secrets, 'storage-secret-key', ref, PLAIN));
    expect(await getSecret(app.services.ownerPool, app.services.secrets, 'storage-secret-key', ref)).toBe(PLAIN);
    const sealed = app.services.secrets.seal(PLAIN, `site-password:${ref}`);
    await asRequestRole(uuid(staff), async () => {
      expect(await errorOf(sql.query(`select app.put_fleet_secret('site-password', $1, $2)`, [ref, sealed]))).toMatchObject({ code: 'TPIN0' });
    });
    const { rows } = await sql.query(
      `select p.oid::regprocedure::text as fn, p.prosecdef as definer, has_function_privilege($1, p.oid, 'EXECUTE') as app
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace where p.proname in ('put_site_secret', 'put_fleet_secret', 'store_secret') order by 1`,
      [APP_ROLE],
    );
    expect(rows).toEqual([
      { fn: 'app.put_fleet_secret(text,uuid,text)', definer: true, app: true },
      { fn: 'app.put_site_secret(uuid,uuid,text)', definer: true, app: true },
      { fn: 'app_private.store_secret(text,uuid,uuid,text)', definer: true, app: false },
    ]);
  });

  it('a value sealed under a key a rotation deleted is refused (CONFLICT), not stored unreadable', async () => {
    const url = await freshDatabase();
    const p = pool(url);
    const stale = await SecretBox.load(p, {});
    await rotateSecrets(p, {});
    const c = await p.connect();
    try {
      await c.query('begin');
      await c.query(`select set_config('role', $1, true), set_config('app.user_id', '', true)`, [APP_ROLE]);
      const e = await errorOf(c.query(`select app.put_fleet_secret('registry-password', gen_random_uuid(), $1)`, [stale.seal(PLAIN, 'x:y')]));
      // No user: refused before the key is even looked at.
      expect(e).toMatchObject({ code: 'TPFB0' });
      await c.query('rollback');
      await c.query('begin');
      // As the owner (the worker path): the foreign key refuses the deleted key id.
      expect(await errorOf(c.query(`select app_private.store_secret('registry-password', gen_random_uuid(), null, $1)`, [stale.seal(PLAIN, 'x:y')]))).toMatchObject({ code: 'TPCF0' });
      await c.query('rollback');
    } finally {
      c.release();
    }
    // ensureCurrent (what putSecret and putSiteSecret do first) moves the stale box onto the new key.
    const before = stale.currentKeyId;
    await stale.ensureCurrent();
    expect(stale.currentKeyId).not.toBe(before);
    await putSecret(p, stale, 'registry-password', crypto.randomUUID(), PLAIN);
  });
});

describe('master keys', () => {
  it('concurrent first starts against a fresh database agree on one generated key', async () => {
    const url = await freshDatabase();
    const boxes = await Promise.all([0, 1, 2, 3].map(() => SecretBox.load(pool(url), {})));
    expect(new Set(boxes.map((b) => b.currentKeyId)).size).toBe(1);
    expect(boxes[0]!.mode).toBe('generated');
    const sealed = boxes[1]!.seal(PLAIN, 'registry-password:1');
    for (const b of boxes) expect(b.open(sealed, 'registry-password:1')).toBe(PLAIN);
    const { rows } = await pools.at(-1)!.query(`select id, source, retired_at from app_private.secret_keys`);
    expect(rows).toEqual([{ id: boxes[0]!.currentKeyId, source: 'generated', retired_at: null }]);
  });

  it('SECRETS_KEY: its id is recorded, never its material; SECRETS_KEY_PREVIOUS opens older values', async () => {
    const url = await freshDatabase();
    const p = pool(url);
    const k1 = newKey();
    const k2 = newKey();
    const one = await SecretBox.load(p, { key: k1 });
    expect(one.mode).toBe('env');
    expect(one.currentKeyId).toBe(keyIdOf(parseMasterKey(k1)));
    const sealed = one.seal(PLAIN, 'registry-password:1');
    const two = await SecretBox.load(p, { key: k2, previousKeys: [k1] });
    expect(two.open(sealed, 'registry-password:1')).toBe(PLAIN);
    const three = await SecretBox.load(p, { key: k2 });
    expect(await errorOf(three.openWithReload(sealed, 'registry-password:1'))).toMatchObject({ code: 'unknown-key' });
    const { rows } = await p.query(`select id, source, key from app_private.secret_keys order by created_at`);
    expect(rows).toEqual([
      { id: one.currentKeyId, source: 'env', key: null },
      { id: two.currentKeyId, source: 'env', key: null },
    ]);
  });
});

describe('rotation', () => {
  it('generated mode: a new key, every data key rewrapped (ciphertext untouched), the old key gone; running processes keep reading', async () => {
    const owner = app.services.ownerPool;
    const running = app.services.secrets; // loaded before the rotation, as a running API process's is
    const refs = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    for (const [i, ref] of refs.entries()) await putSecret(owner, running, 'database-server-password', ref, `value-${i}`);
    const old = running.currentKeyId;
    const before = (await sql.query(`select ref, sealed from app_private.secrets order by kind, ref`)).rows as Array<{ ref: string; sealed: string }>;
    const report = await rotateSecrets(owner, {});
    expect(report).toMatchObject({ mode: 'generated', retiredKeyId: old, rewrapped: before.length, alreadyCurrent: 0, remaining: {}, unreadable: 0, deletedKeys: [old], keptKeys: [] });
    expect(report.keyId).not.toBe(old);
    const after = (await sql.query(`select ref, sealed, key_id from app_private.secrets order by kind, ref`)).rows as Array<{ ref: string; sealed: string; key_id: string }>;
    expect(after.map((r) => r.key_id)).toEqual(after.map(() => report.keyId));
    // The envelope's point: only the wrapped data key changed.
    expect(after.map((r) => r.sealed.split(':')[4])).toEqual(before.map((r) => r.sealed.split(':')[4]));
    expect(after.map((r) => r.sealed.split(':')[3])).not.toContain(before[0]!.sealed.split(':')[3]);
    const { rows: keys } = await sql.query(`select id, retired_at from app_private.secret_keys`);
    expect(keys).toEqual([{ id: report.keyId, retired_at: null }]);
    // The running box opens the new values (reloading once) and seals under the new key before it stores.
    for (const [i, ref] of refs.entries()) expect(await getSecret(owner, running, 'database-server-password', ref)).toBe(`value-${i}`);
    await putSecret(owner, running, 'database-server-password', refs[0]!, 'after');
    expect(running.currentKeyId).toBe(report.keyId);
    // A fresh process agrees.
    const fresh = await SecretBox.load(owner, {});
    expect(fresh.currentKeyId).toBe(report.keyId);
    expect(await getSecret(owner, fresh, 'database-server-password', refs[0]!)).toBe('after');

    // Again: safe to re-run — another fresh key, nothing lost, nothing left behind.
    const again = await rotateSecrets(owner, {});
    expect(again).toMatchObject({ retiredKeyId: report.keyId, rewrapped: after.length, remaining: {}, deletedKeys: [report.keyId], keptKeys: [] });
    for (const ref of refs.slice(1)) expect(await getSecret(owner, running, 'database-server-password', ref)).toMatch(/^value-/);
  });

  it('env mode: everything moves under SECRETS_KEY (opening with SECRETS_KEY_PREVIOUS), then a re-run is a no-op', async () => {
    const url = await freshDatabase();
    const p = pool(url);
    const generated = await SecretBox.load(p, {});
    const refs = [crypto.randomUUID(), crypto.randomUUID()];
    for (const ref of refs) await putSecret(p, generated, 'registry-password', ref, `r-${ref}`);
    const k1 = newKey();
    // From the generated key to SECRETS_KEY: the generated key is deleted once nothing needs it.
    const first = await rotateSecrets(p, { key: k1 });
    expect(first).toMatchObject({ mode: 'env', keyId: keyIdOf(parseMasterKey(k1)), rewrapped: 2, remaining: {}, deletedKeys: [generated.currentKeyId] });
    expect(await rotateSecrets(p, { key: k1 })).toMatchObject({ rewrapped: 0, alreadyCurrent: 2, remaining: {}, deletedKeys: [] });
    // k1 → k2 without k1 among the previous keys: nothing can move, k1 is kept, and the report says what is missing.
    const k2 = newKey();
    const stuck = await rotateSecrets(p, { key: k2 });
    expect(stuck).toMatchObject({ rewrapped: 0, remaining: { [first.keyId]: 2 }, unreadable: 0, keptKeys: [first.keyId] });
    expect(remainingCount(stuck)).toBe(2);
    const moved = await rotateSecrets(p, { key: k2, previousKeys: [k1] });
    expect(moved).toMatchObject({ rewrapped: 2, remaining: {}, deletedKeys: [first.keyId], keptKeys: [] });
    const box = await SecretBox.load(p, { key: k2 });
    for (const ref of refs) expect(await getSecret(p, box, 'registry-password', ref)).toBe(`r-${ref}`);
    expect(await rotateSecrets(p, { key: k2, previousKeys: [k1] })).toMatchObject({ rewrapped: 0, alreadyCurrent: 2, remaining: {}, deletedKeys: [] });
  });

  it('`tenantplane secrets:rotate` as a process: counts and key ids, never a value; exit 1 when values still need an old key', async () => {
    const url = await freshDatabase();
    const p = pool(url);
    const box = await SecretBox.load(p, {});
    await putSecret(p, box, 'registry-password', crypto.randomUUID(), PLAIN);
    const run = (env: Record<string, string>) =>
      new Promise<{ code: number; out: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', 'src/main.ts', 'secrets:rotate'],
          { env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'silent', SECRETS_KEY: '', SECRETS_KEY_PREVIOUS: '', ...env }, timeout: 60_000 },
          (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
        );
      });
    const generated = await run({});
    expect(generated.code, generated.out).toBe(0);
    expect(generated.out).toMatch(/secrets:rotate \(generated key\): sealing under new key [0-9a-f]{12}, retired [0-9a-f]{12}/);
    expect(generated.out).toMatch(/1 values: 1 rewrapped, 0 already under [0-9a-f]{12}, 0 still need an old key/);
    const k = newKey();
    const env = await run({ SECRETS_KEY: k });
    expect(env.code, env.out).toBe(0);
    expect(env.out).toMatch(/1 values: 1 rewrapped/);
    const missing = await run({ SECRETS_KEY: newKey() });
    expect(missing.code).toBe(1);
    expect(missing.out).toMatch(/1 still need an old key/);
    expect(missing.out).toMatch(/add it to SECRETS_KEY_PREVIOUS/);
    expect(missing.out).toMatch(/tenantplane secrets:rotate failed: 1 values could not be rewrapped/);
    const bad = await run({ SECRETS_KEY: 'not-a-key' });
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/SECRETS_KEY must be 32 bytes/);
    for (const r of [generated, env, missing, bad]) {
      expect(r.out).not.toContain(PLAIN);
      expect(r.out).not.toContain(k);
      expect(r.out).not.toMatch(/tpsec:v1:/);
    }
  }, 120_000);
});
