// The dashboard's page and its bundled assets (build/web, made by scripts/build.mjs),
// served by the hub itself so it works on a host with no internet. Read once and
// kept gzipped; the page is public (it holds no data: it signs in and calls /v1).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Hono, type Context } from 'hono';
import { HubError } from '../platform/errors.js';
import { repoPath } from '../platform/paths.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Scripts and styles from the hub only; connections to the hub only; no framing.
 * Styles may be inline because xterm.js and uPlot size their elements with them.
 */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer;
  etag: string;
}

function load(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dir)) return assets;
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(dir, name));
    assets.set(name, { type, body, gzip: gzipSync(body, { level: 9 }), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}

export function dashboardRoutes(dir = repoPath('build', 'web')) {
  let assets: Map<string, Asset> | undefined;
  const serve = (c: Context, name: string) => {
    // Kept once found; a hub started before the page was built finds it on a later request.
    if (!assets?.size) assets = load(dir);
    const asset = assets.get(name);
    if (!asset) {
      if (!assets.size) throw new HubError('NOT_FOUND', 'the dashboard is not built: run `npm run setup` (or `npm start`), then reload');
      throw new HubError('NOT_FOUND', `no dashboard file ${name}`);
    }
    const headers: Record<string, string> = {
      'content-type': asset.type,
      etag: asset.etag,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'content-security-policy': CSP,
      vary: 'accept-encoding',
    };
    if (c.req.header('if-none-match') === asset.etag) return c.body(null, 304, headers);
    if (/\bgzip\b/.test(c.req.header('accept-encoding') ?? '')) return c.body(new Uint8Array(asset.gzip), 200, { ...headers, 'content-encoding': 'gzip' });
    return c.body(new Uint8Array(asset.body), 200, headers);
  };
  const app = new Hono();
  app.get('/', (c) => serve(c, 'index.html'));
  app.get('/ui/:file', (c) => serve(c, c.req.param('file')));
  return app;
}
