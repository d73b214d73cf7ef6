// The built hub (build/hub.mjs) and the CLI from its bin, each its own process on the
// Node that runs this file: Node 20 in `vitest run`, and Node 24 when
// scripts/test-node24.mjs runs it (which gives Node 24 its own better-sqlite3).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { repoPath } from '../../hub/platform/paths.js';
import { runCli } from '../helpers/cli.js';
import { containersLeft, removeContainers, tempDataDir, TOKEN } from '../helpers/hub.js';

const HUB = repoPath('build', 'hub.mjs');
const dataDir = tempDataDir();
let hub: ChildProcess | undefined;
let hubId = '';

function exited(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode!);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal!)));
}

afterAll(async () => {
  hub?.kill('SIGKILL');
  if (hubId) await removeContainers(hubId);
  rmSync(dataDir, { recursive: true, force: true });
});

describe(`the built hub and CLI on Node ${process.versions.node}`, () => {
  it('print their help', async () => {
    const child = spawn(process.execPath, [HUB, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    expect(await exited(child)).toBe(0);
    expect(stdout).toMatch(/^usage: docker-agent-hub/);
    const cli = await runCli(['--help']);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/^Usage: docker-agent/);
    // Read by a pager or `head` that stops early: the closed pipe ends the output quietly.
    // (Five times: whether the pipe is closed before the last write is a race.)
    for (let i = 0; i < 5; i++) {
      const piped = spawnSync('sh', ['-c', `"${process.execPath}" "${repoPath('build', 'cli.mjs')}" --help | head -1`], { encoding: 'utf8' });
      expect(piped.stdout).toMatch(/^Usage: docker-agent/);
      expect(piped.stderr).toBe('');
    }
  });

  it('serve /health, run a job the CLI sends, keep it in SQLite, and stop on SIGTERM', async () => {
    hub = spawn(process.execPath, [HUB], {
      env: { ...process.env, DOCKER_AGENT_PORT: '0', DOCKER_AGENT_DATA_DIR: dataDir, DOCKER_AGENT_TOKEN: TOKEN },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let url = '';
    const log: string[] = [];
    for await (const line of createInterface({ input: hub.stderr! })) {
      log.push(line);
      const m = /hub (\S+) listening on (\S+)/.exec(line);
      if (m) [, hubId, url] = m as unknown as [string, string, string];
      if (url) break;
    }
    expect(url, log.join('\n')).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    hub.stderr!.resume();

    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { engine: { reachable?: boolean } }).engine).not.toHaveProperty('reachable', false);

    const env = { DOCKER_AGENT_URL: url, DOCKER_AGENT_TOKEN: TOKEN };
    const run = await runCli(['run', 'echo hi from $(uname -s)'], { env });
    expect(run, run.stderr).toMatchObject({ code: 0, stdout: 'hi from Linux\n' });
    const jobs = JSON.parse((await runCli(['jobs', '--json'], { env })).stdout) as Array<{ state: string }>;
    expect(jobs.map((j) => j.state)).toEqual(['succeeded']);

    hub.kill('SIGTERM');
    expect(await exited(hub)).toBe(0);
    expect(await containersLeft(hubId)).toEqual([]);
  });
});
