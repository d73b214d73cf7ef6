// The job path end to end: HTTP in, a real hardened container, live events out.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, containersLeft, containersOf, docker, finalState, output, startTestHub, type TestHub } from '../helpers/hub.js';

let t: TestHub;
beforeAll(async () => {
  t = await startTestHub({ DOCKER_AGENT_HEALTH_INTERVAL_MS: '200' });
});
afterAll(() => t?.close());

describe('a job on the real engine', () => {
  it('runs its steps in order and succeeds with their output', async () => {
    const job = await t.client.createJob({
      steps: [
        { name: 'shell', run: 'echo "hello from $(whoami) in $PWD"' },
        { name: 'node', run: 'node -e "console.log(6 * 7)"', env: { GREETING: 'hi' } },
        { name: 'env', run: 'echo "$GREETING $JOB_WIDE"; env | grep -c DOCKER_AGENT_ || true', env: { GREETING: 'hey' } },
      ],
      env: { JOB_WIDE: 'everywhere' },
    });
    expect(job.state).toBe('queued');
    expect(job.links.events).toMatch(/^ws:\/\/.*\/v1\/jobs\/.*\/events$/);

    const events = await collect(t.client, job.id);
    expect(finalState(events)).toBe('succeeded');
    expect(output(events)).toBe('hello from agent in /workspace\n42\nhey everywhere\n0\n');
    // Seqs start at 1 and have no gaps.
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    const states = events.filter((e) => e.type === 'status').map((e) => (e as { state: string }).state);
    expect(states).toEqual(['queued', 'preparing', 'starting', 'running', 'succeeded']);

    const done = await t.client.getJob(job.id);
    expect(done).toMatchObject({ state: 'succeeded', exitCode: 0 });
    expect(done.steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(await containersLeft(t.hub.hubId, (c) => c.Labels['docker-agent.job'] === job.id)).toEqual([]);
  });

  it("leaves an ended job's env values in no file of the data folder, the store's WAL included", async () => {
    const secret = `v-${randomBytes(12).toString('hex')}`;
    const inFolder = () => filesUnder(t.dataDir).filter((f) => readFileSync(f).includes(secret));
    const job = await t.client.createJob({
      steps: [{ name: 'uses it', run: 'test -n "$SECRET_ONE$SECRET_TWO" && echo set', env: { SECRET_TWO: secret } }],
      env: { SECRET_ONE: secret },
    });
    // While it waits or runs, the value is kept outside SQLite: the store never holds it.
    expect(inFolder().filter((f) => /hub\.db/.test(f))).toEqual([]);
    const events = await collect(t.client, job.id);
    expect(finalState(events)).toBe('succeeded');
    expect(output(events)).toBe('set\n');
    expect(inFolder()).toEqual([]);
    expect((await t.client.getJob(job.id)).state).toBe('succeeded');
  });

  it("keeps a failing step's exit code and skips the steps after it", async () => {
    const job = await t.client.createJob({
      steps: [
        { name: 'ok', run: 'echo one' },
        { name: 'breaks', run: 'echo two; echo oops >&2; exit 3' },
        { name: 'never', run: 'echo three' },
      ],
    });
    const events = await collect(t.client, job.id);
    expect(finalState(events)).toBe('failed');
    expect(output(events)).toBe('one\ntwo\n');
    expect(output(events, 'stderr')).toBe('oops\n');
    expect(events.find((e) => e.type === 'exit')).toMatchObject({ code: 3 });
    const done = await t.client.getJob(job.id);
    expect(done.exitCode).toBe(3);
    expect(done.steps).toMatchObject([
      { name: 'ok', state: 'succeeded', exitCode: 0 },
      { name: 'breaks', state: 'failed', exitCode: 3 },
      { name: 'never', state: 'skipped' },
    ]);
  });

  it('ends a job past its time limit as timed_out, keeps its output and removes its container', async () => {
    const job = await t.client.createJob({ run: 'echo partial; sleep 0.2; echo more; sleep 60; echo never', timeout: 2 });
    const events = await collect(t.client, job.id);
    expect(finalState(events)).toBe('timed_out');
    expect(output(events)).toBe('partial\nmore\n');
    const done = await t.client.getJob(job.id);
    expect(done.exitCode).toBe(124);
    expect(done.reason).toMatch(/2 s limit/);
    expect(await containersLeft(t.hub.hubId, (c) => c.Labels['docker-agent.job'] === job.id)).toEqual([]);
  });

  it("enforces a step's own time limit", async () => {
    const job = await t.client.createJob({ steps: [{ name: 'slow', run: 'sleep 30', timeout: 1 }, { run: 'echo after' }] });
    const events = await collect(t.client, job.id);
    expect(finalState(events)).toBe('timed_out');
    const done = await t.client.getJob(job.id);
    expect(done.steps).toMatchObject([{ name: 'slow', state: 'timed_out' }, { state: 'skipped' }]);
    expect(done.reason).toMatch(/step "slow" ran past its 1 s limit/);
  });

  it('cancels a running job: its whole process tree ends, its output so far is kept', async () => {
    const job = await t.client.createJob({
      // A background child that holds stdout open and a process in its own session.
      run: 'sleep 300 & setsid sleep 300 & echo started; sleep 300',
      keep: true,
    });
    const seen: string[] = [];
    let cancelledAt = 0;
    for await (const e of t.client.events(job.id)) {
      if (e.type === 'stdout') {
        seen.push(e.data);
        cancelledAt = Date.now();
        const r = await t.client.cancelJob(job.id);
        expect(r.id).toBe(job.id);
      }
      if (e.type === 'status' && e.state === 'cancelled') break;
    }
    expect(Date.now() - cancelledAt).toBeLessThan(5000);
    expect(seen.join('')).toBe('started\n');
    const done = await t.client.getJob(job.id);
    expect(done).toMatchObject({ state: 'cancelled', exitCode: 130, steps: [{ state: 'cancelled' }] });
    // The kept container's runtime reported and then exited cleanly, not killed by the hub.
    const c = docker.getContainer((await containersOf(t.hub.hubId)).find((c) => c.Labels['docker-agent.job'] === job.id)!.Id);
    const info = await c.wait();
    expect(info.StatusCode).toBe(0);
    await c.remove({ force: true });
  });

  it('answers 409 when cancelling a job that already ended', async () => {
    const job = await t.client.createJob({ run: 'true' });
    await collect(t.client, job.id);
    await expect(t.client.cancelJob(job.id)).rejects.toMatchObject({ status: 409, code: 'JOB_ENDED' });
  });

  it('replays events from any seq, once, to clients that come during and after the job', async () => {
    const job = await t.client.createJob({ run: 'for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done' });
    // One client leaves after three events and comes back with ?from=.
    const first: number[] = [];
    for await (const e of t.client.events(job.id)) {
      first.push(e.seq);
      if (first.length === 3) break;
    }
    const rest = await collect(t.client, job.id, first.at(-1)! + 1);
    const all = await collect(t.client, job.id);
    expect([...first, ...rest.map((e) => e.seq)]).toEqual(all.map((e) => e.seq));
    expect(output(all)).toBe('line 1\nline 2\nline 3\nline 4\nline 5\n');
    // A late client asking from the middle gets exactly the tail.
    const tail = await collect(t.client, job.id, 5);
    expect(tail).toEqual(all.slice(4));
  });

  it("reports the container's memory and CPU while the job runs", async () => {
    const job = await t.client.createJob({ run: 'echo go; sleep 1.5' });
    for await (const e of t.client.events(job.id)) {
      if (e.type === 'stdout') break;
    }
    const deadline = Date.now() + 5000;
    let health = (await t.client.getJob(job.id)).health;
    while (!health && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100)); // polling the API for a periodic report
      health = (await t.client.getJob(job.id)).health;
    }
    expect(health).not.toBeNull();
    expect(health!.memoryBytes).toBeGreaterThan(1024 * 1024);
    expect(health!.cpuPercent).toBeGreaterThanOrEqual(0);
    await collect(t.client, job.id);
  });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? filesUnder(path) : e.isFile() ? [path] : [];
  });
}
