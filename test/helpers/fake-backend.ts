// A scripted backend (after Woodpecker's dummy backend): containers are records,
// "running" until the test stops them, so the job and agent lifecycles can be
// unit-tested without Docker. Every call is recorded; the one-time token a
// container would give its runtime is kept, so a test can dial in as that runtime.
import type { Profile } from '../../schemas/types.gen.js';
import type { Backend, BuildProgress, ContainerInfo, ContainerRef, ContainerSpec, ExecOptions, ExecSession } from '../../hub/backend/types.js';
import type { RuntimeLink } from '../../hub/sandboxes/runtime-link.js';
import type { HubMessage } from '../../schemas/types.gen.js';

export interface FakeContainer {
  ref: ContainerRef;
  spec: ContainerSpec;
  running: boolean;
  removed: boolean;
  exit: (code: number) => void;
  exited: Promise<{ exitCode: number }>;
}

export class FakeBackend implements Backend {
  readonly name = 'fake';
  readonly calls: string[] = [];
  readonly containers: FakeContainer[] = [];
  readonly removedVolumes: string[] = [];
  private next = 1;
  private readonly waiting: Array<{ match: (jobId: string) => boolean; resolve: (c: FakeContainer) => void }> = [];

  /** Resolves with the next container started for `jobId` (or whose job id passes the test). */
  started(jobId: string | ((jobId: string) => boolean)): Promise<FakeContainer> {
    const match = typeof jobId === 'string' ? (id: string) => id === jobId : jobId;
    return new Promise((resolve) => this.waiting.push({ match, resolve }));
  }

  async info() {
    return { backend: 'fake', version: '0', apiVersion: '0' };
  }
  async storage() {
    return { dataRoot: '/nonexistent/fake-engine', driver: 'fake' };
  }
  async useDiskQuota() {
    return false;
  }
  /** Bytes each container "wrote", by container id (a test sets them). */
  readonly written = new Map<string, number>();
  async writableBytes(ref: ContainerRef) {
    return this.find(ref.id) ? (this.written.get(ref.id) ?? 0) : undefined;
  }
  /** While set, images are "built" only once it resolves, reporting progress first: a test can act during a build. */
  prepareGate?: Promise<void>;
  async prepare(profile: Profile, onProgress?: (p: BuildProgress) => void) {
    this.calls.push(`prepare ${profile.name}`);
    await this.prepareGate;
    onProgress?.({ message: `building ${profile.name}` });
    return `fake/${profile.name}`;
  }
  async imageFor(profile: Profile) {
    return `fake/${profile.name}`;
  }
  async pruneImages() {
    return [];
  }
  /** While set, a container runs (its runtime may dial in) but the engine's answer to its start waits for it, as on a busy engine. */
  startGate?: Promise<void>;
  async start(spec: ContainerSpec, created?: (ref: ContainerRef) => void): Promise<ContainerRef> {
    const ref = { id: `c${this.next++}`, jobId: spec.jobId };
    this.calls.push(`start ${spec.jobId}${spec.agent ? ` volume=${spec.agent.volume}` : ''}`);
    let exit!: (code: number) => void;
    const exited = new Promise<{ exitCode: number }>((resolve) => (exit = (exitCode) => resolve({ exitCode })));
    const c: FakeContainer = { ref, spec, running: true, removed: false, exit: (code) => ((c.running = false), exit(code)), exited };
    this.containers.push(c);
    // One waiter per container, first come first served.
    const i = this.waiting.findIndex((w) => w.match(spec.jobId));
    created?.(ref);
    if (i >= 0) this.waiting.splice(i, 1)[0]!.resolve(c);
    await this.startGate;
    return ref;
  }
  wait(ref: ContainerRef) {
    return this.find(ref.id)?.exited ?? Promise.resolve({ exitCode: -1 });
  }
  async logs() {
    return 'the runtime said goodbye';
  }
  /** While set, snapshots wait for it: a test can act while one is being taken. */
  snapshotGate?: Promise<void>;
  async snapshot(ref: ContainerRef) {
    this.calls.push(`snapshot ${ref.id}`);
    await this.snapshotGate;
    return { image: `snap/${ref.jobId}`, bytes: 1 };
  }
  async snapshotAgent(_ref: ContainerRef, _p: Profile, image: string) {
    return { image, bytes: 1 };
  }
  async removeImage(image: string) {
    this.calls.push(`remove image ${image}`);
  }
  async exportImage(): Promise<NodeJS.ReadableStream> {
    throw new Error('not in the fake');
  }
  async pruneSnapshots() {
    return [];
  }
  async removeVolume(name: string) {
    this.removedVolumes.push(name);
  }
  async exec(_ref: ContainerRef, _o: ExecOptions): Promise<ExecSession> {
    throw new Error('not in the fake');
  }
  /** While set, removals wait for it: a test can look at a job whose container is still going. */
  destroyGate?: Promise<void>;
  async destroy(ref: ContainerRef) {
    this.calls.push(`destroy ${ref.id}`);
    await this.destroyGate;
    const c = this.find(ref.id);
    if (c) {
      c.removed = true;
      if (c.running) c.exit(137);
    }
  }
  close(): void {}

  async node(): Promise<string | undefined> {
    return undefined;
  }

  async nodes(): Promise<[]> {
    return [];
  }

  async list(): Promise<ContainerInfo[]> {
    return this.containers
      .filter((c) => !c.removed)
      .map((c) => ({
        id: c.ref.id,
        jobId: c.ref.jobId,
        running: c.running,
        ...(c.spec.agent ? { agentId: c.spec.agent.id } : {}),
        ...(c.spec.pool ? { pool: c.spec.pool } : {}),
      }));
  }
  async jobNetwork() {
    return { name: 'fake', isolated: true, rules: [] };
  }

  /** The token the container's runtime would dial in with. */
  tokenOf(jobId: string): string {
    const c = [...this.containers].reverse().find((x) => x.ref.jobId === jobId);
    if (!c) throw new Error(`no container for ${jobId}; calls: ${this.calls.join(', ')}`);
    return c.spec.env.DOCKER_AGENT_AGENT_TOKEN!;
  }

  private find(id: string) {
    return this.containers.find((c) => c.ref.id === id);
  }
}

/** The runtime's end of the runtime channel, as a test plays it: what the hub sent, and whether it closed. */
export class FakeLink implements RuntimeLink {
  readonly sent: HubMessage[] = [];
  closed?: { code: number; reason: string };
  send(msg: HubMessage) {
    this.sent.push(msg);
  }
  close(code: number, reason: string) {
    this.closed = { code, reason };
  }
}
