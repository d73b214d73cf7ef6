// Many jobs at once: all finish, each with its own output.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, containersLeft, finalState, output, startTestHub, type TestHub } from '../helpers/hub.js';

let t: TestHub;
beforeAll(async () => {
  // One principal submits them all: its share is every slot here.
  t = await startTestHub({ DOCKER_AGENT_MAX_JOBS: '10', DOCKER_AGENT_MAX_RUNNING_PER_PRINCIPAL: '10' });
});
afterAll(() => t?.close());

describe('concurrent jobs', () => {
  it('runs 20 jobs submitted together to the end, 10 at a time', async () => {
    const jobs = await Promise.all(Array.from({ length: 20 }, (_, i) => t.client.createJob({ run: `echo job ${i}; sleep 0.5`, env: { N: String(i) } })));
    const results = await Promise.all(jobs.map((j) => collect(t.client, j.id)));
    results.forEach((events, i) => {
      expect(finalState(events)).toBe('succeeded');
      expect(output(events)).toBe(`job ${i}\n`);
    });
    expect(await containersLeft(t.hub.hubId)).toEqual([]);
  });
});
