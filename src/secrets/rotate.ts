import crypto from 'node:crypto';
import type pg from 'pg';
import { SecretBox, SecretError, keyIdOf, readKeyRows, sealedKeyId, type KeyMode, type SecretBoxOptions } from './envelope.ts';
import { secretContext, type SecretKind } from './store.ts';

export interface RotationReport {
  mode: KeyMode;
  /** The key every value is wrapped under now. */
  keyId: string;
  /** Generated mode: the key this run retired (null on a database that had none). Env mode: null. */
  retiredKeyId: string | null;
  /** Values in app_private.secrets. */
  values: number;
  /** Values whose data key was wrapped again under `keyId` (their ciphertext is untouched). */
  rewrapped: number;
  /** Values that were under `keyId` already. */
  alreadyCurrent: number;
  /** Values still under another key, by key id: their key is unknown here (SECRETS_KEY_PREVIOUS?) or they do not open. */
  remaining: Record<string, number>;
  /** Of those, values that do not open with the key they name (altered, or copied from another row). */
  unreadable: number;
  /** Keys deleted because no value needs them any more. */
  deletedKeys: string[];
  /** Keys kept because values still need them (besides `keyId`). */
  keptKeys: string[];
}

export const remainingCount = (r: RotationReport) => Object.values(r.remaining).reduce((a, b) => a + b, 0);

/**
 * Key rotation, in one transaction that locks both tables against writers (readers go on):
 * - generated mode (no SECRETS_KEY): a new key is generated and becomes current, the old one is retired;
 * - env mode: SECRETS_KEY is current, SECRETS_KEY_PREVIOUS and the generated keys open what it does not.
 * Then every value's data key is unwrapped and wrapped again under the current key (the value's own ciphertext is
 * not touched, nor ever decrypted), and every key no value needs any more is deleted. A value that cannot be
 * rewrapped stays as it was, under its key, and is counted in `remaining`. Re-running is safe: in env mode a second
 * run finds nothing to do; in generated mode each run rotates to a fresh key again. API processes keep working:
 * they open a value of a key they do not know by reloading the keys once, and check the current key before sealing.
 */
export async function rotateSecrets(ownerPool: pg.Pool, opts: SecretBoxOptions = {}): Promise<RotationReport> {
  const client = await ownerPool.connect();
  try {
    await client.query('begin');
    // Writers (putSecret, the definer functions, a first start generating a key) wait for the rotation; readers don't.
    await client.query('lock table app_private.secret_keys, app_private.secrets in exclusive mode');
    const mode: KeyMode = opts.key ? 'env' : 'generated';
    let retiredKeyId: string | null = null;
    if (mode === 'generated') {
      const { rows } = await client.query<{ id: string }>(
        `update app_private.secret_keys set retired_at = now() where source = 'generated' and retired_at is null returning id`,
      );
      retiredKeyId = rows[0]?.id ?? null;
      const fresh = crypto.randomBytes(32);
      await client.query(`insert into app_private.secret_keys (id, source, key) values ($1, 'generated', $2)`, [keyIdOf(fresh), fresh]);
    }
    const box = SecretBox.fromKeyRows(ownerPool, opts, await readKeyRows(client));
    const keyId = box.currentKeyId;
    if (mode === 'env') await client.query(`insert into app_private.secret_keys (id, source) values ($1, 'env') on conflict do nothing`, [keyId]);

    const { rows: values } = await client.query<{ kind: SecretKind; ref: string; sealed: string }>(`select kind, ref, sealed from app_private.secrets order by kind, ref`);
    const report: RotationReport = { mode, keyId, retiredKeyId, values: values.length, rewrapped: 0, alreadyCurrent: 0, remaining: {}, unreadable: 0, deletedKeys: [], keptKeys: [] };
    for (const v of values) {
      const from = sealedKeyId(v.sealed) ?? 'malformed';
      try {
        const sealed = box.rewrap(v.sealed, secretContext(v.kind, v.ref));
        if (sealed === v.sealed) {
          report.alreadyCurrent++;
          continue;
        }
        await client.query(`update app_private.secrets set sealed = $3, key_id = $4 where kind = $1 and ref = $2`, [v.kind, v.ref, sealed, keyId]);
        report.rewrapped++;
      } catch (e) {
        if (!(e instanceof SecretError)) throw e;
        if (e.code !== 'unknown-key') report.unreadable++;
        report.remaining[from] = (report.remaining[from] ?? 0) + 1;
      }
    }
    const { rows: deleted } = await client.query<{ id: string }>(
      `delete from app_private.secret_keys k where k.id <> $1 and not exists (select 1 from app_private.secrets s where s.key_id = k.id) returning id`,
      [keyId],
    );
    report.deletedKeys = deleted.map((r) => r.id).sort();
    const { rows: kept } = await client.query<{ id: string }>(`select id from app_private.secret_keys where id <> $1 order by id`, [keyId]);
    report.keptKeys = kept.map((r) => r.id);
    await client.query('commit');
    return report;
  } catch (e) {
    await client.query('rollback').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}

/** The report in words: counts and key ids, never a value. */
export function describeRotation(r: RotationReport): string[] {
  const lines = [
    r.mode === 'generated'
      ? `secrets:rotate (generated key): sealing under new key ${r.keyId}${r.retiredKeyId ? `, retired ${r.retiredKeyId}` : ''}`
      : `secrets:rotate (SECRETS_KEY): sealing under key ${r.keyId}`,
    `${r.values} values: ${r.rewrapped} rewrapped, ${r.alreadyCurrent} already under ${r.keyId}, ${remainingCount(r)} still need an old key`,
  ];
  for (const [kid, n] of Object.entries(r.remaining)) lines.push(`  ${n} under key ${kid}${r.mode === 'env' ? ' (add it to SECRETS_KEY_PREVIOUS)' : ''}`);
  if (r.unreadable) lines.push(`  of which ${r.unreadable} do not open with the key they name (altered or copied from another row)`);
  lines.push(`keys deleted: ${r.deletedKeys.length ? r.deletedKeys.join(', ') : 'none'}; keys kept for values that need them: ${r.keptKeys.length ? r.keptKeys.join(', ') : 'none'}`);
  return lines;
}
