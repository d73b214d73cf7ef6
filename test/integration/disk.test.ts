// Disk, on a real hub and the real engine: /health read from the background
// refresher (no engine call per request), what one container may write
// (DOCKER_AGENT_MAX_DISK_BYTES, ended DISK_LIMIT with its output kept, for jobs and
// named agents), the free-space floor (DOCKER_AGENT_MIN_FREE_BYTES) that refuses new
// work with a 503, and the kept containers a principal may hold.
import { statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthReport } from '../../schemas/live.js';
import { tarOf } from '../helpers/archives.js';
import { collect, containersLeft, docker, finalState, output, refusal, settledAgent, startTestHub, type TestHub } from '../helpers/hub.js';

const MiB = 1024 * 1024;
const LIMIT = 50 * MiB;
let t: TestHub;
beforeAll(async () => {
  t = await startTestHub({
    DOCKER_AGENT_MAX_DISK_BYTES: String(LIMIT),
    DOCKER_AGENT_DISK_CHECK_SECONDS: '1',
    // Longer than the test: every /health below reads one look.
    DOCKER_AGENT_HEALTH_CHECK_SECONDS: '600',
    DOCKER_AGENT_MAX_KEPT_PER_PRINCIPAL: '1',
  });
});
afterAll(() => t?.close());

async function health(url: string): Promise<{ status: number; body: HealthReport }> {
  const res = await fetch(`${url}/health`);
  return { status: res.status, body: (await res.json()) as HealthReport };
}

/** Writes past the limit, then waits: only the hub can end it in time. */
const WRITE_PAST_LIMIT = 'echo before the write; dd if=/dev/zero of=/tmp/f bs=1M count=200 2>&1; echo written; sleep 60';

describe('/health', () => {
  it('is read from the background look: many unauthenticated requests, one checkedAt, no engine call of their own', async () => {
    const first = await health(t.hub.url);
    expect(first.status).toBe(200);
    expect(first.body.checkedAt).toEqual(expect.any(String));
    const answers = await Promise.all(Array.from({ length: 50 }, () => health(t.hub.url)));
    expect(new Set(answers.map((a) => a.body.checkedAt))).toEqual(new Set([first.body.checkedAt]));
    expect(answers.every((a) => a.status === 200 && a.body.engine?.version)).toBe(true);
  });

  it('says what a container may write and who enforces it', async () => {
    const { body } = await health(t.hub.url);
    const info = (await docker.info()) as { Driver: string; DriverStatus: string[][] };
    // overlay2 on extfs (this machine, most hosts) has no quota: the hub watches.
    const quota = info.Driver !== 'overlay2' || !info.DriverStatus.some(([k, v]) => k === 'Backing Filesystem' && v === 'extfs');
    expect(body.disk).toMatchObject({ limit: LIMIT, enforcement: quota ? expect.stringMatching(/^(quota|watch)$/) : 'watch' });
    expect(body.disk?.dataDir).toEqual({ path: t.dataDir, free: expect.any(Number) });
  });

  it('is refreshed in the background on its interval', async () => {
    const quick = await startTestHub({ DOCKER_AGENT_HEALTH_CHECK_SECONDS: '0.2' });
    try {
      const first = (await health(quick.hub.url)).body.checkedAt;
      let later = first;
      for (const until = Date.now() + 10_000; later === first && Date.now() < until;) {
        await new Promise((r) => setTimeout(r, 50));
        later = (await health(quick.hub.url)).body.checkedAt;
      }
      expect(Date.parse(later!)).toBeGreaterThan(Date.parse(first!));
    } finally {
      await quick.close();
    }
  });
});

describe('what one container may write (DOCKER_AGENT_MAX_DISK_BYTES)', () => {
  it('ends a job that writes past it error/DISK_LIMIT within seconds, its output kept', async () => {
    const started = Date.now();
    const job = await t.client.createJob({ run: WRITE_PAST_LIMIT, timeout: 120 });
    const events = await collect(t.client, job.id);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(finalState(events)).toBe('error');
    expect(events.filter((e) => e.type === 'error')).toEqual([
      expect.objectContaining({
        code: 'DISK_LIMIT',
        message: expect.stringMatching(/wrote \d+ bytes to its file system; a container may write at most 52428800 \(DOCKER_AGENT_MAX_DISK_BYTES\)/),
      }),
    ]);
    expect(output(events)).toMatch(/^before the write\n/);
    const ended = await t.client.getJob(job.id);
    expect(ended).toMatchObject({ state: 'error', reason: expect.stringMatching(/DOCKER_AGENT_MAX_DISK_BYTES/) });
    // Read again after the end: the output is stored, not only streamed.
    expect(output(await collect(t.client, job.id))).toMatch(/^before the write\n/);
    expect(await containersLeft(t.hub.hubId, (c) => c.Labels['docker-agent.job'] === job.id)).toEqual([]);
  });

  it("ends a named agent's job DISK_LIMIT and stops the agent, saying why", async () => {
    await t.client.createAgent({ name: 'writer' });
    expect(await settledAgent(t.client, 'writer')).toBe('running');
    const job = await t.client.createJob({ agent: 'writer', run: WRITE_PAST_LIMIT, timeout: 120 });
    const events = await collect(t.client, job.id);
    expect(finalState(events)).toBe('error');
    expect(events.find((e) => e.type === 'error')).toMatchObject({ code: 'DISK_LIMIT' });
    expect(output(events)).toMatch(/^before the write\n/);
    let agent = await t.client.getAgent('writer');
    for (const until = Date.now() + 10_000; agent.state !== 'stopped' && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 100));
      agent = await t.client.getAgent('writer');
    }
    expect(agent).toMatchObject({ state: 'stopped', reason: expect.stringMatching(/DOCKER_AGENT_MAX_DISK_BYTES/) });
  });

  it('leaves a job that writes less alone', async () => {
    const job = await t.client.createJob({ run: 'dd if=/dev/zero of=/tmp/f bs=1M count=5 2>/dev/null; sleep 2; echo fine' });
    const events = await collect(t.client, job.id);
    expect(finalState(events)).toBe('succeeded');
    expect(output(events)).toBe('fine\n');
  });
});

describe('kept containers (keep: true)', () => {
  it('are at most DOCKER_AGENT_MAX_KEPT_PER_PRINCIPAL per principal: the oldest goes when one more is kept', async () => {
    const first = await t.client.createJob({ run: 'echo one', keep: true });
    await collect(t.client, first.id);
    const kept = (id: string) => docker.listContainers({ all: true, filters: { label: [`docker-agent.job=${id}`] } });
    expect(await kept(first.id)).toHaveLength(1);
    const second = await t.client.createJob({ run: 'echo two', keep: true });
    await collect(t.client, second.id);
    expect(await containersLeft(t.hub.hubId, (c) => c.Labels['docker-agent.job'] === first.id)).toEqual([]);
    expect(await kept(second.id)).toHaveLength(1);
  });
});

describe('the free-space floor (DOCKER_AGENT_MIN_FREE_BYTES)', () => {
  it('refuses new jobs, agents and uploads with a 503 naming it and the free bytes, and /health says degraded', async () => {
    const s = statfsSync(tmpdir());
    const floor = s.bavail * s.bsize + 1024 ** 4;
    const low = await startTestHub({ DOCKER_AGENT_MIN_FREE_BYTES: String(floor) });
    try {
      for (const attempt of [
        () => low.client.createJob({ run: 'true' }),
        () => low.client.createAgent({ name: 'never' }),
        async () => low.client.uploadWorkspace(Readable.from(gzipSync(await tarOf([{ name: 'a.txt', body: 'a' }]))), 'application/gzip'),
      ]) {
        const err = await refusal(attempt());
        expect(err.status).toBe(503);
        expect(err.code).toBe('DISK_LOW');
        expect(err.message).toMatch(new RegExp(`has \\d+ bytes free, below the hub's floor of ${floor} \\(DOCKER_AGENT_MIN_FREE_BYTES\\)`));
      }
      const { status, body } = await health(low.hub.url);
      expect(status).toBe(200);
      expect(body.status).toBe('degraded');
      expect(body.disk?.problem).toMatch(/DOCKER_AGENT_MIN_FREE_BYTES/);
    } finally {
      await low.close();
    }
    // A hub with room takes the same job.
    const job = await t.client.createJob({ run: 'true' });
    expect(finalState(await collect(t.client, job.id))).toBe('succeeded');
  });
});
