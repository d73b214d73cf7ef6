// Pieces of the limits that need no engine: config defaults, env values blanked
// at the end, and /health when the job network is not fenced off.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp, type AppDeps } from '../../hub/app.js';
import { HealthMonitor, healthReport, type HealthInputs } from '../../hub/health.js';
import type { HealthReport } from '../../schemas/live.js';
import { loadConfig } from '../../hub/platform/config.js';
import { diskFailure } from '../../hub/platform/errors.js';
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
      maxDiskBytes: 10 * 1024 ** 3,
      diskCheckSeconds: 5,
      minFreeBytes: 1024 ** 3,
      healthCheckSeconds: 5,
      maxKeptPerPrincipal: 5,
    });
    expect(loadConfig([], { DOCKER_AGENT_MAX_DISK_BYTES: '0', DOCKER_AGENT_MIN_FREE_BYTES: '0' })).toMatchObject({ maxDiskBytes: 0, minFreeBytes: 0 });
    expect(loadConfig(['--max-output', '2048'], {}).maxOutputBytes).toBe(2048);
    expect(() => loadConfig([], { DOCKER_AGENT_CONTAINER_LOG_MAX_SIZE: 'lots' })).toThrow(
      /DOCKER_AGENT_CONTAINER_LOG_MAX_SIZE="lots": expected a size such as 10m/,
    );
  });
});

describe('a store write the disk refused', () => {
  it("is a 503 DISK_FULL that says so for SQLite's SQLITE_FULL and SQLITE_IOERR codes, and nothing else", () => {
    const sqlite = (code: string) => Object.assign(new Error('database or disk is full'), { code });
    for (const code of ['SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_IOERR_WRITE']) {
      const e = diskFailure(sqlite(code));
      expect(e).toMatchObject({ code: 'DISK_FULL', status: 503, message: expect.stringMatching(new RegExp(`the hub's disk is full or failing \\(${code}:`)) });
    }
    expect(diskFailure(sqlite('SQLITE_CONSTRAINT'))).toBeUndefined();
    expect(diskFailure(new Error('other'))).toBeUndefined();
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
  const checkedAt = '2026-12-03T20:00:00.000Z';
  const disk = { limit: 1024, enforcement: 'watch' as const };
  const report = (over: Partial<HealthInputs> = {}) =>
    healthReport({ checkedAt, engine, pool, minFree: 100, disk, dataDir: { path: '/data', free: 1000 }, ...over });

  it('is degraded (still 200) with the rules to add when the job network is not isolated', () => {
    const network = { name: 'docker-agent-x', isolated: false, problem: 'the hub does not run as root', rules: ['iptables -I INPUT 1 -i da-x -j DROP'] };
    const { status, body } = report({ network });
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'degraded', checkedAt, engine, network, pool });
  });

  it('is ok when it is, and says what a container may write and who enforces it', () => {
    const { status, body } = report({ network: { name: 'docker-agent-x', isolated: true, rules: ['…'] } });
    expect(status).toBe(200);
    expect(body).toEqual({
      status: 'ok',
      checkedAt,
      engine,
      pool,
      network: { name: 'docker-agent-x', isolated: true },
      disk: { limit: 1024, enforcement: 'watch', minFree: 100, dataDir: { path: '/data', free: 1000 } },
    });
  });

  it('is degraded below the free-space floor, naming the place and the setting', () => {
    const { status, body } = report({ engineRoot: { path: '/var/lib/docker', free: 50 } });
    expect(status).toBe(200);
    expect(body.status).toBe('degraded');
    expect(body.disk?.problem).toMatch(
      /the engine's data root \(\/var\/lib\/docker\) has 50 bytes free, below the hub's floor of 100 \(DOCKER_AGENT_MIN_FREE_BYTES\)/,
    );
  });

  it("says when the engine's data root is not on the hub's host", () => {
    const { body } = report({ engineRoot: { path: '/elsewhere' } });
    expect(body.status).toBe('ok');
    expect(body.disk?.engineRoot).toEqual({ path: '/elsewhere', unchecked: expect.stringMatching(/not checked/) });
  });

  it('is answered from the background look: requests make no engine call, the refresher does', async () => {
    let calls = 0;
    const backend = {
      info: async () => (calls++, engine),
      storage: async () => ({ dataRoot: '/nonexistent/engine-root', driver: 'overlay2' }),
    };
    const monitor = new HealthMonitor({ backend, dataDir: tmpdir(), intervalMs: 3_600_000, minFree: 0, disk, pool: () => pool, log: () => {} });
    const app = createApp({ health: monitor, maxBodyBytes: 1024, maxWorkspaceBytes: 1024 } as unknown as AppDeps);
    expect(await (await app.request('/health')).json()).toEqual({ status: 'starting' });
    await monitor.start();
    try {
      const answers = await Promise.all(Array.from({ length: 20 }, async () => (await app.request('/health')).json() as Promise<HealthReport>));
      expect(calls).toBe(1);
      expect(new Set(answers.map((a) => a.checkedAt)).size).toBe(1);
      expect(answers[0]!.disk?.engineRoot).toEqual({ path: '/nonexistent/engine-root', unchecked: expect.stringMatching(/not checked/) });
      await monitor.refresh();
      expect(calls).toBe(2);
    } finally {
      monitor.stop();
    }
  });

  it('is 503 when the engine does not answer', () => {
    const { status, body } = report({ engine: { error: 'the engine did not answer within 3 s' } });
    expect(status).toBe(503);
    expect(body).toMatchObject({ status: 'degraded', checkedAt, engine: { reachable: false, error: 'the engine did not answer within 3 s' } });
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
