import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { Kind, parse, print, visit, type DefinitionNode, type FragmentDefinitionNode, type OperationDefinitionNode } from 'graphql';
import type { Logger } from 'pino';
import { assetVersion, contentSecurityPolicy, ensureWebBundle, sendPage, serveAssets } from './web-assets.ts';

/**
 * GraphiQL served by our own server (issue 12 §1): the page and its bundle (dist/web/, built by console/build.mjs
 * at install, or here at start when missing) come from this origin only, under a Content-Security-Policy that allows
 * nothing else. Browsers asking GET /graphql for HTML get it; everything else goes on to Apollo.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const operationsDir = path.join(root, 'schema', 'operations');

export const GRAPHIQL_ASSETS_PATH = '/graphiql/assets';

export interface GraphiqlExample {
  name: string;
  file: string;
  query: string;
}

/**
 * Every operation of schema/operations/ as a runnable document: the operation and the fragments it uses (transitively),
 * since the API takes one operation per request and refuses unused fragments.
 */
export function loadExamples(dir = operationsDir): GraphiqlExample[] {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.graphql')).sort() : [];
  const docs = files.map((file) => ({ file, defs: parse(fs.readFileSync(path.join(dir, file), 'utf8')).definitions }));
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of docs) for (const def of d.defs) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  const spreads = (node: DefinitionNode) => {
    const names: string[] = [];
    visit(node, { FragmentSpread: (s) => void names.push(s.name.value) });
    return names;
  };
  const examples: GraphiqlExample[] = [];
  for (const d of docs) {
    for (const op of d.defs.filter((def): def is OperationDefinitionNode => def.kind === Kind.OPERATION_DEFINITION)) {
      const needed = new Set<string>();
      const queue = spreads(op);
      while (queue.length) {
        const name = queue.shift()!;
        if (needed.has(name) || !fragments.has(name)) continue;
        needed.add(name);
        queue.push(...spreads(fragments.get(name)!));
      }
      const query = [op, ...[...needed].map((n) => fragments.get(n)!)].map((n) => print(n)).join('\n\n');
      examples.push({ name: op.name?.value ?? `${op.operation} (anonymous)`, file: d.file, query });
    }
  }
  return examples;
}

const escapeJsonForHtml = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');

/** GraphiQL's editors and panes set styles at run time, and its fonts are inlined: both allowed, nothing else. */
export const GRAPHIQL_CSP = contentSecurityPolicy({ inlineStyles: true });

export function graphiqlRouter(log: Logger) {
  ensureWebBundle(log);
  const examples = loadExamples();
  const config = {
    examples,
    // Prefilled: replace the token (logIn or signUp returns accessToken) or use an API key, and the tenant's slug.
    defaultHeaders: JSON.stringify({ Authorization: 'Bearer <access token or API key>', 'X-Tenant': '<tenant slug or id>' }, null, 2),
  };
  const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tenantplane GraphiQL</title>
<link rel="stylesheet" href="${GRAPHIQL_ASSETS_PATH}/graphiql.css?v=${assetVersion('graphiql.css')}">
<style>html, body, #graphiql { height: 100%; margin: 0; } .tp-examples ul { list-style: none; padding: 0; } .tp-examples li button { text-align: left; padding: 4px 0; } .tp-examples small { opacity: .6; }</style>
</head>
<body>
<div id="graphiql"><noscript>GraphiQL needs JavaScript.</noscript></div>
<script id="graphiql-config" type="application/json">${escapeJsonForHtml(config)}</script>
<script type="module" src="${GRAPHIQL_ASSETS_PATH}/graphiql.js?v=${assetVersion('graphiql.js')}"></script>
</body>
</html>`;
  // The inline <style> above is allowed by 'unsafe-inline' for styles only; scripts stay 'self' only (the config
  // block is JSON, which the browser does not execute).
  const router = express.Router();
  router.use(...serveAssets(GRAPHIQL_ASSETS_PATH));
  router.get('/graphql', (req, res, next) => {
    // Browsers ask for HTML; clients (GET queries, tools) for JSON, and go on to Apollo.
    if (req.accepts(['application/json', 'application/graphql-response+json', 'text/html']) !== 'text/html' || req.query.query) return next();
    sendPage(res, page, GRAPHIQL_CSP);
  });
  return router;
}
