#!/usr/bin/env node
// The `docker-agent` command (`npm link` puts it on the PATH): runs the bundled CLI,
// building it first on a fresh checkout where `npm start` / `npm test` have not yet.
import { existsSync } from 'node:fs';

const bundle = new URL('../build/cli.mjs', import.meta.url);
if (!existsSync(bundle)) {
  process.stderr.write('docker-agent: building the CLI (build/cli.mjs)…\n');
  const { buildAll } = await import('../scripts/build.mjs');
  await buildAll();
}
await import(bundle.href);
