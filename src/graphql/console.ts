import express from 'express';
import type { Logger } from 'pino';
import { assetVersion, contentSecurityPolicy, ensureWebBundle, sendPage, serveAssets } from './web-assets.ts';

/**
 * The console (issue 12 §2) at /console, served by the API process itself from dist/web/ (console/app/, bundled at
 * install). Strictest CSP of the server: scripts, styles, fetches and sockets of this origin only, nothing inline —
 * and uploads to the object storage's origin (`storageOrigin`), where presigned URLs point.
 */
export const consoleCsp = (storageOrigin: string) => contentSecurityPolicy({ connect: [storageOrigin] });

/** `oidcProvider`: the label of the "Log in with …" button, when OIDC sign-in is configured. */
export function consoleRouter(log: Logger, storageOrigin: string, oidcProvider?: string) {
  ensureWebBundle(log);
  const csp = consoleCsp(storageOrigin);
  const oidcMeta = oidcProvider ? `\n<meta name="tenantplane-oidc" content="${escapeHtml(oidcProvider)}">` : '';
  const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tenantplane console</title>
<meta name="tenantplane-hash-worker" content="/console/assets/hash-worker.js?v=${assetVersion('hash-worker.js')}">${oidcMeta}
<link rel="stylesheet" href="/console/assets/console.css?v=${assetVersion('console.css')}">
<script type="module" src="/console/assets/console.js?v=${assetVersion('console.js')}"></script>
</head>
<body>
<div id="console"><noscript>The console needs JavaScript.</noscript></div>
</body>
</html>`;
  const router = express.Router();
  router.use(...serveAssets('/console/assets'));
  router.get(['/console', '/console/'], (_req, res) => {
    sendPage(res, page, csp);
  });
  return router;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
