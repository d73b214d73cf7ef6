// Lint for the whole tree (npm test runs it): typescript-eslint's recommended rules,
// no import cycles (test/unit/layers.test.ts also checks the layer order), and a
// complexity limit so that no function grows past what a reader holds at once.
// Formatting is Prettier's (.prettierrc.json), not the linter's.
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

export default tseslint.config({ ignores: ['build/', 'dist/', 'node_modules/', 'test-results/', 'schemas/types.gen.ts'] }, ...tseslint.configs.recommended, {
  files: ['**/*.{ts,tsx,js,mjs}'],
  plugins: { 'import-x': importX },
  // Imports name the .js a .ts file compiles to; the TypeScript resolver maps them back, so cycles are seen.
  settings: {
    ...importX.flatConfigs.typescript.settings,
    'import-x/resolver': undefined,
    'import-x/resolver-next': [createTypeScriptImportResolver({ project: ['tsconfig.json', 'web/tsconfig.json'], noWarnOnMultipleProjects: true })],
  },
  rules: {
    'import-x/no-cycle': 'error',
    complexity: ['error', { max: 20 }],
    // A leading underscore marks what is left unused on purpose (a rest's siblings, an interface's parameters).
    '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
  },
});
