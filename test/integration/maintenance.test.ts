// POST /v1/maintenance/prune on a real hub and engine.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, containersLeft, containersOf, docker, startTestHub, type TestHub } from '../helpers/hub.js';

let t: TestHub;
beforeAll(async () => {
  t = await startTestHub();
});
afterAll(() => t?.close());

describe('maintenance', () => {
  it('removes ended jobs past their age but keeps the newest, and reaps containers no job owns', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const job = await t.client.createJob({ run: `echo ${i}` });
      await collect(t.client, job.id);
      ids.push(job.id);
    }
    // Their containers go after their ends: gone, the only one without a job is the stray below.
    expect(await containersLeft(t.hub.hubId)).toEqual([]);
    const stray = await docker.createContainer({
      Image: 'docker-agent/base:bookworm',
      Cmd: ['sleep', '300'],
      Labels: { 'docker-agent.hub': t.hub.hubId, 'docker-agent.job': 'nobody' },
    });

    const dry = await t.client.prune({ jobsOlderThan: 0, keepJobs: 1, imagesOlderThan: 1e9, maxImageBytes: 1e15, dryRun: true });
    expect(dry.removed.jobs.sort()).toEqual([ids[0], ids[1]].sort());
    expect(dry.removed.containers).toEqual([stray.id]);
    expect((await t.client.listJobs()).jobs).toHaveLength(3);

    const done = await t.client.prune({ jobsOlderThan: 0, keepJobs: 1, imagesOlderThan: 1e9, maxImageBytes: 1e15 });
    expect(done).toMatchObject({ dryRun: false, removed: { images: [], snapshots: [] } });
    expect(done.removed.jobs.sort()).toEqual([ids[0], ids[1]].sort());
    expect((await t.client.listJobs()).jobs.map((j) => j.id)).toEqual([ids[2]]);
    await expect(t.client.getJob(ids[0]!)).rejects.toMatchObject({ status: 404 });
    expect(await containersOf(t.hub.hubId)).toEqual([]);
  });

  it('names a wrong field of the prune request', async () => {
    const res = await t.client.raw('POST', '/v1/maintenance/prune', { body: JSON.stringify({ keepJobs: -1, colour: 'red' }) });
    expect(res.status).toBe(400);
    const { error } = await res.json();
    expect(error.issues.map((i: { path: string }) => i.path).sort()).toEqual(['/colour', '/keepJobs']);
  });
});
