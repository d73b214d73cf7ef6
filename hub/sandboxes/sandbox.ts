// One sandbox: a container with the runtime in it, connected to the hub. It owns
// the whole of that life for every holder (a one-shot job, the warm pool, a named
// agent): the one-time token and the session secret, the wait for the runtime to
// dial in, attach and re-attach after a dropped connection, the message counter,
// noticing the container's end (with its last words), and its removal. What the
// sandbox is *for* belongs to its holder, which it tells of each of these.
import type { AgentTask, HubMessage } from '../../schemas/types.gen.js';
import type { Backend, ContainerRef, ContainerSpec } from '../backend/types.js';
import type { HubConfig } from '../platform/config.js';
import { hashToken, newSecret } from '../store/tokens.js';
import { canMove, type SandboxState } from './lifecycle.js';
import { runtimeEnv } from './runtime-env.js';
import type { DiskWatch, Watched } from './disk-watch.js';
import type { RuntimeHealth, RuntimeLink, RuntimeReport, RuntimeSession } from './runtime-link.js';

/** The secrets a restarted hub needs to know the sandbox's runtime again (hashes only). */
export interface SandboxSecrets {
  tokenHash: string | null;
  sessionHash: string | null;
}

/** What holds a sandbox: told of what happens to it. May change (the pool hands a sandbox to a job). */
export interface SandboxHolder {
  /** For the hub's log and the runtime channel: `job …`, `agent …`. */
  readonly label: string;
  /** The runtime connected; `first` on its first connection. What it returns travels in the welcome. */
  connected(first: boolean): AgentTask | undefined;
  /** A report not seen before (the sandbox drops repeats after a reconnect). */
  report(msg: RuntimeReport): void;
  health(h: RuntimeHealth): void;
  /** Its secrets changed: keep them where a restarted hub reads them (a job's or an agent's row). */
  remember(secrets: SandboxSecrets): void;
  /** It ended without being asked to: the reason, the container's last words when it had any, and NODE_LOST when its host went. */
  lost(reason: string, lastWords: string, code?: 'NODE_LOST'): void;
  /** Its container wrote past the disk limit (disk-watch.ts): the holder ends what it runs with DISK_LIMIT. */
  diskFull(message: string): void;
}

/** Where sandboxes are found by their runtimes' secrets (registry.ts). */
export interface SandboxIndex {
  add(hash: string, sandbox: Sandbox): void;
  remove(hash: string): void;
}

export interface SandboxDeps {
  config: Pick<HubConfig, 'agentUrl' | 'healthIntervalMs' | 'agentConnectTimeoutMs'>;
  backend: Backend;
  index: SandboxIndex;
  log: (msg: string) => void;
  /** Where no engine quota caps a container's writes, the hub's watch of them. */
  disk?: DiskWatch;
}

export class Sandbox implements Watched {
  state: SandboxState = 'starting';
  ref?: ContainerRef;
  /** The image its container runs. */
  image = '';
  /** The runtime's last numbered message seen: what comes at or below it is a repeat. */
  seq: number;
  private link?: RuntimeLink;
  private tokenHash?: string;
  private sessionHash?: string;
  private connectedOnce = false;
  private connectTimer?: NodeJS.Timeout;
  /** Set by end(): the container's own end after that is expected, not a loss. */
  private ending = false;
  private removed = false;
  /** The archive its current task brings, fetched by the runtime (runtime/workspace.ts). */
  private workspace?: string;

  constructor(
    private readonly deps: SandboxDeps,
    private holder: SandboxHolder,
    opts: { seq?: number } = {},
  ) {
    this.seq = opts.seq ?? 0;
  }

  get label(): string {
    return this.holder.label;
  }

  /** Whether its runtime is connected now. */
  get online(): boolean {
    return this.state === 'connected';
  }

  /** Gives the sandbox to a new holder (the pool's to a job's), which keeps its secrets from now on. */
  handTo(holder: SandboxHolder): void {
    this.holder = holder;
    holder.remember(this.secrets());
  }

  /** Creates its container from `spec` with a fresh one-time token; resolves once it runs. */
  async start(spec: Omit<ContainerSpec, 'env' | 'image'>, image: string): Promise<ContainerRef | undefined> {
    const token = newSecret('agt');
    this.image = image;
    this.tokenHash = hashToken(token);
    this.deps.index.add(this.tokenHash, this);
    this.holder.remember(this.secrets());
    // Known as soon as it exists: on a busy engine its runtime may dial in before the start is answered.
    const ref = await this.deps.backend.start({ ...spec, image, env: runtimeEnv(this.deps.config, token) }, (created) => (this.ref = created));
    this.ref = ref;
    // Ended while its container was being created: end() could not remove it then.
    if (this.state === 'ended') {
      await this.end('ended while it started');
      return undefined;
    }
    this.watch(ref);
    return ref;
  }

  /** Takes on a container that runs already (found after a restart), known by the secrets its holder kept. */
  adopt(ref: ContainerRef, image: string, secrets: Partial<SandboxSecrets>): void {
    this.ref = ref;
    this.image = image;
    this.connectedOnce = true;
    if (secrets.tokenHash) {
      this.tokenHash = secrets.tokenHash;
      this.deps.index.add(secrets.tokenHash, this);
      this.connectedOnce = false;
    }
    if (secrets.sessionHash) {
      this.sessionHash = secrets.sessionHash;
      this.deps.index.add(secrets.sessionHash, this);
    }
    this.watch(ref);
  }

  /**
   * Its runtime dialled in with `hash`'s secret: the one-time token (spent now) or
   * the session secret of an earlier connection. A newer connection replaces the last.
   */
  attach(hash: string, link: RuntimeLink): RuntimeSession {
    if (hash === this.tokenHash) {
      this.deps.index.remove(hash);
      this.tokenHash = undefined;
    }
    if (this.sessionHash) this.deps.index.remove(this.sessionHash);
    const session = newSecret('ses');
    this.sessionHash = hashToken(session);
    this.deps.index.add(this.sessionHash, this);
    this.link?.close(4000, 'replaced by a newer connection');
    this.link = link;
    this.move('connected');
    clearTimeout(this.connectTimer);
    this.holder.remember(this.secrets());
    const first = !this.connectedOnce;
    this.connectedOnce = true;
    const task = this.holder.connected(first);
    link.send({ t: 'welcome', session, acked: this.seq, ...(task ? { task } : {}) });
    return {
      label: this.holder.label,
      report: (msg) => {
        if (msg.n <= this.seq || this.state === 'ended') return;
        this.seq = msg.n;
        this.holder.report(msg);
      },
      health: (h) => {
        if (this.state !== 'ended') this.holder.health(h);
      },
      detach: () => {
        if (this.link !== link) return;
        this.link = undefined;
        this.move('disconnected');
      },
    };
  }

  /** The files (a stored .tar.gz) the task about to be sent brings; undefined for none. */
  offerWorkspace(archive: string | undefined): void {
    this.workspace = archive;
  }

  /** The offered archive, for its runtime only: one that proved itself with its current session secret. */
  workspaceFor(hash: string): string | undefined {
    return hash === this.sessionHash && this.state === 'connected' ? this.workspace : undefined;
  }

  /** Sends to its runtime; false when it is not connected (it resends what it missed when it dials again). */
  send(msg: HubMessage): boolean {
    if (!this.link) return false;
    this.link.send(msg);
    return true;
  }

  /**
   * Ends it on purpose (or, after a loss, clears up): the runtime's connection is
   * closed with `reason`, its secrets are forgotten, and its container removed unless
   * `keep`. Repeats are no-ops.
   */
  async end(reason: string, opts: { keep?: boolean } = {}): Promise<void> {
    this.ending = true;
    if (this.state !== 'ended') {
      this.finish();
      this.link?.close(1000, reason.slice(0, 120));
      this.link = undefined;
    }
    if (!this.ref || opts.keep || this.removed) return;
    this.removed = true;
    await this.deps.backend.destroy(this.ref);
  }

  /** The hub stops: the sandbox is let go, its container left running for a restarted hub to adopt. */
  stop(): void {
    this.ending = true;
    clearTimeout(this.connectTimer);
    this.deps.disk?.delete(this);
  }

  /** The disk watch found its container past the limit: its holder decides what ends. */
  overDisk(message: string): void {
    if (this.ending || this.state === 'ended') return;
    this.holder.diskFull(message);
  }

  /** The container's last lines (the runtime's own messages), '' when it cannot say. */
  async lastWords(): Promise<string> {
    if (!this.ref) return '';
    return (await this.deps.backend.logs(this.ref, 20).catch(() => '')).trim();
  }

  private secrets(): SandboxSecrets {
    return { tokenHash: this.tokenHash ?? null, sessionHash: this.sessionHash ?? null };
  }

  /** Its runtime must dial in within the connect timeout, and its container's end is noticed. */
  private watch(ref: ContainerRef): void {
    if (this.state === 'starting') this.move('dialling');
    this.deps.disk?.add(this);
    const limit = this.deps.config.agentConnectTimeoutMs;
    if (this.state === 'dialling') {
      this.connectTimer = setTimeout(() => this.lose(`the runtime did not connect within ${limit / 1000} s`), limit);
    }
    this.deps.backend.wait(ref).then(
      ({ exitCode, nodeLost, why }) =>
        nodeLost
          ? this.lose(`the node it ran on was lost: ${nodeLost}`, 'NODE_LOST')
          : this.lose(`the container stopped (exit code ${exitCode}${why ? `; ${why}` : ''})`),
      (err: Error) => this.lose(`the engine lost track of the container: ${err.message}`),
    );
  }

  private lose(reason: string, code?: 'NODE_LOST'): void {
    if (this.ending || this.state === 'ended') return;
    this.finish();
    this.link?.close(1011, 'sandbox lost');
    this.link = undefined;
    const holder = this.holder;
    // A lost node has no last words to give (asking would wait for it to come back).
    void (code === 'NODE_LOST' ? Promise.resolve('') : this.lastWords())
      .then((words) => holder.lost(reason, words, code))
      .catch((err: Error) => this.deps.log(`${holder.label}: ${err?.stack ?? err}`));
  }

  private finish(): void {
    this.move('ended');
    this.deps.disk?.delete(this);
    clearTimeout(this.connectTimer);
    if (this.tokenHash) this.deps.index.remove(this.tokenHash);
    if (this.sessionHash) this.deps.index.remove(this.sessionHash);
    this.tokenHash = undefined;
    this.sessionHash = undefined;
  }

  private move(to: SandboxState): void {
    if (canMove(this.state, to)) this.state = to;
  }
}
