// The swarm backend: each job (or named agent, or pooled sandbox) a one-shot Swarm
// service placed by the managers on any job node. Images are built on the hub's own
// engine, pushed to the registry every node pulls from and run by digest; what is
// node-local (exec, commit, a task's container, an agent's volume) goes to the engine
// of the node the task is on (node-engines.ts). Snapshots come back to the hub's
// engine, so exporting, pruning and starting from them work as on one host.
import type Docker from 'dockerode';
import type { Profile } from '../../../schemas/types.gen.js';
import { HubError } from '../../platform/errors.js';
import { withTimeout } from '../../platform/timeout.js';
import { connectDocker, type Connection } from '../docker/connect.js';
import { demuxLogs, DockerBackend, type DockerBackendOptions } from '../docker/backend.js';
import { execInContainer } from '../docker/exec.js';
import { commitJob, snapshotWithWorkspace } from '../docker/snapshot.js';
import { userIds } from '../../profiles/user.js';
import {
  LABELS,
  type Backend,
  type BuildProgress,
  type ContainerInfo,
  type ContainerRef,
  type ContainerSpec,
  type EngineInfo,
  type EngineStorage,
  type ExecOptions,
  type ExecSession,
  type NodeHealth,
} from '../types.js';
import { NodeEngines, type SwarmNode } from './node-engines.js';
import { publish } from './publish.js';
import { jobServiceSpec } from './service-spec.js';
import { currentTask, TaskWatch, type TaskEnd, type TaskInfo } from './task-watch.js';

export interface SwarmBackendOptions extends DockerBackendOptions {
  /** A manager's engine (DOCKER_HOST); unset, the default socket. */
  manager?: string;
  /** The registry every node pulls from (DOCKER_AGENT_REGISTRY). */
  registry: string;
  /** The engine images are built on (DOCKER_AGENT_BUILD_HOST). */
  buildHost: string;
  /** Where each node's engine is (DOCKER_AGENT_SWARM_NODE_SOCKET). */
  nodeSocket: string;
  /** Placement constraints of every job (DOCKER_AGENT_SWARM_CONSTRAINTS). */
  constraints: string[];
}

/** How long a node's engine may take (a removal, logs) before the hub goes on without it. */
const NODE_CALL_MS = 10_000;
/** How long the managers may take to list or remove before the call fails. */
const MANAGER_CALL_MS = 30_000;

function status(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

export class SwarmBackend implements Backend {
  readonly name = 'swarm';
  /** Local image → its registry reference by digest, pushed once per image and hub run. */
  private readonly published = new Map<string, Promise<string>>();

  private constructor(
    private readonly manager: Connection,
    private readonly build: DockerBackend,
    private readonly engines: NodeEngines,
    private readonly tasks: TaskWatch,
    private readonly opts: SwarmBackendOptions,
  ) {}

  static async connect(opts: SwarmBackendOptions): Promise<SwarmBackend> {
    const manager = await connectDocker(opts.manager);
    const swarm = ((await manager.docker.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } }).Swarm;
    if (swarm?.LocalNodeState !== 'active' || !swarm.ControlAvailable) {
      throw new HubError(
        'ENGINE_UNAVAILABLE',
        `DOCKER_HOST (${opts.manager ?? '/var/run/docker.sock'}) is not a Swarm manager (its node is ${swarm?.LocalNodeState || 'not in a swarm'}); point it at a manager's engine, or use DOCKER_AGENT_BACKEND=docker`,
      );
    }
    const build = await DockerBackend.connect(opts, opts.buildHost);
    return new SwarmBackend(manager, build, new NodeEngines(manager.docker, opts.nodeSocket, manager.apiVersion), new TaskWatch(manager.docker), opts);
  }

  private get docker(): Docker {
    return this.manager.docker;
  }

  async info(): Promise<EngineInfo> {
    try {
      const [v, nodes] = await Promise.all([this.docker.version(), this.nodes()]);
      return { backend: this.name, version: v.Version, apiVersion: this.manager.apiVersion, nodes };
    } catch (err) {
      throw new HubError('ENGINE_UNAVAILABLE', `the Swarm manager does not answer: ${(err as Error).message}`);
    }
  }

  /** The hub's own engine: where images and snapshots are kept. */
  storage(): Promise<EngineStorage> {
    return this.build.storage();
  }

  /** A service cannot ask for a size limit (no StorageOpt): the disk watch reads each task's bytes instead. */
  async useDiskQuota(): Promise<boolean> {
    return false;
  }

  async writableBytes(ref: ContainerRef): Promise<number | undefined> {
    const where = await this.taskContainer(ref).catch(() => undefined);
    if (!where) return undefined;
    // Undefined, as for a container that is gone, when its node does not answer in time: the disk watch looks again.
    const inspect = where.engine.getContainer(where.id).inspect({ size: true } as Docker.ContainerInspectOptions) as Promise<{ SizeRw?: number }>;
    return withTimeout(inspect, NODE_CALL_MS, 'the node did not answer').then(
      (c) => c.SizeRw ?? 0,
      () => undefined,
    );
  }

  async prepare(profile: Profile, onProgress?: (p: BuildProgress) => void): Promise<string> {
    return this.publish(await this.build.prepare(profile, onProgress));
  }

  imageFor(profile: Profile): Promise<string> {
    return this.build.imageFor(profile);
  }

  pruneImages(opts: Parameters<Backend['pruneImages']>[0]): Promise<string[]> {
    return this.build.pruneImages(opts);
  }

  /** None yet: `bridge` profiles are refused by name (service-spec.ts), and run on a single-host hub. */
  async jobNetwork(): Promise<undefined> {
    return undefined;
  }

  async start(spec: ContainerSpec, created?: (ref: ContainerRef) => void): Promise<ContainerRef> {
    // A snapshot's image (or anything else local) is pushed first; a prepared profile's is by digest already.
    const image = spec.image.includes('@sha256:') ? spec.image : await this.publish(spec.image);
    const constraints = [...this.opts.constraints];
    // A named agent's /workspace is a volume on one node: its container goes back there (waiting while the node is down).
    const home = spec.agent ? (spec.agent.node ?? (await this.volumeNode(spec.agent.volume))?.hostname) : undefined;
    if (home) constraints.push(`node.hostname == ${home}`);
    const service = (await this.docker.createService(
      jobServiceSpec(spec, {
        image,
        constraints,
        ...(this.opts.agentSocketDir ? { agentSocketDir: this.opts.agentSocketDir } : {}),
        ...(this.opts.containerLogMaxSize ? { logMaxSize: this.opts.containerLogMaxSize } : {}),
        ...(this.opts.containerLogMaxFiles ? { logMaxFiles: this.opts.containerLogMaxFiles } : {}),
      }),
    )) as { id: string };
    const ref = { id: service.id, jobId: spec.jobId };
    created?.(ref);
    return ref;
  }

  wait(ref: ContainerRef): Promise<TaskEnd> {
    return this.tasks.wait(ref.id);
  }

  async node(ref: ContainerRef): Promise<string | undefined> {
    const task = currentTask(await this.tasksOf([ref.id]), ref.id);
    return task?.NodeID ? (await this.engines.node(task.NodeID)).hostname : undefined;
  }

  async nodes(): Promise<NodeHealth[]> {
    return (await this.engines.list()).map(({ hostname, state, availability, role }) => ({ hostname, state, availability, role }));
  }

  /** A service's logs come from its task's node: '' when that node does not answer in time. */
  async logs(ref: ContainerRef, tail: number): Promise<string> {
    const logs = this.docker.getService(ref.id).logs({ stdout: true, stderr: true, tail }) as unknown as Promise<Buffer>;
    return withTimeout(logs, NODE_CALL_MS, 'no logs in time').then(demuxLogs, () => '');
  }

  async snapshot(ref: ContainerRef): Promise<{ image: string; bytes: number }> {
    const where = await this.taskContainer(ref);
    const taken = await commitJob(where.engine, { id: where.id, jobId: ref.jobId }, this.opts.maxSnapshotBytes);
    return this.bringHome(where.engine, taken.image);
  }

  async snapshotAgent(ref: ContainerRef, profile: Profile, image: string): Promise<{ image: string; bytes: number }> {
    const where = await this.taskContainer(ref);
    await snapshotWithWorkspace(where.engine, where.id, {
      tag: image,
      owner: userIds(profile),
      ...(this.opts.maxSnapshotBytes !== undefined ? { maxBytes: this.opts.maxSnapshotBytes } : {}),
      comment: `docker-agent ${ref.jobId}`,
    });
    return this.bringHome(where.engine, image);
  }

  removeImage(image: string): Promise<void> {
    return this.build.removeImage(image);
  }

  exportImage(image: string, opts?: { full?: boolean }): Promise<NodeJS.ReadableStream> {
    return this.build.exportImage(image, opts);
  }

  pruneSnapshots(opts: Parameters<Backend['pruneSnapshots']>[0]): Promise<string[]> {
    return this.build.pruneSnapshots(opts);
  }

  async removeVolume(name: string): Promise<void> {
    const node = await this.volumeNode(name);
    if (!node) return;
    try {
      await (await this.engines.engine(node.id)).getVolume(name).remove();
    } catch (err) {
      if (status(err) !== 404) throw err;
    }
  }

  async exec(ref: ContainerRef, opts: ExecOptions): Promise<ExecSession> {
    const where = await this.taskContainer(ref);
    return execInContainer(where.engine, where.id, opts);
  }

  async destroy(ref: ContainerRef): Promise<void> {
    const tasks = await this.tasksOf([ref.id]);
    try {
      await withTimeout(this.docker.getService(ref.id).remove(), MANAGER_CALL_MS, 'the managers did not remove the service');
    } catch (err) {
      // 404: gone already; 409: its removal is under way. Both mean done.
      if (status(err) !== 404 && status(err) !== 409) throw err;
    }
    // Swarm leaves an ended task's container on its node: removed there, where the node answers in time
    // (a node that is down or hangs must not hold up the job's end).
    await Promise.all(
      tasks
        .map(async (t) => {
          const id = t.Status.ContainerStatus?.ContainerID;
          if (!id || !t.NodeID) return;
          const engine = await this.engines.engine(t.NodeID);
          await withTimeout(engine.getContainer(id).remove({ force: true, v: true }), NODE_CALL_MS, 'the node did not answer');
        })
        .map((removal) => removal.catch(() => {})),
    );
  }

  async list(hubId: string): Promise<ContainerInfo[]> {
    let services: Array<{ ID: string; Spec?: { Labels?: Record<string, string> } }>;
    let tasks: TaskInfo[] | undefined;
    // A service removed between the two calls fails the second (the engine refuses a filter naming it): asked again,
    // never answered as "nothing runs", which would have a restarted hub end jobs that run.
    for (let attempt = 1; ; attempt++) {
      services = (await this.docker.listServices({ filters: { label: [`${LABELS.hub}=${hubId}`] } })) as typeof services;
      if (!services.length) return [];
      tasks = await this.docker.listTasks({ filters: { service: services.map((s) => s.ID) } }).catch((err: unknown) => {
        if (status(err) === 404 && attempt < 5) return undefined;
        throw err;
      });
      if (tasks) break;
    }
    return services.map((s) => {
      const labels = s.Spec?.Labels ?? {};
      return {
        id: s.ID,
        jobId: labels[LABELS.job] ?? '',
        running: currentTask(tasks!, s.ID)?.Status.State === 'running',
        ...(labels[LABELS.agent] ? { agentId: labels[LABELS.agent] } : {}),
        ...(labels[LABELS.pool] ? { pool: labels[LABELS.pool] } : {}),
      };
    });
  }

  /** Stops watching tasks. */
  close(): void {
    this.tasks.stop();
  }

  private publish(image: string): Promise<string> {
    let ref = this.published.get(image);
    if (!ref) {
      ref = publish(this.build.docker, this.opts.registry, image);
      this.published.set(image, ref);
      ref.catch(() => this.published.delete(image));
    }
    return ref;
  }

  /** The tasks of services `ids`; none for a service that is gone (the engine refuses a filter naming one). */
  private async tasksOf(ids: string[]): Promise<TaskInfo[]> {
    try {
      return (await withTimeout(this.docker.listTasks({ filters: { service: ids } }), MANAGER_CALL_MS, 'the managers did not list the tasks')) as TaskInfo[];
    } catch (err) {
      if (status(err) === 404) return [];
      throw err;
    }
  }

  /** The container of a service's task and its node's engine; NOT_RUNNING when it has none yet or any more. */
  private async taskContainer(ref: ContainerRef): Promise<{ engine: Docker; id: string }> {
    const task = currentTask(await this.tasksOf([ref.id]), ref.id);
    const id = task?.Status.ContainerStatus?.ContainerID;
    if (!task?.NodeID || !id) throw new HubError('NOT_RUNNING', `the job's task has no container (it is ${task?.Status.State ?? 'gone'})`);
    return { engine: await this.engines.engine(task.NodeID), id };
  }

  /** An image committed on a node, brought to the hub's engine through the registry (and gone from the node). */
  private async bringHome(node: Docker, image: string): Promise<{ image: string; bytes: number }> {
    const ref = await publish(node, this.opts.registry, image);
    await node
      .getImage(image)
      .remove()
      .catch(() => {});
    const home = this.build.docker;
    const stream = (await home.pull(ref, { authconfig: { serveraddress: this.opts.registry } })) as NodeJS.ReadableStream;
    await new Promise<void>((resolve, reject) =>
      home.modem.followProgress(
        stream,
        (err: Error | null) => (err ? reject(err) : resolve()),
        (m: { error?: string }) => m.error && reject(new Error(`pulling the snapshot back from ${this.opts.registry} failed: ${m.error}`)),
      ),
    );
    const at = image.lastIndexOf(':');
    await home.getImage(ref).tag({ repo: image.slice(0, at), tag: image.slice(at + 1) });
    this.published.set(image, Promise.resolve(ref));
    return { image, bytes: (await home.getImage(image).inspect()).Size };
  }

  /** The node holding volume `name`, if any that answers does (an agent whose node is recorded never asks). */
  private async volumeNode(name: string): Promise<SwarmNode | undefined> {
    for (const node of await this.engines.list()) {
      if (node.state !== 'ready') continue;
      const found = await this.engines
        .engine(node.id)
        .then((engine) => withTimeout(engine.getVolume(name).inspect(), NODE_CALL_MS, 'the node did not answer'))
        .then(
          () => true,
          () => false,
        );
      if (found) return node;
    }
    return undefined;
  }
}
