// Bundles the browser code (web/) into dist/web/ with esbuild: run by `npm install` (postinstall) and by the server
// at start when the bundle is missing, so `npm install && npm start` serves it with no CDN and no second server.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'web');
// Written next to the final folder and renamed: parallel starts (the test suite) never serve a half-written bundle.
const tmp = `${outdir}.tmp-${process.pid}`;
const result = await build({
  absWorkingDir: root,
  entryPoints: { graphiql: 'console/graphiql/main.tsx', console: 'console/app/main.tsx', 'hash-worker': 'console/app/hash-worker.ts' },
  // The SDK falls back to the `ws` package outside browsers; here it is the browser's own WebSocket.
  alias: { ws: './console/shims/ws.ts' },
  metafile: true,
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  outdir: tmp,
  define: { 'process.env.NODE_ENV': '"production"' },
  legalComments: 'linked',
  logLevel: 'warning',
  loader: { '.woff2': 'file', '.woff': 'file', '.svg': 'dataurl' },
});
fs.rmSync(outdir, { recursive: true, force: true });
fs.mkdirSync(path.dirname(outdir), { recursive: true });
try {
  fs.renameSync(tmp, outdir);
} catch (e) {
  // Another build got there first: theirs is as good as ours.
  fs.rmSync(tmp, { recursive: true, force: true });
  if (!fs.existsSync(outdir)) throw e;
}
// What is in each bundle (for size work: esbuild's analyzer reads it); not served.
fs.writeFileSync(path.join(root, 'dist', 'web-meta.json'), JSON.stringify(result.metafile));
console.log(`built ${path.relative(root, outdir)}/: ${fs.readdirSync(outdir).join(', ')}`);
