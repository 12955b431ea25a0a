import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { Logger } from 'pino';
import { ensureWebBundle } from './graphiql.ts';

/**
 * The console (issue 12 §2) at /console, served by the API process itself from dist/web/ (web/console/, bundled at
 * install). Strictest CSP of the server: scripts, styles, fetches and sockets of this origin only, nothing inline.
 */
const assetsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'web');

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function consoleRouter(log: Logger) {
  ensureWebBundle(log);
  const version = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(path.join(assetsDir, file))).digest('hex').slice(0, 12);
  const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tenantplane console</title>
<link rel="stylesheet" href="/console/assets/console.css?v=${version('console.css')}">
<script type="module" src="/console/assets/console.js?v=${version('console.js')}"></script>
</head>
<body>
<div id="console"><noscript>The console needs JavaScript.</noscript></div>
</body>
</html>`;
  const router = express.Router();
  router.use('/console/assets', express.static(assetsDir, { immutable: true, maxAge: '1y', index: false, fallthrough: false }));
  router.get(['/console', '/console/'], (_req, res) => {
    res.set('content-security-policy', CONSOLE_CSP).set('x-content-type-options', 'nosniff').set('referrer-policy', 'no-referrer').set('cache-control', 'no-cache');
    res.type('html').send(page);
  });
  return router;
}
