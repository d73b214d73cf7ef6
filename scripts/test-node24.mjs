#!/usr/bin/env node
// `npm test`'s last part: the unit tests, and the built hub and CLI as processes
// (test/integration/bins.test.ts), on Node 24 beside the Node that ran the rest.
// The Node 24 binary is npm's `node` package, installed by set-up into build/node24;
// better-sqlite3 is native, so scripts/node24-sqlite.mjs hands Node 24 the copy that
// set-up compiled for it (build/node24/deps). Usage: node scripts/test-node24.mjs
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const node24 = path.join(root, 'build', 'node24', 'node_modules', 'node', 'bin', 'node');
const hooks = path.join(root, 'scripts', 'node24-sqlite.mjs');
const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');

function fail(message) {
  process.stderr.write(`[node 24] ${message}\n`);
  process.exit(1);
}

if (process.versions.node.split('.')[0] === '24') {
  process.stderr.write('[node 24] the tests already ran on Node 24; nothing more to run\n');
  process.exit(0);
}
if (!fs.existsSync(node24)) fail(`no Node 24 at ${node24}: run \`node scripts/setup.mjs --for=test\``);
const version = spawnSync(node24, ['--version'], { encoding: 'utf8' }).stdout.trim();
if (!version.startsWith('v24.')) fail(`${node24} is ${version || 'not runnable'}, not Node 24`);

const t0 = performance.now();
// NODE_OPTIONS, not argv: vitest's workers and the hub and CLI the tests start are Node processes of their own.
const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(hooks).href}`.trim() };
for (const args of [
  ['--project', 'unit'],
  ['--project', 'integration', 'test/integration/bins.test.ts'],
]) {
  process.stderr.write(`[node 24] ${version}: vitest run ${args.join(' ')}\n`);
  const r = spawnSync(node24, [vitest, 'run', ...args], { cwd: root, env, stdio: 'inherit' });
  if (r.status !== 0) fail(`vitest run ${args.join(' ')} failed on ${version} (${r.signal ?? `exit code ${r.status}`})`);
}
process.stderr.write(`[node 24] passed on ${version} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
