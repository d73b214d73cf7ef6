// .github/workflows/ci.yml as GitHub reads it (strict YAML 1.2): `npm test` on each
// Node of the matrix. (action.test.ts runs actionlint on every workflow.)
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { repoPath } from '../../hub/platform/paths.js';

type Step = { uses?: string; with?: Record<string, unknown>; run?: string; if?: string };
type Workflow = { jobs: Record<string, { strategy?: { 'fail-fast'?: boolean; matrix?: Record<string, unknown> }; steps: Step[] }> };

const ci = parseYaml(readFileSync(repoPath('.github', 'workflows', 'ci.yml'), 'utf8'), { strict: true, uniqueKeys: true }) as Workflow;

describe('ci.yml', () => {
  const job = ci.jobs.test!;

  it('runs npm test on Node 22 and Node 24, each to its own end', () => {
    expect(Object.keys(ci.jobs)).toEqual(['test']);
    expect(job.strategy).toEqual({ 'fail-fast': false, matrix: { node: [22, 24] } });
    const setupNode = job.steps.filter((s) => s.uses?.startsWith('actions/setup-node@'));
    expect(setupNode).toHaveLength(1);
    expect(setupNode[0]!.with).toEqual({ 'node-version': '${{ matrix.node }}' });
    const runs = job.steps.filter((s) => s.run !== undefined).map((s) => s.run);
    expect(runs).toEqual(['npm test']);
    // setup-node comes first, so npm test runs on the matrix's Node.
    expect(job.steps.indexOf(setupNode[0]!)).toBeLessThan(job.steps.findIndex((s) => s.run === 'npm test'));
  });

  it("keeps each Node's screenshots under a name of its own (artifact names are unique in a run)", () => {
    const upload = job.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'));
    expect(upload?.if).toBe('always()');
    expect(upload?.with?.name).toContain('${{ matrix.node }}');
  });
});

describe('npm test', () => {
  it('runs every vitest project (the swarm suite on its own, last), then the Node 24 part (scripts/test-node24.mjs)', () => {
    const { scripts } = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(scripts.test).toMatch(/&& vitest run --project unit --project integration && vitest run --project swarm && node scripts\/test-node24\.mjs$/);
    // No project of the config is left out of those runs.
    const config = readFileSync(repoPath('vitest.config.ts'), 'utf8');
    expect([...config.matchAll(/name: '(\w+)'/g)].map((m) => m[1]).sort()).toEqual(['integration', 'swarm', 'unit']);
  });
});
