// GET /metrics read the way Prometheus reads it: `promtool check metrics` (Debian's
// prometheus package) takes it, it needs the `metrics` scope, and its counters move
// with known jobs: one that succeeds and one that fails.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubClient } from '../../client/index.js';
import { collect, startTestHub, TOKEN, type TestHub } from '../helpers/hub.js';

let t: TestHub;
beforeAll(async () => {
  t = await startTestHub();
});
afterAll(async () => {
  await t?.close();
});

async function scrape(token = TOKEN): Promise<Response> {
  return fetch(`${t.hub.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
}

/** A sample's value, e.g. value(text, 'docker_agent_jobs_ended_total{state="failed",profile="default"}'). */
function value(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

describe('GET /metrics', () => {
  it('is valid for Prometheus and counts known jobs by state and profile', async () => {
    const before = await (await scrape()).text();
    for (const run of ['echo ok', 'echo broken; exit 2']) {
      const job = await t.client.createJob({ run });
      await collect(t.client, job.id);
      await t.client.getJob(job.id);
    }
    const res = await scrape();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);

    const ended = (state: string) => `docker_agent_jobs_ended_total{state="${state}",profile="default"}`;
    expect(value(text, ended('succeeded')) - value(before, ended('succeeded'))).toBe(1);
    expect(value(text, ended('failed')) - value(before, ended('failed'))).toBe(1);
    expect(value(text, 'docker_agent_job_duration_seconds_count{profile="default"}')).toBeGreaterThanOrEqual(2);
    expect(value(text, 'docker_agent_job_queue_wait_seconds_count{profile="default"}')).toBeGreaterThanOrEqual(2);
    expect(value(text, 'docker_agent_event_bytes_written_total')).toBeGreaterThanOrEqual('ok\nbroken\n'.length);
    expect(value(text, 'docker_agent_engine_up')).toBe(1);
    // Requests by their route's pattern, not by the raw path.
    expect(text).toMatch(/docker_agent_http_requests_total\{method="POST",route="\/v1\/jobs",status="201"\} \d+/);
    expect(text).toMatch(/docker_agent_http_requests_total\{method="GET",route="\/v1\/jobs\/:id",status="200"\} \d+/);
  });

  it('needs a token with the metrics scope', async () => {
    expect((await fetch(`${t.hub.url}/metrics`)).status).toBe(401);
    const jobsOnly = await t.client.createToken({ name: 'no metrics', scopes: ['jobs'] });
    const refused = await scrape(jobsOnly.token);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('metrics');
    const reader = await t.client.createToken({ name: 'prometheus', scopes: ['metrics'] });
    expect((await scrape(reader.token)).status).toBe(200);
    // The metrics scope reads metrics, nothing else.
    await expect(new HubClient({ url: t.hub.url, token: reader.token }).listJobs()).rejects.toMatchObject({ status: 403 });
  });
});
