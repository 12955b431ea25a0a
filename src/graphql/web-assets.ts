import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { Logger } from 'pino';

/** What the browser pages of the server (GraphiQL, the console) share: the bundle in dist/web/ and how it is served. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WEB_ASSETS_DIR = path.join(root, 'dist', 'web');

/** Builds the bundle when it is missing (a checkout without `npm install`'s postinstall): once, before listening. */
export function ensureWebBundle(log: Logger) {
  if (['graphiql.js', 'console.js', 'hash-worker.js'].every((f) => fs.existsSync(path.join(WEB_ASSETS_DIR, f)))) return;
  log.info('building the browser bundles (dist/web/)');
  execFileSync(process.execPath, [path.join(root, 'console', 'build.mjs')], { cwd: root, stdio: 'ignore' });
}

/** A short content hash of a bundled file, for cache-busting URLs (the files are served immutable). */
export const assetVersion = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(path.join(WEB_ASSETS_DIR, file))).digest('hex').slice(0, 12);

/**
 * Nothing but this origin: scripts, styles, fetches and sockets. `inlineStyles` for pages whose widgets need them;
 * `connect` for the other origins a page sends to (the console's uploads go straight to object storage).
 */
export function contentSecurityPolicy(opts: { inlineStyles?: boolean; connect?: string[] } = {}) {
  return [
    "default-src 'none'",
    "script-src 'self'",
    opts.inlineStyles ? "style-src 'self' 'unsafe-inline'" : "style-src 'self'",
    "img-src 'self' data:",
    opts.inlineStyles ? "font-src 'self' data:" : null,
    ["connect-src 'self'", ...(opts.connect ?? [])].join(' '),
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ]
    .filter(Boolean)
    .join('; ');
}

/** The bundle's files under `mount`, immutable, nothing else. */
export const serveAssets = (mount: string) => [mount, express.static(WEB_ASSETS_DIR, { immutable: true, maxAge: '1y', index: false, fallthrough: false })] as const;

/** An HTML page under its CSP, never cached (its asset URLs carry their versions). */
export function sendPage(res: express.Response, html: string, csp: string) {
  res.set('content-security-policy', csp).set('x-content-type-options', 'nosniff').set('referrer-policy', 'no-referrer').set('cache-control', 'no-cache');
  res.type('html').send(html);
}
