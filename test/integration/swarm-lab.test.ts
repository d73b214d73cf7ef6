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
import { afterAll, describe, expect, it } from 'vitest';
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
  it('makes a three-node Swarm with a registry, runs job services on workers from it (hardened as the swarm backend asks), and down leaves nothing', async () => {
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

    const pids = up.nodes.map((n) => n.pid).concat(up.registry.pid);
    lab('down');
    expect(existsSync(dir)).toBe(false);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`), `process ${pid}`).toBe(false);
    expect(spawnSync('ip', ['link', 'show', 'dasw1']).status).not.toBe(0);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(dir);
    expect(lab('status')).toBe('no swarm lab is up\n');
  }, 240_000);
});
