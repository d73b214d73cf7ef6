// The swarm lab (scripts/swarm-lab.ts) as its users run it: `npm run swarm-lab --
// up` makes a real three-node Swarm of three engines and a registry, a one-shot
// job service runs on a worker from an image pushed there, and `down` leaves no
// daemon, bridge, container or folder behind.
import Docker from 'dockerode';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoPath } from '../../hub/platform/paths.js';
import { REGISTRY, type Lab } from '../../scripts/swarm-lab.js';

const dir = join(mkdtempSync(join(tmpdir(), 'da-lab-')), 'lab');
const env = { ...process.env, DOCKER_AGENT_SWARM_LAB_DIR: dir };
const lab = (...args: string[]) => execFileSync(process.execPath, [repoPath('build', 'swarm-lab.mjs'), ...args], { env, encoding: 'utf8' });

afterAll(() => {
  // Whatever a failed test left: down is safe to repeat.
  spawnSync(process.execPath, [repoPath('build', 'swarm-lab.mjs'), 'down'], { env });
});

/** A task's end, polled (Swarm has no task events). */
async function taskEnd(manager: Docker, serviceId: string): Promise<{ state: string; exitCode?: number; node: string }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const tasks = (await manager.listTasks({ filters: { service: [serviceId] } })) as Array<{
      NodeID: string;
      Status: { State: string; ContainerStatus?: { ExitCode?: number } };
    }>;
    const t = tasks[0];
    if (t && ['complete', 'failed', 'rejected'].includes(t.Status.State))
      return { state: t.Status.State, exitCode: t.Status.ContainerStatus?.ExitCode, node: t.NodeID };
    if (Date.now() > deadline) throw new Error(`the task never ended: ${JSON.stringify(tasks)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('npm run swarm-lab', () => {
  it('makes a three-node Swarm with a registry, runs a job service on a worker from it, and down leaves nothing', async () => {
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
    const base = (await main.listImages({ filters: { reference: ['docker-agent/base'] } }))[0]!;
    const tag = `${REGISTRY}/docker-agent/lab-test:1`;
    await main.getImage(base.Id).tag({ repo: `${REGISTRY}/docker-agent/lab-test`, tag: '1' });
    const pushed = await new Promise<string>((resolve, reject) => {
      // The engine wants credentials even for a registry without any.
      void main.getImage(tag).push({ authconfig: { serveraddress: REGISTRY } }, (err, stream) => {
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
    await main.getImage(tag).remove();
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

    const pids = up.nodes.map((n) => n.pid).concat(up.registry.pid);
    lab('down');
    expect(existsSync(dir)).toBe(false);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`), `process ${pid}`).toBe(false);
    expect(spawnSync('ip', ['link', 'show', 'dasw1']).status).not.toBe(0);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(dir);
    expect(lab('status')).toBe('no swarm lab is up\n');
  }, 240_000);
});
