// The API's edges: auth, bad bodies, unknown profiles, listing.
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubClient } from '../../client/index.js';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../hub/platform/config.js';
import { startHub } from '../../hub/server.js';
import { collect, removeContainers, startTestHub, tempDataDir, type TestHub } from '../helpers/hub.js';

let t: TestHub;
beforeAll(async () => {
  t = await startTestHub({ DOCKER_AGENT_MAX_BODY_BYTES: '4096' });
});
afterAll(() => t?.close());

function wsStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('error', reject);
  });
}

describe('auth', () => {
  it('serves /health without a token and says whether the engine answers', async () => {
    const res = await fetch(`${t.hub.url}/health`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ status: 'ok', engine: { backend: 'docker' } });
    expect(body.engine.apiVersion).toMatch(/^1\.\d+$/);
  });

  it('refuses every other route without a token or with a wrong one', async () => {
    const headerSets: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-token-value-123456' }, { authorization: 'Basic abc' }];
    for (const headers of headerSets) {
      for (const [method, path] of [
        ['GET', '/v1/jobs'],
        ['POST', '/v1/jobs'],
        ['GET', '/v1/jobs/x'],
        ['POST', '/v1/jobs/x/cancel'],
      ]) {
        const res = await fetch(`${t.hub.url}${path}`, { method, headers, body: method === 'POST' ? '{}' : undefined });
        expect(res.status, `${method} ${path}`).toBe(401);
        expect((await res.json()).error.code).toBe('UNAUTHORIZED');
      }
    }
    const wrong = new HubClient({ url: t.hub.url, token: 'wrong-token-value-123456' });
    await expect(wrong.listJobs()).rejects.toMatchObject({ status: 401 });
  });

  it('refuses the event stream without the right token', async () => {
    const job = await t.client.createJob({ run: 'true' });
    const url = job.links.events;
    expect(await wsStatus(url, {})).toBe(401);
    expect(await wsStatus(url, { authorization: 'Bearer nope-nope-nope-nope' })).toBe(401);
    expect(await wsStatus(url, { authorization: 'Bearer test-token-0123456789abcdef' })).toBe(101);
    await collect(t.client, job.id);
  });

  it('refuses the runtime channel to anyone without an agent token', async () => {
    // Where containers dial it: the Unix socket in the data folder (it is not on TCP unless DOCKER_AGENT_AGENT_URL asks).
    const url = `ws+unix://${join(t.dataDir, 'run', 'hub.sock')}:/v1/agent`;
    const code = await new Promise<number>((resolve) => {
      const ws = new WebSocket(url, { headers: { authorization: 'Bearer test-token-0123456789abcdef' } });
      ws.on('close', (c) => resolve(c));
      ws.on('unexpected-response', (_q, r) => resolve(r.statusCode ?? 0));
    });
    // Refused as HTTP, before any WebSocket is made.
    expect(code).toBe(401);
  });
});

describe('first start', () => {
  it('creates an API token, stores only its hash and writes it where the operator can read it', async () => {
    const dataDir = tempDataDir();
    const hub = await startHub(loadConfig([], { DOCKER_AGENT_PORT: '0', DOCKER_AGENT_DATA_DIR: dataDir }), () => {});
    try {
      expect(hub.tokenFile).toBe(join(dataDir, 'token'));
      expect(statSync(hub.tokenFile!).mode & 0o777).toBe(0o600);
      const token = readFileSync(hub.tokenFile!, 'utf8').trim();
      expect((await new HubClient({ url: hub.url, token }).listJobs()).jobs).toEqual([]);
      expect(readFileSync(join(dataDir, 'hub.db')).includes(token)).toBe(false);
    } finally {
      await hub.close();
      await removeContainers(hub.hubId);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('bad input', () => {
  it('answers malformed JSON with 400', async () => {
    const res = await t.client.raw('POST', '/v1/jobs', { body: '{"run": "echo hi"' });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({ code: 'INVALID_JSON' });
  });

  it('answers an oversized body with 413', async () => {
    const res = await t.client.raw('POST', '/v1/jobs', { body: JSON.stringify({ run: 'x'.repeat(10_000) }) });
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe('BODY_TOO_LARGE');
  });

  it('names the path of each wrong field', async () => {
    const err = await t.client
      .createJob({ steps: [{ run: 'true', timeout: -1 }, { name: 'x' } as never], env: { 'bad name': 'x' }, colour: 'red' } as never)
      .catch((e) => e);
    expect(err).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    const paths = (err.details.issues as { path: string }[]).map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['/colour', '/steps/0/timeout', '/steps/1/run', '/env']));
    expect(err.message).toMatch(/\/steps\/1\/run: is required/);
  });

  it('asks for exactly one of run and steps', async () => {
    for (const body of [{}, { run: 'a', steps: [{ run: 'b' }] }]) {
      const err = await t.client.createJob(body as never).catch((e) => e);
      expect(err.status).toBe(400);
      expect(err.message).toMatch(/exactly one of `run`.*`steps`.*`task`/);
    }
  });

  it('answers an unknown profile with 400 listing the known ones', async () => {
    const err = await t.client.createJob({ profile: 'nope', run: 'true' }).catch((e) => e);
    expect(err).toMatchObject({ status: 400, code: 'PROFILE_NOT_FOUND' });
    expect(err.details.known).toContain('default');
    expect(err.message).toMatch(/known profiles: .*default/);
  });

  it('answers 404 for a job that does not exist, over HTTP and WebSocket', async () => {
    await expect(t.client.getJob('no-such-job')).rejects.toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
    const events = t.client.events('no-such-job');
    await expect(events.next()).rejects.toMatchObject({ status: 404 });
  });
});

describe('listing', () => {
  it('filters by state and pages with a cursor', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const job = await t.client.createJob({ run: `exit ${i === 1 ? 1 : 0}` });
      ids.push(job.id);
      await collect(t.client, job.id);
    }
    const failed = await t.client.listJobs({ state: ['failed'] });
    expect(failed.jobs.map((j) => j.id)).toContain(ids[1]);
    expect(failed.jobs.every((j) => j.state === 'failed')).toBe(true);

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await t.client.listJobs({ limit: 2, cursor });
      expect(page.jobs.length).toBeLessThanOrEqual(2);
      seen.push(...page.jobs.map((j) => j.id));
      cursor = page.next ?? undefined;
    } while (cursor);
    // Newest first, each job once.
    expect(seen.slice(0, 3)).toEqual([...ids].reverse());
    expect(new Set(seen).size).toBe(seen.length);

    const bad = await t.client.raw('GET', '/v1/jobs?state=sleeping');
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toMatch(/unknown state sleeping/);
  });
});
