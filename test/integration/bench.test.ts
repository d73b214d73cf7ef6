// The benchmark's smoke run (`--quick --json`): every case runs against its raw
// twin and reports numbers, and the bench leaves nothing behind. Its timings are
// not asserted here: speed is measured by `npm run bench`, not by tests.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { repoPath } from '../../hub/platform/paths.js';
import { docker } from '../helpers/hub.js';

function runBench(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [repoPath('build', 'bench.mjs'), '--quick', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('npm run bench -- --quick --json', () => {
  it('reports every case with the raw engine beside the hub, shows progress, and cleans up', async () => {
    const r = await runBench();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('[bench] cold job `true`');
    const report = JSON.parse(r.stdout) as {
      hubs: string[];
      rows: Array<{ what: string; unit: string; raw: { median: number } | null; hub: { median: number; p99: number }; ratio: number | null }>;
      breakdowns: Record<'cold' | 'warm', Array<{ phase: string; ms: number; at: number }>>;
    };
    const whats = report.rows.map((row) => row.what);
    for (const want of [
      'cold job `true`, POST → end',
      'cold job, POST → first byte',
      'cold job `node -e 0`',
      '8 jobs, 4 at a time',
      '8 jobs, 8 at a time',
      '8 jobs, 8 at a time, hardened twin',
      '5 MB of output',
      '20 MB change: commit + export, layers only',
      '20 MB change: commit + export, full save',
      '20 MB change: artifact, layers only',
      '20 MB change: artifact, full save',
      'memory per idle agent (container)',
      'warm job, POST → first byte',
    ]) {
      expect(whats).toContain(want);
    }
    for (const row of report.rows) {
      expect(Number.isFinite(row.hub.median) && row.hub.median > 0, row.what).toBe(true);
      if (row.raw) expect(Number.isFinite(row.ratio), row.what).toBe(true);
    }
    for (const kind of ['cold', 'warm'] as const) {
      expect(report.breakdowns[kind].map((b) => b.phase)).toEqual(
        expect.arrayContaining(['POST answered', 'status running', 'step started', 'first output stored', 'client saw first byte', 'status succeeded']),
      );
    }
    expect(report.hubs).toHaveLength(2);
    for (const hub of report.hubs) {
      const label = [`docker-agent.hub=${hub}`];
      expect(await docker.listContainers({ all: true, filters: { label } })).toEqual([]);
      expect((await docker.listVolumes({ filters: { label } })).Volumes ?? []).toEqual([]);
    }
    expect((await docker.listContainers({ all: true })).filter((c) => c.Names.some((n) => n.includes('da-bench')))).toEqual([]);
    // A smoke run of every case against the raw engine: minutes on a busy 2-core machine, and no timing is asserted.
  }, 300_000);
});
