// The hub killed with SIGKILL while jobs run, then started again: no job or event
// is lost and no container is left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { HubClient } from '../../client/index.js';
import { repoPath } from '../../hub/platform/paths.js';
import { collect, containersLeft, containersOf, finalState, output, removeContainers, settledAgent, tempDataDir, TOKEN, docker } from '../helpers/hub.js';

const dataDir = tempDataDir();
let hub: ChildProcess | undefined;
let hubId = '';

/** Starts the built hub as its own process and waits for it to say where it listens. */
async function startHubProcess(env: Record<string, string> = {}): Promise<HubClient> {
  // The previous test's hub still serves the same data folder: end it, or it outlives the run.
  if (hub && hub.exitCode === null && hub.signalCode === null) await kill9();
  const child = spawn(process.execPath, [repoPath('build', 'hub.mjs')], {
    env: { ...process.env, DOCKER_AGENT_PORT: '0', DOCKER_AGENT_DATA_DIR: dataDir, DOCKER_AGENT_TOKEN: TOKEN, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  hub = child;
  const lines = createInterface({ input: child.stderr! });
  for await (const line of lines) {
    const m = /hub (\S+) listening on (\S+)/.exec(line);
    if (m) {
      hubId = m[1]!;
      lines.removeAllListeners('line');
      child.stderr!.resume();
      return new HubClient({ url: m[2]!, token: TOKEN });
    }
  }
  throw new Error(`hub exited before listening (code ${child.exitCode})`);
}

function kill9(): Promise<void> {
  const child = hub!;
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

afterAll(async () => {
  hub?.kill('SIGKILL');
  await removeContainers(hubId);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('hub restart', () => {
  it('re-attaches a running job: it finishes with all its output, once, and its container is removed', async () => {
    let client = await startHubProcess();
    const job = await client.createJob({ run: 'for i in $(seq 1 8); do echo tick $i; sleep 0.4; done' });
    for await (const e of client.events(job.id)) {
      if (e.type === 'stdout') break; // the job is running and printing
    }
    await kill9();
    // The job goes on printing while no hub listens; the runtime holds its output.
    client = await startHubProcess();
    const events = await collect(client, job.id);
    expect(finalState(events), JSON.stringify(events.filter((e) => e.type === 'status' || e.type === 'error'))).toBe('succeeded');
    expect(output(events)).toBe(Array.from({ length: 8 }, (_, i) => `tick ${i + 1}\n`).join(''));
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(await containersLeft(hubId)).toEqual([]);
  });

  it('ends a job whose container vanished while the hub was down as error, with the reason', async () => {
    let client = await startHubProcess();
    const job = await client.createJob({ run: 'echo started; sleep 300' });
    for await (const e of client.events(job.id)) {
      if (e.type === 'stdout') break;
    }
    await kill9();
    const [c] = (await containersOf(hubId)).filter((c) => c.Labels['docker-agent.job'] === job.id);
    await docker.getContainer(c!.Id).remove({ force: true });
    client = await startHubProcess();
    const events = await collect(client, job.id);
    expect(finalState(events)).toBe('error');
    expect(output(events)).toBe('started\n');
    expect((await client.getJob(job.id)).reason).toMatch(/hub restarted .* container was gone/);
  });

  it('keeps named agents: a running one is re-attached and runs jobs on its /workspace, a stopped one stays stopped', async () => {
    let client = await startHubProcess();
    await client.createAgent({ name: 'keeps-running' });
    await client.createAgent({ name: 'stays-stopped' });
    expect(await settledAgent(client, 'keeps-running')).toBe('running');
    expect(await settledAgent(client, 'stays-stopped')).toBe('running');
    const wrote = await client.createJob({ agent: 'keeps-running', run: 'echo before the restart > /workspace/kept.txt' });
    expect(finalState(await collect(client, wrote.id))).toBe('succeeded');
    await client.stopAgent('stays-stopped');
    const [container] = (await containersOf(hubId)).filter((c) => c.Labels['docker-agent.agent']).map((c) => c.Id);
    await kill9();

    client = await startHubProcess();
    expect((await client.getAgent('stays-stopped')).state).toBe('stopped');
    expect((await client.getAgent('keeps-running')).state).toBe('running');
    const read = await client.createJob({ agent: 'keeps-running', run: 'cat /workspace/kept.txt' });
    const events = await collect(client, read.id);
    expect(finalState(events)).toBe('succeeded');
    expect(output(events)).toBe('before the restart\n');
    // The same container, re-attached, not a new one.
    expect((await containersOf(hubId)).map((c) => c.Id)).toEqual([container]);
    await client.destroyAgent('keeps-running');
    await client.destroyAgent('stays-stopped');
  });

  it('leaves no warm pool container behind a kill -9: the next start removes them and makes fresh ones', async () => {
    await startHubProcess({ DOCKER_AGENT_POOL_MIN_IDLE: '2' });
    const pooled = async () => (await containersOf(hubId)).filter((c) => c.Labels['docker-agent.pool']).map((c) => c.Id);
    const waitFor = async (test: (ids: string[]) => boolean) => {
      for (;;) {
        const ids = await pooled();
        if (test(ids)) return ids;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const before = await waitFor((ids) => ids.length === 2);
    await kill9();
    expect(await pooled()).toEqual(expect.arrayContaining(before));
    await startHubProcess({ DOCKER_AGENT_POOL_MIN_IDLE: '2' });
    const after = await waitFor((ids) => ids.length === 2 && ids.every((id) => !before.includes(id)));
    expect(after.some((id) => before.includes(id))).toBe(false);
    await kill9();
    // Without a pool, the next start keeps none.
    await startHubProcess();
    expect(await pooled()).toEqual([]);
  });

  it('removes containers of this hub that no job owns', async () => {
    await startHubProcess();
    await kill9();
    const stray = await docker.createContainer({
      Image: 'docker-agent/base:bookworm',
      Cmd: ['sleep', '300'],
      Labels: { 'docker-agent.hub': hubId, 'docker-agent.job': 'no-such-job' },
    });
    await stray.start();
    await startHubProcess();
    expect(await containersOf(hubId)).toEqual([]);
  });
});
