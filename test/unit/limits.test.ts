// Pieces of the limits that need no engine: config defaults, env values blanked
// at the end, and /health when the job network is not fenced off.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp, type AppDeps } from '../../hub/app.js';
import { loadConfig } from '../../hub/platform/config.js';
import { withoutEnvValues } from '../../hub/store/jobs.js';
import { openDb } from '../../hub/store/db.js';
import { JobStore, type JobSpec } from '../../hub/store/jobs.js';

describe('limit settings', () => {
  it('have safe defaults and take the environment', () => {
    const c = loadConfig([], {});
    expect(c).toMatchObject({
      maxEntryNameBytes: 4096,
      maxEntryDepth: 64,
      maxWorkspaceEntries: 100_000,
      maxOutputBytes: 100 * 1024 * 1024,
      maxSnapshotBytes: 10 * 1024 ** 3,
      containerLogMaxSize: '10m',
      containerLogMaxFiles: 3,
      maxAgentFrameBytes: 1024 * 1024,
    });
    expect(loadConfig(['--max-output', '2048'], {}).maxOutputBytes).toBe(2048);
    expect(() => loadConfig([], { DOCKER_AGENT_CONTAINER_LOG_MAX_SIZE: 'lots' })).toThrow(
      /DOCKER_AGENT_CONTAINER_LOG_MAX_SIZE="lots": expected a size such as 10m/,
    );
  });
});

describe('env values of an ended job', () => {
  it('are blanked at job and step level, names kept, the rest untouched', () => {
    const spec: JobSpec = {
      steps: [
        { name: 'a', run: 'echo', env: { STEP_KEY: 's' } },
        { name: 'b', run: 'true', env: {} },
      ],
      env: { API_KEY: 'k' },
      timeout: 5,
      keep: false,
    };
    expect(withoutEnvValues(spec)).toEqual({
      steps: [
        { name: 'a', run: 'echo', env: { STEP_KEY: '' } },
        { name: 'b', run: 'true', env: {} },
      ],
      env: { API_KEY: '' },
      timeout: 5,
      keep: false,
    });
  });
});

describe('/health', () => {
  const engine = { backend: 'docker', version: '20.10', apiVersion: '1.41' };
  const pool = { default: { idle: 1, starting: 0, minIdle: 1, max: 1 } };
  const app = (network: AppDeps['network']) =>
    createApp({
      backend: { info: async () => engine },
      jobs: { poolState: () => pool },
      network,
      maxBodyBytes: 1024,
      maxWorkspaceBytes: 1024,
    } as unknown as AppDeps);

  it('is degraded (still 200) with the rules to add when the job network is not isolated', async () => {
    const network = { name: 'docker-agent-x', isolated: false, problem: 'the hub does not run as root', rules: ['iptables -I INPUT 1 -i da-x -j DROP'] };
    const res = await app(network).request('/health');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'degraded', engine, network, pool });
  });

  it('is ok when it is', async () => {
    const res = await app({ name: 'docker-agent-x', isolated: true, rules: ['…'] }).request('/health');
    expect(await res.json()).toEqual({ status: 'ok', engine, pool, network: { name: 'docker-agent-x', isolated: true } });
  });
});

describe('env values stored by an older hub', () => {
  it('are found in ended jobs only, at job and step level', () => {
    const dir = mkdtempSync(join(tmpdir(), 'da-env-'));
    try {
      const db = openDb(join(dir, 'hub.db'));
      const store = new JobStore(db);
      const spec = (env: Record<string, string>, stepEnv: Record<string, string>): JobSpec => ({
        steps: [{ name: 's', run: 'true', env: stepEnv }],
        env,
        timeout: 5,
        keep: false,
      });
      const make = (id: string, s: JobSpec, ended: boolean) => {
        store.create({ id, owner: 'token:t', profile: 'default', spec: s, steps: [] });
        // An older hub wrote the values into the row itself.
        db.prepare('UPDATE jobs SET spec = ? WHERE id = ?').run(JSON.stringify(s), id);
        if (ended) store.update(id, { state: 'succeeded', endedAt: new Date().toISOString() });
      };
      make('job-env', spec({ KEY: 'secret' }, {}), true);
      make('step-env', spec({}, { KEY: 'secret' }), true);
      make('blanked', spec({ KEY: '' }, { OTHER: '' }), true);
      make('running', spec({ KEY: 'secret' }, {}), false);
      expect(
        store
          .endedWithEnvValues()
          .map((j) => j.id)
          .sort(),
      ).toEqual(['job-env', 'step-env']);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
