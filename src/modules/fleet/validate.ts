import path from 'node:path';
import ipaddr from 'ipaddr.js';
import validator from 'validator';
import { z } from 'zod';

/**
 * Input rules of the fleet (issue 10 §1, seed 001), kept with well-kept libraries: ipaddr.js parses IPv4/IPv6
 * addresses and CIDR networks, validator's isFQDN checks host names. Each rule normalises what it accepts to the form
 * PostgreSQL stores (sql/0025's CHECKs are the last word); a refusal says what is expected.
 */

/** A DNS label sequence: server, cluster and region names (sql/0025). */
const NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export const fleetName = (what: string) =>
  z
    .string()
    .trim()
    .toLowerCase()
    .regex(NAME, `a ${what} name has 1 to 63 lowercase letters, digits and inner hyphens`)
    .refine((s) => !s.includes('--'), `a ${what} name cannot contain two hyphens in a row`);

export const region = z
  .string()
  .trim()
  .toLowerCase()
  .regex(NAME, 'a region has 1 to 63 lowercase letters, digits and inner hyphens, e.g. eu-west-1');

/** One IPv4 (four decimal parts) or IPv6 address, without a prefix or zone; normalised (IPv6 per RFC 5952). */
export function parseIp(value: string): string | null {
  const s = value.trim();
  if (ipaddr.IPv4.isValidFourPartDecimal(s)) return ipaddr.IPv4.parse(s).toString();
  if (!s.includes('%') && ipaddr.IPv6.isValid(s)) return ipaddr.IPv6.parse(s).toRFC5952String();
  return null;
}

export const ipAddress = z.string().transform((value, ctx) => {
  const ip = parseIp(value);
  if (!ip) {
    ctx.addIssue({ code: 'custom', message: `"${value.slice(0, 64)}" is not an IPv4 or IPv6 address (e.g. 203.0.113.10 or 2001:db8::10, no prefix length)` });
    return z.NEVER;
  }
  return ip;
});

/** One network in CIDR notation whose host bits are zero (10.0.0.0/8, fd00::/8), normalised; or why not. */
export function parseCidr(value: string): { cidr: string } | { error: string } {
  const s = value.trim();
  const shown = `"${s.slice(0, 64)}"`;
  const v4 = ipaddr.IPv4.isValidCIDRFourPartDecimal(s);
  if (!v4 && (s.includes('%') || !ipaddr.IPv6.isValidCIDR(s))) return { error: `${shown} is not a network in CIDR notation (e.g. 10.0.0.0/8 or fd00::/8)` };
  const [address, bits] = ipaddr.parseCIDR(s);
  const network = address.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(s) : ipaddr.IPv6.networkAddressFromCIDR(s);
  const text = (ip: ipaddr.IPv4 | ipaddr.IPv6) => (ip.kind() === 'ipv6' ? (ip as ipaddr.IPv6).toRFC5952String() : ip.toString());
  if (text(address) !== text(network)) return { error: `${shown} has host bits set: the network is ${text(network)}/${bits}` };
  return { cidr: `${text(network)}/${bits}` };
}

/** 1 to 32 internal networks, each a CIDR, no duplicates; refusals are reported on the list as a whole. */
export const networks = z
  .array(z.string())
  .max(32, 'a cluster has at most 32 internal networks')
  .transform((list, ctx) => {
    const out: string[] = [];
    for (const [i, value] of list.entries()) {
      const parsed = parseCidr(value);
      if ('error' in parsed) {
        ctx.addIssue({ code: 'custom', message: list.length > 1 ? `network ${i + 1}: ${parsed.error}` : parsed.error });
        return z.NEVER;
      }
      if (!out.includes(parsed.cidr)) out.push(parsed.cidr);
    }
    return out;
  });

/** A fully qualified host name (db1.example.com), lowercase, no trailing dot. */
export const fqdn = z
  .string()
  .trim()
  .toLowerCase()
  .refine((s) => s.length <= 253 && validator.isFQDN(s, { require_tld: true, allow_underscores: false, allow_trailing_dot: false }), {
    message: 'a hostname is a fully qualified domain name such as db1.example.com',
  });

/** Where a client connects: a host name (a single label such as localhost too) or an IP address. */
export const endpointHost = z
  .string()
  .trim()
  .toLowerCase()
  .transform((s, ctx) => {
    const ip = parseIp(s);
    if (ip) return ip;
    if (s.length <= 253 && validator.isFQDN(s, { require_tld: false, allow_underscores: false, allow_trailing_dot: false })) return s;
    ctx.addIssue({ code: 'custom', message: 'the host is a host name (db1.example.com, localhost) or an IP address' });
    return z.NEVER;
  });

/**
 * A Docker container group: kebab-case, starting with a letter, ending in `-c` and the group's number (1–4 digits),
 * like seed 001's `erp-saas-cloud-c16`. The same pattern as sql/0025's CHECK.
 */
export const CONTAINER_PREFIX = /^[a-z][a-z0-9]*(-[a-z0-9]+)*-c[0-9]{1,4}$/;
export const containerPrefix = z
  .string()
  .trim()
  .max(63, 'a container prefix has at most 63 characters')
  .regex(CONTAINER_PREFIX, 'a container prefix is lowercase kebab-case ending in -c and a number, e.g. erp-saas-cloud-c16');

/** The Docker socket: an absolute, normalised path (/var/run/docker.sock). */
export const dockerSocket = z
  .string()
  .trim()
  .refine(
    (s) => s.length <= 4096 && path.posix.isAbsolute(s) && !s.includes('\0') && path.posix.normalize(s) === s && !s.endsWith('/'),
    'the docker socket is an absolute path such as /var/run/docker.sock (no "..", no trailing slash)',
  );

export const port = z.number().int('a port is a whole number').min(1, 'a port is between 1 and 65535').max(65535, 'a port is between 1 and 65535');

/** A PostgreSQL login that sql/0025 accepts (letters, digits, _, $, -; starts with a letter or _). */
export const adminUser = z
  .string()
  .trim()
  .regex(/^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/, 'the admin user is a PostgreSQL role name: a letter or _, then letters, digits, _, $ or -, at most 63');

/** A write-only secret: never trimmed (spaces may be part of it), never echoed in a message. */
export const secret = (what: string) =>
  z.string().min(1, `the ${what} cannot be empty`).max(1024, `the ${what} has at most 1024 characters`).refine((s) => !s.includes('\0'), `the ${what} cannot contain NUL`);

export const databaseName = z
  .string()
  .trim()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'the sites database is a lowercase PostgreSQL name: a letter or _, then letters, digits or _, at most 63');

export const capacity = z.number().int('the capacity is a whole number of sites').min(0, 'the capacity cannot be negative').max(1_000_000, 'the capacity is at most 1000000 sites');

/** An S3 endpoint: an http(s) URL, no credentials, query or fragment. */
export const s3Endpoint = z
  .string()
  .trim()
  .transform((s, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(s);
    } catch {
      url = undefined;
    }
    if (!url || !/^https?:$/.test(url.protocol) || url.username || url.password || url.search || url.hash || !url.hostname) {
      ctx.addIssue({ code: 'custom', message: 'the endpoint is an http(s) URL such as https://s3.eu-west-1.amazonaws.com, without credentials or query' });
      return z.NEVER;
    }
    return url.toString().replace(/\/$/, '');
  });

export const s3Region = z
  .string()
  .trim()
  .regex(/^[a-z0-9-]{1,32}$/, 'the region has 1 to 32 lowercase letters, digits and hyphens, e.g. us-east-1');

export const accessKeyId = z.string().trim().min(1, 'the access key id cannot be empty').max(256, 'the access key id has at most 256 characters');

/** S3's bucket naming rules (DNS-compliant: 3–63 characters, no IP form, no `..`). */
export const bucket = z
  .string()
  .trim()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'a bucket name has 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit')
  .refine((s) => !s.includes('..') && !ipaddr.IPv4.isValidFourPartDecimal(s), 'a bucket name cannot contain ".." or look like an IP address');

export const title = z
  .string()
  .trim()
  .min(1, 'the title cannot be empty')
  .max(100, 'the title has at most 100 characters')
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'the title cannot contain control characters');
