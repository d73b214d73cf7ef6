// The Docker backend: one fresh, hardened container per job on one engine.
import type Docker from 'dockerode';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Profile } from '../../../schemas/types.gen.js';
import { HubError } from '../../platform/errors.js';
import {
  LABELS,
  SNAPSHOT_REPO,
  type Backend,
  type BuildProgress,
  type ContainerInfo,
  type ContainerRef,
  type ContainerSpec,
  type EngineInfo,
  type EngineStorage,
  type ExecOptions,
  type ExecSession,
  type JobNetworkRequest,
  type NetworkStatus,
  type NodeHealth,
} from '../types.js';
import { execInContainer } from './exec.js';
import { commitJob, snapshotWithWorkspace } from './snapshot.js';
import { exportAddedLayers } from './layer-export.js';
import { connectDocker, type Connection } from './connect.js';
import { ensureJobNetwork, removeJobNetwork } from './network.js';
import { ImageBuilder } from './images.js';
import { userIds } from '../../profiles/user.js';
import { containerOptions } from './container-options.js';
import type { FileRef } from './dockerfile.js';
import { supportsDiskQuota } from './disk-quota.js';

export interface DockerBackendOptions {
  baseImage: string;
  runtimeBundle: string;
  /** The official Node build the runtime runs on in every image (build/runtime-node, made by set-up). */
  runtimeNode: string;
  /** Host folder holding the hub's agent socket, bind-mounted read-only into each container. */
  agentSocketDir?: string;
  /** Host folder of extra CA certificates (*.crt) to trust in images. */
  extraCaDir?: string;
  /** json-file rotation of what a container prints itself (the runtime's own lines), so no container fills the engine's disk. */
  containerLogMaxSize?: string;
  containerLogMaxFiles?: number;
  /** Largest change a snapshot may commit (the container's writable layer). */
  maxSnapshotBytes?: number;
  /** Told of each profile image built, with the seconds it took (for the metrics). */
  onImageBuilt?: (profile: string, seconds: number) => void;
}

function readCerts(dir: string | undefined): Map<string, Buffer> {
  const certs = new Map<string, Buffer>();
  if (!dir || !existsSync(dir)) return certs;
  for (const f of readdirSync(dir)
    .filter((f) => f.endsWith('.crt'))
    .sort())
    certs.set(f, readFileSync(join(dir, f)));
  return certs;
}

/** The runtime's Node as a context file, hashed once (100 MB: not on every job's start), again only when it changes. */
function runtimeNodeRef(file: string): () => FileRef {
  let known: { mtimeMs: number; size: number; ref: FileRef } | undefined;
  return () => {
    let st;
    try {
      st = statSync(file);
    } catch {
      throw new HubError(
        'IMAGE_BUILD_FAILED',
        `the runtime's Node is not at ${file}: run \`npm start\` (or node scripts/setup.mjs), which puts it there, or set DOCKER_AGENT_RUNTIME_NODE`,
      );
    }
    if (!known || known.mtimeMs !== st.mtimeMs || known.size !== st.size) {
      known = { mtimeMs: st.mtimeMs, size: st.size, ref: { file, digest: createHash('sha256').update(readFileSync(file)).digest('hex') } };
    }
    return known.ref;
  };
}

function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 404;
}

export class DockerBackend implements Backend {
  readonly name = 'docker';
  private network?: NetworkStatus;
  /** Set once the engine took a container with a size limit (useDiskQuota). */
  private diskQuotaBytes?: number;

  private constructor(
    private readonly conn: Connection,
    private readonly images: ImageBuilder,
    private readonly opts: DockerBackendOptions,
  ) {}

  /** Connects to the engine at `host` (by default DOCKER_HOST's). */
  static async connect(opts: DockerBackendOptions, host?: string): Promise<DockerBackend> {
    const conn = await connectDocker(host);
    const images = new ImageBuilder(
      conn.docker,
      opts.baseImage,
      () => readFileSync(opts.runtimeBundle),
      runtimeNodeRef(opts.runtimeNode),
      () => readCerts(opts.extraCaDir),
      opts.onImageBuilt,
    );
    return new DockerBackend(conn, images, opts);
  }

  /** The engine itself, for a backend that builds here and runs elsewhere (the swarm backend). */
  get docker(): Docker {
    return this.conn.docker;
  }

  async info(): Promise<EngineInfo> {
    try {
      const v = await this.docker.version();
      return { backend: this.name, version: v.Version, apiVersion: this.conn.apiVersion };
    } catch (err) {
      throw new HubError('ENGINE_UNAVAILABLE', `Docker engine does not answer: ${(err as Error).message}`);
    }
  }

  async storage(): Promise<EngineStorage> {
    try {
      const i = (await this.docker.info()) as { DockerRootDir?: string; Driver?: string };
      return { dataRoot: i.DockerRootDir ?? '', driver: i.Driver ?? '' };
    } catch (err) {
      throw new HubError('ENGINE_UNAVAILABLE', `Docker engine does not answer: ${(err as Error).message}`);
    }
  }

  async useDiskQuota(bytes: number): Promise<boolean> {
    this.diskQuotaBytes = (await supportsDiskQuota(this.docker, this.opts.baseImage, bytes)) ? bytes : undefined;
    return this.diskQuotaBytes !== undefined;
  }

  async writableBytes(ref: ContainerRef): Promise<number | undefined> {
    try {
      // The engine takes ?size=1 (it walks the layer's files); the typings do not know it.
      const { SizeRw = 0 } = (await this.docker.getContainer(ref.id).inspect({ size: true } as Docker.ContainerInspectOptions)) as { SizeRw?: number };
      return SizeRw;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  prepare(profile: Profile, onProgress?: (p: BuildProgress) => void): Promise<string> {
    return this.images.ensure(profile, onProgress);
  }

  async imageFor(profile: Profile): Promise<string> {
    return (await this.images.plan(profile)).tag;
  }

  async pruneImages({ keep, olderThan, maxBytes, dryRun }: { keep: Set<string>; olderThan: Date; maxBytes: number; dryRun: boolean }): Promise<string[]> {
    return this.removeOldest(
      await this.docker.listImages(),
      // Snapshots go by their own limits (pruneSnapshots).
      (t) => t.startsWith('docker-agent/') && !t.startsWith(`${SNAPSHOT_REPO}:`) && t !== this.opts.baseImage && !keep.has(t),
      { olderThan, maxBytes, dryRun },
    );
  }

  async jobNetwork(opts: JobNetworkRequest): Promise<NetworkStatus> {
    try {
      this.network = await ensureJobNetwork(this.docker, { ...opts, isRoot: process.getuid?.() === 0 });
    } catch (err) {
      this.network = { name: '', isolated: false, rules: [], problem: `the job network could not be set up: ${(err as Error).message}` };
    }
    return this.network;
  }

  /** Removes this hub's job network and rules, for a hub that goes for good (the bench's). */
  async removeJobNetwork(hubId: string): Promise<void> {
    await removeJobNetwork(this.docker, hubId, process.getuid?.() === 0);
  }

  async start(spec: ContainerSpec, created?: (ref: ContainerRef) => void): Promise<ContainerRef> {
    const options = containerOptions(spec, {
      network: this.network?.name || undefined,
      networkProblem: this.network?.problem,
      ipv6: existsSync('/proc/sys/net/ipv6'),
      agentSocketDir: this.opts.agentSocketDir,
      logMaxSize: this.opts.containerLogMaxSize,
      logMaxFiles: this.opts.containerLogMaxFiles,
      diskQuotaBytes: this.diskQuotaBytes,
      privileged: privilegedHostConfig,
    });
    // A named agent's /workspace outlives its container; labelled so that its hub can find it.
    if (spec.agent) await this.docker.createVolume({ Name: spec.agent.volume, Labels: { [LABELS.hub]: spec.hubId, [LABELS.agent]: spec.agent.id } });
    const container = await this.docker.createContainer(options);
    created?.({ id: container.id, jobId: spec.jobId });
    try {
      await container.start();
    } catch (err) {
      await container.remove({ force: true }).catch(() => {});
      throw err;
    }
    return { id: container.id, jobId: spec.jobId };
  }

  async wait(ref: ContainerRef): Promise<{ exitCode: number }> {
    try {
      const r = (await this.docker.getContainer(ref.id).wait()) as { StatusCode: number };
      return { exitCode: r.StatusCode };
    } catch (err) {
      if (isNotFound(err)) return { exitCode: -1 };
      throw err;
    }
  }

  /** One host: nothing to tell apart. */
  async node(): Promise<string | undefined> {
    return undefined;
  }

  async nodes(): Promise<NodeHealth[]> {
    return [];
  }

  async logs(ref: ContainerRef, tail: number): Promise<string> {
    try {
      const buf = (await this.docker.getContainer(ref.id).logs({ stdout: true, stderr: true, tail })) as unknown as Buffer;
      return demuxLogs(buf);
    } catch {
      return '';
    }
  }

  snapshot(ref: ContainerRef): Promise<{ image: string; bytes: number }> {
    return commitJob(this.docker, ref, this.opts.maxSnapshotBytes);
  }

  async snapshotAgent(ref: ContainerRef, profile: Profile, image: string): Promise<{ image: string; bytes: number }> {
    await snapshotWithWorkspace(this.docker, ref.id, {
      tag: image,
      owner: userIds(profile),
      ...(this.opts.maxSnapshotBytes !== undefined ? { maxBytes: this.opts.maxSnapshotBytes } : {}),
      comment: `docker-agent ${ref.jobId}`,
    });
    return { image, bytes: (await this.docker.getImage(image).inspect()).Size };
  }

  async removeImage(image: string): Promise<void> {
    try {
      await this.docker.getImage(image).remove();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 409) {
        throw new HubError('IN_USE', `${image} is in use by a container (an agent or a job started from it); destroy that first`);
      }
      if (!isNotFound(err)) throw err;
    }
  }

  /** Only the layers the image adds to its base (see layer-export.ts), or with `full` the whole `docker save`. */
  async exportImage(image: string, opts: { full?: boolean } = {}): Promise<NodeJS.ReadableStream> {
    try {
      await this.docker.getImage(image).inspect();
    } catch (err) {
      if (isNotFound(err)) throw new HubError('NOT_FOUND', `image ${image} is gone from the engine (pruned?)`);
      throw err;
    }
    return opts.full ? this.docker.getImage(image).get() : exportAddedLayers(this.docker, image);
  }

  async pruneSnapshots({ hubId, olderThan, maxBytes, dryRun }: { hubId: string; olderThan: Date; maxBytes: number; dryRun: boolean }): Promise<string[]> {
    // A snapshot keeps its container's labels, so each hub prunes only its own.
    const snapshots = await this.docker.listImages({ filters: { reference: [SNAPSHOT_REPO], label: [`${LABELS.hub}=${hubId}`] } });
    return this.removeOldest(snapshots, (t) => t.startsWith(`${SNAPSHOT_REPO}:`), { olderThan, maxBytes, dryRun });
  }

  /**
   * Of the tags `wanted` picks, removes those created before `olderThan` and, newest
   * first, those past `maxBytes` in all (unless `dryRun`); returns what went.
   */
  private async removeOldest(
    images: Docker.ImageInfo[],
    wanted: (tag: string) => boolean,
    { olderThan, maxBytes, dryRun }: { olderThan: Date; maxBytes: number; dryRun: boolean },
  ): Promise<string[]> {
    const candidates = images
      .flatMap((i) => (i.RepoTags ?? []).filter(wanted).map((tag) => ({ tag, created: i.Created * 1000, size: i.Size })))
      .sort((a, b) => b.created - a.created);
    const removed: string[] = [];
    let total = 0;
    for (const image of candidates) {
      total += image.size;
      if (image.created >= olderThan.getTime() && total <= maxBytes) continue;
      if (!dryRun) {
        try {
          await this.docker.getImage(image.tag).remove();
        } catch (err) {
          // 409: a container (a kept one, or a job's) still uses it; it goes another day.
          if ((err as { statusCode?: number }).statusCode === 409) continue;
          if (!isNotFound(err)) throw err;
        }
      }
      removed.push(image.tag);
    }
    return removed;
  }

  async removeVolume(name: string): Promise<void> {
    try {
      await this.docker.getVolume(name).remove();
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  exec(ref: ContainerRef, opts: ExecOptions): Promise<ExecSession> {
    return execInContainer(this.docker, ref.id, opts);
  }

  async destroy(ref: ContainerRef): Promise<void> {
    try {
      await this.docker.getContainer(ref.id).remove({ force: true, v: true });
    } catch (err) {
      // 409: removal already in progress; 404: already gone. Both mean done.
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 409) throw err;
    }
  }

  /** Nothing runs in the background: each wait is the engine's own. */
  close(): void {}

  async list(hubId: string): Promise<ContainerInfo[]> {
    const found = await this.docker.listContainers({ all: true, filters: { label: [`${LABELS.hub}=${hubId}`] } });
    return found.map((c) => ({
      id: c.Id,
      jobId: c.Labels[LABELS.job] ?? '',
      running: c.State === 'running',
      ...(c.Labels[LABELS.agent] ? { agentId: c.Labels[LABELS.agent] } : {}),
      ...(c.Labels[LABELS.pool] ? { pool: c.Labels[LABELS.pool] } : {}),
    }));
  }
}

// Capability names by bit, as far as Docker 20.10 knows them (later ones it rejects by name).
const CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
];

/** Capabilities missing from a `CapBnd:` mask of /proc/PID/status. */
export function missingCapabilities(capBnd: bigint): string[] {
  return CAPABILITIES.filter((_, bit) => (capBnd & (1n << BigInt(bit))) === 0n);
}

function hostBoundingSet(): bigint {
  try {
    const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return hex ? BigInt(`0x${hex}`) : ~0n;
  } catch {
    return ~0n;
  }
}

/**
 * What a privileged profile gets: every capability the host can grant, without
 * seccomp and AppArmor confinement, but not the host's devices. Docker's own
 * --privileged asks for every capability there is and fails outright on hosts
 * (VMs, sandboxes) whose bounding set lacks one.
 */
function privilegedHostConfig() {
  return {
    CapAdd: ['ALL'],
    CapDrop: missingCapabilities(hostBoundingSet()),
    SecurityOpt: ['no-new-privileges', 'seccomp=unconfined', 'apparmor=unconfined'],
    // /proc and /sys as a nested engine needs them (the CLI's systempaths=unconfined).
    MaskedPaths: [],
    ReadonlyPaths: [],
  };
}

/** Container (and service) logs without a TTY come in 8-byte-header frames; keep only the text. */
export function demuxLogs(buf: Buffer): string {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}
