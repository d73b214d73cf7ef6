import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { repoPath } from '../../hub/platform/paths.js';
// @ts-expect-error: a plain .mjs script without types
import { generate } from '../../scripts/gen-schema-types.mjs';

describe('schema types', () => {
  it('are what the JSON Schemas generate (run `npm run schemas` after editing a schema)', async () => {
    expect(readFileSync(repoPath('schemas', 'types.gen.ts'), 'utf8')).toBe(await generate());
  });
});
