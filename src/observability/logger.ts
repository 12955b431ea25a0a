import pino from 'pino';

/**
 * Keys that must never reach a log line, wherever they sit in a logged object (two levels deep). Nothing logs
 * request bodies or variables on purpose; this is the net under that rule.
 */
export const REDACTED_KEYS = [
  'authorization', 'Authorization', 'cookie', 'password', 'newPassword', 'token', 'accessToken', 'refreshToken', 'connectionParams', 'variables',
  'METRICS_TOKEN', 'API_KEY_PEPPER', 'SECRETS_KEY', 'SECRETS_KEY_PREVIOUS', 'S3_SECRET_ACCESS_KEY',
  // Secrets at rest (src/secrets/): plaintext and sealed forms, fleet credentials.
  'passwords', 'adminPassword', 'sitePassword', 'secretAccessKey', 'secretKey', 'sealed', 'plaintext', 'previousKeys', 'secretsKey',
];

export const redactPaths = [
  ...REDACTED_KEYS,
  ...REDACTED_KEYS.map((k) => `*.${k}`),
  ...REDACTED_KEYS.map((k) => `*.*.${k}`),
  // config.secrets.key and the like (a logged config object).
  'secrets.key',
  '*.secrets.key',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

/** Structured JSON logs (pino) with the secrets redacted. */
export function createLogger(level: string, destination?: pino.DestinationStream) {
  const options: pino.LoggerOptions = { level, redact: { paths: redactPaths, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}
