// The swarm lab (scripts/swarm-lab.ts) as its users run it: `npm run swarm-lab --
// up` makes a real three-node Swarm of three engines and a registry, a one-shot
// job service runs on a worker from an image pushed there, a job's service as the
// swarm backend makes it (hub/backend/swarm/service-spec.ts) runs hardened on a
// worker, seen through that node's own engine, and `down` leaves no daemon, bridge,
// container or folder behind. One lab for the whole file: it owns fixed addresses.
import Docker from 'dockerode';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../schemas/types.gen.js';
import { collect, finalState, output, settledAgent, startTestHub, TOKEN, type TestHub } from '../helpers/hub.js';
import { repoPath } from '../../hub/platform/paths.js';
import { jobServiceSpec } from '../../hub/backend/swarm/service-spec.js';
import { ProfileRegistry } from '../../hub/profiles/registry.js';
import { REGISTRY, type Lab } from '../../scripts/swarm-lab.js';

const dir = join(mkdtempSync(join(tmpdir(), 'da-lab-')), 'lab');
const env = { ...process.env, DOCKER_AGENT_SWARM_LAB_DIR: dir };
const lab = (...args: string[]) => execFileSync(process.execPath, [repoPath('build', 'swarm-lab.mjs'), ...args], { env, encoding: 'utf8' });

afterAll(() => {
  // Whatever a failed test left: down is safe to repeat.
  spawnSync(process.execPath, [repoPath('build', 'swarm-lab.mjs'), 'down'], { env });
});

/** A task's end, polled (Swarm has no task events). */
function taskEnd(manager: Docker, serviceId: string): Promise<{ state: string; exitCode?: number; node: string }> {
  let seen: unknown;
  return until(
    async () => {
      const tasks = (await manager.listTasks({ filters: { service: [serviceId] } })) as Array<{
        NodeID: string;
        Status: { State: string; ContainerStatus?: { ExitCode?: number } };
      }>;
      seen = tasks;
      const t = tasks[0];
      return t && ['complete', 'failed', 'rejected'].includes(t.Status.State)
        ? { state: t.Status.State, exitCode: t.Status.ContainerStatus?.ExitCode, node: t.NodeID }
        : undefined;
    },
    () => `the task never ended: ${JSON.stringify(seen)}`,
  );
}

/** `get()` once it gives something, looked at again until a minute has gone. */
async function until<T>(get: () => Promise<T | undefined>, what: () => string = () => 'not there'): Promise<T> {
  for (const deadline = Date.now() + 60_000; ; await new Promise((r) => setTimeout(r, 200))) {
    const x = await get();
    if (x !== undefined) return x;
    if (Date.now() > deadline) throw new Error(`${what()} within 60 s`);
  }
}

/** Pushes the main engine's image `reference` to the lab's registry as `name`; resolves with its digest. */
async function pushToLab(main: Docker, reference: string, name: string): Promise<string> {
  const image = (await main.listImages({ filters: { reference: [reference] } }))[0]!;
  const repo = `${REGISTRY}/docker-agent/${name}`;
  await main.getImage(image.Id).tag({ repo, tag: 'lab' });
  try {
    return await new Promise<string>((resolve, reject) => {
      // The engine wants credentials even for a registry without any.
      void main.getImage(`${repo}:lab`).push({ authconfig: { serveraddress: REGISTRY } }, (err, stream) => {
        if (err || !stream) return reject(err);
        let digest = '';
        main.modem.followProgress(
          stream,
          (e) => (e ? reject(e) : resolve(digest)),
          (p: { aux?: { Digest?: string }; error?: string }) => {
            if (p.error) reject(new Error(p.error));
            if (p.aux?.Digest) digest = p.aux.Digest;
          },
        );
      });
    });
  } finally {
    await main.getImage(`${repo}:lab`).remove();
  }
}

describe('npm run swarm-lab', () => {
  it('makes a three-node Swarm with a registry and runs job services on workers from it, hardened as the swarm backend asks', async () => {
    const up = JSON.parse(lab('up', '--json')) as Lab;
    expect(up.nodes.map((n) => n.name)).toEqual(['sw1', 'sw2', 'sw3']);
    expect(up.env).toMatchObject({
      DOCKER_AGENT_BACKEND: 'swarm',
      DOCKER_HOST: `unix://${join(dir, 'sw1', 'docker.sock')}`,
      DOCKER_AGENT_REGISTRY: REGISTRY,
    });
    // Up twice is the same lab.
    expect((JSON.parse(lab('up', '--json')) as Lab).nodes.map((n) => n.pid)).toEqual(up.nodes.map((n) => n.pid));

    const manager = new Docker({ socketPath: up.nodes[0]!.socket });
    const nodes = (await manager.listNodes()) as Array<{ ID: string; Description: { Hostname: string }; Spec: { Role: string }; Status: { State: string } }>;
    expect(nodes.map((n) => [n.Description.Hostname, n.Spec.Role, n.Status.State]).sort()).toEqual([
      ['sw1', 'manager', 'ready'],
      ['sw2', 'worker', 'ready'],
      ['sw3', 'worker', 'ready'],
    ]);

    // An image from the main engine, pushed to the lab's registry and run by digest on a worker, which pulls it.
    const main = new Docker();
    const pushed = await pushToLab(main, 'docker-agent/base', 'lab-test');
    expect(pushed).toMatch(/^sha256:/);
    const worker = nodes.find((n) => n.Description.Hostname === 'sw3')!;
    const service = await manager.createService({
      Name: 'lab-test',
      TaskTemplate: {
        ContainerSpec: { Image: `${REGISTRY}/docker-agent/lab-test@${pushed}`, Command: ['sh', '-c', 'hostname; exit 3'] },
        Placement: { Constraints: [`node.id == ${worker.ID}`] },
        RestartPolicy: { Condition: 'none' },
      },
      Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } },
    } as unknown as Docker.CreateServiceOptions);
    const end = await taskEnd(manager, service.id as string);
    expect(end).toMatchObject({ state: 'failed', exitCode: 3, node: worker.ID });

    // A job's service as the swarm backend makes it, on the other worker: its runtime dials a socket that is not
    // there and keeps trying, so its task runs while its container is looked at through its own node's engine.
    const profile = new ProfileRegistry(repoPath('profiles')).get('default');
    const digest = await pushToLab(main, 'docker-agent/default', 'default');
    const socketDir = mkdtempSync(join(tmpdir(), 'da-lab-sock-'));
    const other = nodes.find((n) => n.Description.Hostname === 'sw2')!;
    const job = await manager.createService(
      jobServiceSpec(
        {
          jobId: 'lab-job',
          hubId: 'lab',
          image: '',
          profile,
          env: { DOCKER_AGENT_HUB_URL: 'ws+unix:///run/docker-agent/hub.sock:/v1/agent', DOCKER_AGENT_AGENT_TOKEN: 'agt_lab' },
        },
        { image: `${REGISTRY}/docker-agent/default@${digest}`, agentSocketDir: socketDir, constraints: [`node.id == ${other.ID}`] },
      ),
    );
    const onNode = new Docker({ socketPath: up.nodes[1]!.socket });
    const container = await until(async () => (await onNode.listContainers({ filters: { label: ['docker-agent.job=lab-job'] } }))[0]);
    const c = await onNode.getContainer(container.Id).inspect();
    expect(c.Config.User).toBe('1000:1000');
    expect(c.Config.WorkingDir).toBe('/workspace');
    expect(c.HostConfig).toMatchObject({
      Init: true,
      CapDrop: ['ALL'],
      Memory: 1024 ** 3,
      NanoCpus: 1e9,
      PidsLimit: 512,
      Ulimits: [
        { Name: 'nofile', Soft: 8192, Hard: 8192 },
        { Name: 'nproc', Soft: 16384, Hard: 16384 },
      ],
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    });
    expect(c.Mounts).toEqual([expect.objectContaining({ Type: 'bind', Source: socketDir, Destination: '/run/docker-agent', RW: false })]);
    await manager.getService(job.id as string).remove();
  }, 240_000);

  describe('a hub on the swarm backend', () => {
    let t: TestHub;
    let manager: Docker;
    let up: Lab;
    const hostnames = new Map<string, string>();

    beforeAll(async () => {
      up = JSON.parse(lab('status', '--json')) as Lab;
      manager = new Docker({ socketPath: up.nodes[0]!.socket });
      for (const n of (await manager.listNodes()) as Array<{ ID: string; Description: { Hostname: string } }>) hostnames.set(n.Description.Hostname, n.ID);
      t = await startTestHub(hubEnv());
    }, 120_000);
    afterAll(async () => {
      await t?.close();
    });

    /** Jobs on the workers only (a constraint of the hub's), so that the manager is never the node that goes. */
    const hubEnv = () => ({
      ...up.env,
      DOCKER_AGENT_SWARM_CONSTRAINTS: 'node.role==worker',
      DOCKER_AGENT_MAX_JOBS: '8',
      DOCKER_AGENT_HEALTH_CHECK_SECONDS: '1',
    });

    /** A job that prints `ready` and runs until it ends otherwise. */
    async function runningJob(): Promise<JobView> {
      const created = await t.client.createJob({ run: 'echo ready; sleep 600' });
      for await (const e of t.client.events(created.id)) if (e.type === 'stdout') break;
      return until(async () => {
        const job = await t.client.getJob(created.id);
        return job.node ? job : undefined;
      });
    }

    const setAvailability = async (hostname: string, availability: 'active' | 'pause' | 'drain') => {
      const node = manager.getNode(hostnames.get(hostname)!);
      const { Version, Spec } = (await node.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
      await node.update({ version: Version.Index, ...Spec, Availability: availability });
    };

    it('runs jobs spread over the workers, with their output and exit codes, and says which node ran each', async () => {
      const jobs = await Promise.all([1, 2, 3, 4].map((i) => t.client.createJob({ run: `echo out-${i}; exit ${i}` })));
      for (const [i, job] of jobs.entries()) {
        const events = await collect(t.client, job.id);
        expect(output(events)).toBe(`out-${i + 1}\n`);
        expect(finalState(events)).toBe('failed');
        expect((await t.client.getJob(job.id)).exitCode).toBe(i + 1);
      }
      const nodes = new Set(await Promise.all(jobs.map(async (j) => (await t.client.getJob(j.id)).node)));
      expect([...nodes].sort()).toEqual(['sw2', 'sw3']);
      // /health and /metrics show the nodes, from the hub's background look.
      const health = await t.client.health();
      expect(health.status).toBe('ok');
      // Anyone may read /health: the nodes by state and role, not by name.
      expect(health.engine).toMatchObject({ backend: 'swarm' });
      expect(health.engine.nodes).toEqual(
        expect.arrayContaining([
          { state: 'ready', availability: 'active', role: 'manager' },
          { state: 'ready', availability: 'active', role: 'worker' },
        ]),
      );
      expect(health.engine.nodes).toHaveLength(3);
      const metrics = await (await fetch(`${t.hub.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
      expect(metrics).toContain('docker_agent_nodes{state="ready",availability="active"} 3');
      // Each ended job's service is gone, and so is its task's container on its node.
      await until(async () => ((await manager.listServices({ filters: { label: [`docker-agent.hub=${t.hub.hubId}`] } })).length === 0 ? true : undefined));
      for (const n of up.nodes.slice(1)) {
        const engine = new Docker({ socketPath: n.socket });
        await until(
          async () => ((await engine.listContainers({ all: true, filters: { label: [`docker-agent.hub=${t.hub.hubId}`] } })).length === 0 ? true : undefined),
          () => `${n.name} still has the jobs' containers`,
        );
      }
    }, 180_000);

    it('opens a shell into a job on a worker, through that node’s engine', async () => {
      const job = await runningJob();
      expect(['sw2', 'sw3']).toContain(job.node);
      let seen = '';
      const shell = await t.client.shell({ job: job.id }, { cols: 80, rows: 24 }, (d) => (seen += d.toString()));
      shell.write('echo "in $(pwd) as $(id -u)"; exit 5\n');
      expect(await shell.exited).toBe(5);
      expect(seen).toContain('in /workspace as 1000');
      await t.client.cancelJob(job.id);
      expect(finalState(await collect(t.client, job.id))).toBe('cancelled');
    }, 120_000);

    it('takes a snapshot on one worker and starts a job from it on the other, which a paused node does not take', async () => {
      const first = await t.client.createJob({ run: 'echo kept > /workspace/made-here', snapshot: true });
      expect(finalState(await collect(t.client, first.id))).toBe('succeeded');
      const there = (await t.client.getJob(first.id)).node!;
      // Paused: what runs there goes on, nothing new is placed there.
      await setAvailability(there, 'pause');
      try {
        const second = await t.client.createJob({ run: 'cat /workspace/made-here', from: { snapshot: first.id } });
        const events = await collect(t.client, second.id);
        expect(output(events)).toBe('kept\n');
        expect((await t.client.getJob(second.id)).node).not.toBe(there);
      } finally {
        await setAvailability(there, 'active');
      }
    }, 180_000);

    it('keeps a named agent’s /workspace across stop and start, on the node that holds its volume', async () => {
      await t.client.createAgent({ name: 'swarm-keeper' });
      expect(await settledAgent(t.client, 'swarm-keeper')).toBe('running');
      const write = await t.client.createJob({ agent: 'swarm-keeper', run: 'echo remembered > /workspace/note' });
      expect(finalState(await collect(t.client, write.id))).toBe('succeeded');
      const home = (await t.client.getJob(write.id)).node;
      await t.client.stopAgent('swarm-keeper');
      await t.client.startAgent('swarm-keeper');
      expect(await settledAgent(t.client, 'swarm-keeper')).toBe('running');
      const read = await t.client.createJob({ agent: 'swarm-keeper', run: 'cat /workspace/note' });
      expect(output(await collect(t.client, read.id))).toBe('remembered\n');
      expect((await t.client.getJob(read.id)).node).toBe(home);
      await t.client.destroyAgent('swarm-keeper');
    }, 180_000);

    it('docker-agent-hub nodes lists the nodes with their jobs; pause lets a job finish where drain ends it NODE_LOST', async () => {
      const nodes = (...args: string[]) =>
        JSON.parse(
          execFileSync(process.execPath, [repoPath('build', 'hub.mjs'), 'nodes', ...args, '--json', '--data-dir', t.dataDir], {
            env: { ...process.env, DOCKER_HOST: up.env.DOCKER_HOST! },
            encoding: 'utf8',
          }),
        ) as { nodes: Array<{ hostname: string; state: string; availability: string; jobs: number; role: string }> } & { availability?: string };

      const kept = await runningJob();
      expect(nodes().nodes.find((n) => n.hostname === kept.node)).toMatchObject({ state: 'ready', availability: 'active', jobs: 1, role: 'worker' });
      expect(nodes('pause', kept.node!)).toMatchObject({ hostname: kept.node, availability: 'pause' });
      try {
        // Paused: the job there goes on to its end, and the next goes to the other worker.
        await t.client.cancelJob(kept.id);
        expect(finalState(await collect(t.client, kept.id))).toBe('cancelled');
        const next = await runningJob();
        expect(next.node).not.toBe(kept.node);
        // Drained: the Swarm stops what runs there, and the hub says the job lost its node.
        expect(nodes('drain', next.node!)).toMatchObject({ availability: 'drain' });
        const events = await collect(t.client, next.id);
        expect(events.find((e) => e.type === 'error')).toMatchObject({
          code: 'NODE_LOST',
          message: expect.stringContaining(`its node ${next.node} was drained`),
        });
        nodes('resume', next.node!);
      } finally {
        for (const n of ['sw2', 'sw3']) nodes('resume', n);
      }
      expect(nodes().nodes.map((n) => [n.hostname, n.availability])).toEqual([
        ['sw1', 'active'],
        ['sw2', 'active'],
        ['sw3', 'active'],
      ]);
    }, 180_000);

    it('a restarted hub takes its job running on the Swarm back, opens a shell into it, and gets all of its output', async () => {
      // It runs until a file appears, which only a shell into it can make.
      const job = await t.client.createJob({ run: 'echo before; until [ -e /tmp/go ]; do sleep 0.1; done; echo after' });
      for await (const e of t.client.events(job.id)) if (e.type === 'stdout') break;
      // The hub goes (its services stay), and a new one on the same data folder finds them: their runtimes dial back in.
      await t.hub.close();
      t = await startTestHub(hubEnv(), { dataDir: t.dataDir });
      const shell = await t.client.shell({ job: job.id }, { cols: 80, rows: 24 }, () => {});
      shell.write('touch /tmp/go; exit 0\n');
      expect(await shell.exited).toBe(0);
      const events = await collect(t.client, job.id);
      expect(events.at(-1)).toMatchObject({ type: 'status', state: 'succeeded' });
      expect(output(events)).toBe('before\nafter\n');
      expect((await t.client.getJob(job.id)).node).toMatch(/^sw[23]$/);
    }, 180_000);

    it('ends the jobs of a node that stops answering NODE_LOST and its agent lost until the node is back, while a job on the other node goes on', async () => {
      await t.client.createAgent({ name: 'swarm-roamer' });
      expect(await settledAgent(t.client, 'swarm-roamer')).toBe('running');
      const note = await t.client.createJob({ agent: 'swarm-roamer', run: 'echo still-here > /workspace/note' });
      expect(finalState(await collect(t.client, note.id))).toBe('succeeded');
      const home = await until(async () => (await t.client.getAgent('swarm-roamer')).node ?? undefined);
      // A running job on the agent's node and one on the other (the Swarm spreads them; one more is sent when it did not).
      const on = new Map<string, JobView>();
      for (let i = 0; i < 6 && on.size < 2; i++) {
        const job = await runningJob();
        if (on.has(job.node!)) await t.client.cancelJob(job.id);
        else on.set(job.node!, job);
      }
      const a = on.get(home)!;
      const b = [...on.values()].find((j) => j.node !== home)!;
      const lost = up.nodes.find((n) => n.name === home)!;
      const t0 = Date.now();
      // Frozen, as a host that is cut off is: its heartbeats stop, and what runs there cannot say anything.
      process.kill(lost.pid, 'SIGSTOP');
      try {
        const events = await collect(t.client, a.id);
        expect(finalState(events)).toBe('error');
        expect(events.find((e) => e.type === 'error')).toMatchObject({ code: 'NODE_LOST', message: expect.stringContaining(`its node ${home}`) });
        expect(output(events)).toBe('ready\n');
        expect(Date.now() - t0).toBeLessThan(60_000);
        expect((await t.client.getJob(b.id)).state).toBe('running');
        expect(await until(async () => ((await t.client.getAgent('swarm-roamer')).state === 'lost' ? true : undefined))).toBe(true);
        // The hub says it is short of a node until the node is back.
        await until(async () => ((await t.client.health()).status === 'degraded' ? true : undefined));
      } finally {
        process.kill(lost.pid, 'SIGCONT');
      }
      await t.client.cancelJob(b.id);
      expect(finalState(await collect(t.client, b.id))).toBe('cancelled');
      // The node comes back: the hub is whole again, and the agent runs there again with its /workspace.
      await until(async () => ((await t.client.health()).status === 'ok' ? true : undefined));
      await until(async () => ((await t.client.getAgent('swarm-roamer')).state === 'running' ? true : undefined));
      const read = await t.client.createJob({ agent: 'swarm-roamer', run: 'cat /workspace/note' });
      expect(output(await collect(t.client, read.id))).toBe('still-here\n');
      expect((await t.client.getJob(read.id)).node).toBe(home);
      await t.client.destroyAgent('swarm-roamer');
    }, 240_000);
  });

  it('down leaves no daemon, bridge, mount, container or folder behind', () => {
    const up = JSON.parse(lab('status', '--json')) as Lab;
    const pids = up.nodes.map((n) => n.pid).concat(up.registry.pid);
    lab('down');
    expect(existsSync(dir)).toBe(false);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`), `process ${pid}`).toBe(false);
    expect(spawnSync('ip', ['link', 'show', 'dasw1']).status).not.toBe(0);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(dir);
    expect(lab('status')).toBe('no swarm lab is up\n');
  }, 240_000);
});
