// Loaded with `--import` (through NODE_OPTIONS) by scripts/test-node24.mjs: on Node 24,
// every import or require of better-sqlite3 gets the copy that set-up compiled for Node
// 24 (build/node24/deps), since node_modules' copy is built for the Node that ran npm ci
// and a native module loads only on the ABI it was built for. Everything else resolves
// as usual. On another Node (a child process that runs Node 20), it does nothing.
import fs from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const from = pathToFileURL(path.join(root, 'node_modules', 'better-sqlite3') + path.sep).href;
const to = pathToFileURL(path.join(root, 'build', 'node24', 'deps', 'node_modules', 'better-sqlite3') + path.sep).href;

if (process.versions.node.split('.')[0] === '24' && typeof module.registerHooks === 'function') {
  if (!fs.existsSync(fileURLToPath(new URL('build/Release/better_sqlite3.node', to)))) {
    throw new Error('better-sqlite3 for Node 24 is not built: run `node scripts/setup.mjs --for=test`');
  }
  module.registerHooks({
    resolve(specifier, context, nextResolve) {
      const resolved = nextResolve(specifier, context);
      // Bare `better-sqlite3` and any file under it (vitest resolves to a path first).
      return resolved.url.startsWith(from) ? { ...resolved, url: to + resolved.url.slice(from.length), shortCircuit: true } : resolved;
    },
  });
}
