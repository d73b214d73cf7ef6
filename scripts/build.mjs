// Bundles the hub (for Node on the host) and the runtime (one self-contained file
// for the official Node build copied into every agent image, build/runtime-node).
import { build } from 'esbuild';
import { copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

const hostBundle = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Dependencies stay in node_modules: better-sqlite3 is native and dockerode
  // loads optional modules at run time.
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
};

/** The dashboard: one script and one stylesheet (with xterm.js's and uPlot's), and its page, served by the hub. */
async function buildDashboard() {
  await build({
    entryPoints: { app: `${root}web/main.tsx` },
    outdir: `${root}build/web`,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox110', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  copyFileSync(`${root}web/index.html`, `${root}build/web/index.html`);
}

export async function buildAll() {
  await Promise.all([
    buildDashboard(),
    build({ ...hostBundle, entryPoints: [`${root}hub/main.ts`], outfile: `${root}build/hub.mjs` }),
    build({ ...hostBundle, entryPoints: [`${root}bench/jobs.ts`], outfile: `${root}build/bench.mjs` }),
    build({ ...hostBundle, entryPoints: [`${root}cli/main.ts`], outfile: `${root}build/cli.mjs` }),
    build({ ...hostBundle, entryPoints: [`${root}scripts/swarm-lab.ts`], outfile: `${root}build/swarm-lab.mjs` }),
    build({
      entryPoints: [`${root}runtime/main.ts`],
      outfile: `${root}build/runtime.cjs`,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      // Run by the Node copied into agent images: set-up's Node 24, or an LTS the operator names (DOCKER_AGENT_RUNTIME_NODE).
      target: 'node22',
      // ws tries these optional native speed-ups; the runtime does without them.
      external: ['bufferutil', 'utf-8-validate'],
      // The client alone: ws's index also loads its server and stream helpers, which the runtime never uses.
      alias: { ws: `${root}node_modules/ws/lib/websocket.js` },
      plugins: [lazyBuiltinsForWs()],
      logLevel: 'warning',
    }),
  ]);
}

/**
 * The GitHub Action's bundles, committed in dist/ because the runner runs them
 * as they are. One file each, for Node 20 and later (GitHub runs node24).
 */
export async function buildAction(outdir = `${root}dist`) {
  await build({
    entryPoints: { main: `${root}action/main.ts`, post: `${root}action/post.ts` },
    outdir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // CommonJS dependencies inside an ES module bundle still call require().
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    external: ['bufferutil', 'utf-8-validate'],
    legalComments: 'none',
    logLevel: 'warning',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildAll();
  if (process.argv.includes('--action')) await buildAction();
}

/**
 * ws loads https and tls at the top, for wss:// URLs, and zlib for compression;
 * the runtime mostly dials a Unix socket, uncompressed. Loaded on first use
 * instead: a cold job waits for every module its runtime loads before it dials.
 */
function lazyBuiltinsForWs() {
  return {
    name: 'lazy-builtins-for-ws',
    setup(b) {
      b.onResolve({ filter: /^(https|tls|zlib)$/ }, (a) =>
        /[\\/]node_modules[\\/]ws[\\/]/.test(a.importer) ? { path: a.path, namespace: 'lazy-builtin' } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (a) => ({
        contents: `let m; module.exports = new Proxy({}, { get: (_, k) => (m ??= require(${JSON.stringify(`node:${a.path}`)}))[k] });`,
        loader: 'js',
      }));
    },
  };
}
