// Finds the project's own files (profiles, the runtime bundle) whether the hub runs
// from build/hub.mjs or from the TypeScript sources under test.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('docker-agent: cannot find the project folder (package.json)');
    dir = up;
  }
  return dir;
}

const root = findRoot();

export function repoPath(...parts: string[]): string {
  return join(root, ...parts);
}
