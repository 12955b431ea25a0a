import { hash, verify } from '@node-rs/argon2';

/** @node-rs/argon2's `Algorithm.Argon2id` (an ambient const enum, not importable under isolatedModules). */
const ARGON2ID = 2;

export interface Argon2Cost {
  memoryCost: number;
  timeCost: number;
}

export class PasswordHasher {
  /** A hash of a random password: verified against when the email is unknown, so both paths cost the same. */
  private dummy: Promise<string>;

  constructor(private readonly cost: Argon2Cost) {
    this.dummy = this.hash(crypto.randomUUID());
  }

  hash(password: string) {
    return hash(password, { algorithm: ARGON2ID, memoryCost: this.cost.memoryCost, timeCost: this.cost.timeCost, parallelism: 1 });
  }

  /** Verifies against the stored hash, or against a dummy hash when there is none (unknown user, OIDC-only user). */
  async verify(storedHash: string | null | undefined, password: string): Promise<boolean> {
    const target = storedHash ?? (await this.dummy);
    const ok = await verify(target, password).catch(() => false);
    return ok && !!storedHash;
  }
}

const COMMON = new Set(['password', 'password1', 'password123', '1234567890', '12345678910', 'qwertyuiop', 'iloveyou12', 'letmein123', 'welcome123', 'administrator', 'passw0rd12', 'qwerty12345']);

/** Length over composition rules (NIST SP 800-63B): 10–200 characters, not common, not repetitive, not the email. */
export function passwordProblem(password: string, email: string): string | null {
  if (password.length < 10) return 'the password must have at least 10 characters';
  if (password.length > 200) return 'the password must have at most 200 characters';
  const lower = password.toLowerCase();
  if (COMMON.has(lower)) return 'this password is too common';
  if (new Set(password).size < 4) return 'the password needs more distinct characters';
  if (lower.includes(email.toLowerCase().split('@')[0]!) && email.split('@')[0]!.length >= 4) return 'the password must not contain your email';
  return null;
}
