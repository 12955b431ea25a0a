import { z } from 'zod';
import { badInput } from './errors.ts';

/** Validates a mutation input with zod; the first problem becomes BAD_USER_INPUT naming its field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw badInput(issue.path.map(String).join('.') || 'input', issue.message);
  }
  return result.data;
}

export const email = z
  .string()
  .trim()
  .toLowerCase()
  .max(254, 'the email is too long')
  .pipe(z.email({ message: 'this is not a valid email address' }));

/** Reserved: names a tenant could use to impersonate the platform or collide with routes and DNS labels. */
const RESERVED_SLUGS = new Set([
  'admin', 'administrator', 'api', 'app', 'auth', 'billing', 'blog', 'cdn', 'dashboard', 'dev', 'docs', 'ftp', 'graphql',
  'help', 'internal', 'login', 'logout', 'mail', 'metrics', 'ns1', 'ns2', 'root', 'signup', 'smtp', 'staff', 'static',
  'status', 'support', 'system', 'tenantplane', 'test', 'www', 'health', 'well-known', 'localhost', 'platform', 'security',
]);

export const slug = z
  .string()
  .trim()
  .min(3, 'a slug has 3 to 63 characters')
  .max(63, 'a slug has 3 to 63 characters')
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, 'a slug is DNS-safe: lowercase letters, digits and inner hyphens')
  .refine((s) => !s.includes('--'), 'a slug cannot contain two hyphens in a row')
  .refine((s) => !RESERVED_SLUGS.has(s), 'this slug is reserved');

export const displayName = (what: string, max: number) =>
  z
    .string()
    .trim()
    .min(1, `the ${what} cannot be empty`)
    .max(max, `the ${what} has at most ${max} characters`)
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), `the ${what} cannot contain control characters`);

/** 3–32 letters, digits and inner `.`, `_`, `-` (not two in a row); never an `@`, so it cannot pass for an email (sql/0019). */
export const username = z
  .string()
  .trim()
  .min(3, 'a username has 3 to 32 characters')
  .max(32, 'a username has 3 to 32 characters')
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/, 'a username has letters, digits and inner dots, underscores or hyphens')
  .refine((s) => !/[._-]{2}/.test(s), 'a username cannot have two dots, underscores or hyphens in a row');
