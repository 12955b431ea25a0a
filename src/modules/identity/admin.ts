import crypto from 'node:crypto';
import readline from 'node:readline/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../../config.ts';
import { resolveDatabase } from '../../app.ts';
import { migrate } from '../../db/migrate.ts';
import { PasswordHasher, passwordProblem } from '../../auth/passwords.ts';
import { email as emailSchema } from '../../graphql/validate.ts';

/**
 * `npm run admin:create -- --email …`: creates a SUPERADMIN, or promotes an existing user. A new account's password
 * is prompted for on a terminal (empty → generated) or generated and printed once; there is no default password.
 */
export async function createSuperadmin(config: Config, log: Logger, rawEmail: string | undefined, name: string | undefined) {
  const parsed = emailSchema.safeParse(rawEmail ?? '');
  if (!parsed.success) throw new Error('usage: npm run admin:create -- --email you@example.com [--name "Your Name"]');
  const email = parsed.data;
  const { url, embedded } = await resolveDatabase(config, log);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  try {
    await migrate(url);
    const existing = await pool.query(`select id from app_public.users where email = $1`, [email]);
    if (existing.rowCount) {
      await pool.query(`update app_public.users set platform_role = 'SUPERADMIN', updated_at = now() where email = $1`, [email]);
      console.log(`${email} is now SUPERADMIN (password unchanged)`);
      return;
    }
    let password = '';
    if (process.stdin.isTTY) {
      const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
      password = (await rl.question('Password (empty to generate one): ')).trim();
      rl.close();
    }
    const generated = !password;
    if (generated) password = crypto.randomBytes(18).toString('base64url');
    const problem = passwordProblem(password, email);
    if (problem) throw new Error(problem);
    const hash = await new PasswordHasher(config.auth.argon2).hash(password);
    const client = await pool.connect();
    try {
      await client.query('begin');
      const { rows } = await client.query(`select app.sign_up($1, $2, $3) as id`, [email, name ?? email.split('@')[0], hash]);
      await client.query(`update app_public.users set platform_role = 'SUPERADMIN' where id = $1`, [rows[0].id]);
      await client.query('commit');
    } catch (e) {
      await client.query('rollback').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
    console.log(`created SUPERADMIN ${email}`);
    if (generated) console.log(`password (shown once, store it now): ${password}`);
  } finally {
    await pool.end();
    await embedded?.stop();
  }
}
