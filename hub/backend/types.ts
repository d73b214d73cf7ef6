// The one interface the scheduler drives (after Woodpecker's pipeline backend).
// Nothing outside a backend's folder knows which engine runs the containers.
import type { Profile } from '../../schemas/types.gen.js';

export interface BuildProgress {
  message: string;
  current?: number;
  total?: number;
}

export interface ContainerSpec {
  /** The job it runs, or for a named agent's container `agent:<agent id>`. */
  jobId: string;
  hubId: string;
  image: string;
  profile: Profile;
  /** Environment for the runtime (how to reach the hub, its one-time token). */
  env: Record<string, string>;
  /**
   * A named agent's: its id (labelled, so a restarted hub knows the container), the volume kept at /workspace,
   * and the host that holds it, once known (node()): its container goes there only.
   */
  agent?: { id: string; volume: string; node?: string };
  /** A warm pool's container, waiting for its one job: the profile it is for (labelled). */
  pool?: string;
}

export interface ContainerRef {
  id: string;
  jobId: string;
}

export interface ContainerInfo extends ContainerRef {
  running: boolean;
  /** Set on a named agent's container. */
  agentId?: string;
  /** Set on a warm pool's container. */
  pool?: string;
}

export interface ExecOptions {
  command: string[];
  cols: number;
  rows: number;
  env?: Record<string, string>;
  workdir?: string;
}

/** A process on a terminal in a container: its PTY as one byte stream both ways. */
export interface ExecSession {
  stream: import('node:stream').Duplex;
  resize(cols: number, rows: number): Promise<void>;
  /** The process's exit code once it ends (-1 when the engine cannot say). */
  exited: Promise<number>;
}

export interface EngineInfo {
  backend: string;
  version: string;
  apiVersion: string;
  /** A cluster's hosts, as its managers see them (the swarm backend). */
  nodes?: NodeHealth[];
}

export interface NodeHealth {
  hostname: string;
  /** ready, down, unknown, disconnected. */
  state: string;
  /** active, pause, drain. */
  availability: string;
  role: string;
}

/** Where the engine keeps images and containers' layers (for the hub's free-space floor). */
export interface EngineStorage {
  /** The engine's data root (DockerRootDir), a path on the engine's host. */
  dataRoot: string;
  /** The storage driver (overlay2, btrfs, zfs, …). */
  driver: string;
}

/** The network jobs of `bridge` profiles join, and whether it is fenced off from the host and each other. */
export interface NetworkStatus {
  name: string;
  /** True when the host's packet filter keeps its containers from each other, the host and 169.254.0.0/16. */
  isolated: boolean;
  /** The rules that do it, as shell commands (what an operator adds when the hub cannot). */
  rules: string[];
  /** Why it is not isolated (or, with an empty name, why there is no network). */
  problem?: string;
  /** Its address range. */
  subnet?: string;
}

export interface JobNetworkRequest {
  hubId: string;
  /** Host TCP ports containers may reach (the hub's agent port when they dial it over TCP). */
  allowTcpPorts: number[];
  /** Private ranges bridge jobs may reach (DOCKER_AGENT_BRIDGE_ALLOW). */
  allow: string[];
  /** The network's range (DOCKER_AGENT_JOB_SUBNET); unset, the engine's pools pick one. */
  subnet?: string;
}

/**
 * The engine, as every holder of a sandbox drives it. The order of calls for one
 * container:
 *
 *   info()                      once at start (and by /health's refresher), any time after
 *   storage(), useDiskQuota()   once at start, before the first container; may repeat
 *   jobNetwork()                once before the first `bridge` container; may repeat
 *   prepare(profile)            before start(); may repeat (cached by content)
 *   start(spec, created) → ref  once per container; created(ref) before it runs, as its runtime
 *                               may dial the hub before the engine has answered the start
 *   wait(ref), logs(ref)        any time after start(); wait() resolves once it stops
 *   writableBytes(ref)          any time after start() (the hub's disk watch, where no quota is in force)
 *   exec(ref), snapshot(ref)    while it exists (exec while it runs)
 *   destroy(ref)                last; must not fail if already invoked, or the container is gone
 *   list(hubId)                 any time: what a restarted hub finds of its own
 *   close()                     once, when the hub closes
 *
 * Removals (destroy, removeImage, removeVolume) are idempotent: a thing already gone
 * is no error. What a container *is* comes from the hub's records, not from list()'s
 * labels alone, which a snapshot's image may have passed on.
 *
 * Nothing is written into a container from outside: a job's files reach it through
 * its runtime's own connection once the runtime has dialled in (runtime/workspace.ts),
 * so an engine that cannot write into a container (a Swarm service) needs no call for it.
 */
export interface Backend {
  readonly name: string;
  /** Reachability and version of the engine; throws ENGINE_UNAVAILABLE. */
  info(): Promise<EngineInfo>;
  /** Where the engine keeps its data; throws ENGINE_UNAVAILABLE. */
  storage(): Promise<EngineStorage>;
  /**
   * Asks the engine to cap what each container started from now on may write (its
   * writable layer) at `bytes`; false when its storage driver cannot (overlay2 on
   * ext4, or on xfs without pquota), and then nothing changes. May repeat.
   */
  useDiskQuota(bytes: number): Promise<boolean>;
  /** Bytes the container has written to its own file system (volumes not counted); undefined when it is gone. */
  writableBytes(ref: ContainerRef): Promise<number | undefined>;
  /** The image a profile runs in, built and cached as needed. */
  prepare(profile: Profile, onProgress?: (p: BuildProgress) => void): Promise<string>;
  /** The image a profile would run in, without building it. */
  imageFor(profile: Profile): Promise<string>;
  /** Profile images (not the base) other than `keep`, created before `olderThan` or the oldest beyond `maxBytes`; removed unless `dryRun`. */
  pruneImages(opts: { keep: Set<string>; olderThan: Date; maxBytes: number; dryRun: boolean }): Promise<string[]>;
  /**
   * Creates (or finds) this hub's job network and fences it off as far as the hub may; may repeat. `bridge` jobs need it first.
   * Undefined from a backend that makes none (and refuses `bridge` profiles).
   */
  jobNetwork(opts: JobNetworkRequest): Promise<NetworkStatus | undefined>;
  /**
   * Creates and starts one container with the hardened options (docker/container-options.ts); not repeated for a spec.
   * `created` is told its ref once it exists and before it runs, so a runtime that dials in before start() resolves is known by its container.
   */
  start(spec: ContainerSpec, created?: (ref: ContainerRef) => void): Promise<ContainerRef>;
  /**
   * Resolves when the container stops (exit code -1 when it is gone), or when the host it ran on is lost
   * (`nodeLost` says how: a cluster's node went down), with `why` when the engine ended it; rejects only when the engine cannot say.
   */
  wait(ref: ContainerRef): Promise<{ exitCode: number; nodeLost?: string; why?: string }>;
  /** The host it runs on, where the backend has several (a Swarm node's hostname); undefined on one host. */
  node(ref: ContainerRef): Promise<string | undefined>;
  /** The hosts, where the backend has several (a Swarm's nodes); none on one host. */
  nodes(): Promise<NodeHealth[]>;
  /** The last lines the container printed itself (the runtime's own messages). */
  logs(ref: ContainerRef, tail: number): Promise<string>;
  /** Commits the container (running or stopped) to a snapshot image of its job. */
  snapshot(ref: ContainerRef): Promise<{ image: string; bytes: number }>;
  /** Commits a named agent's container with its /workspace volume folded in, as `image` (a snapshot tag). */
  snapshotAgent(ref: ContainerRef, profile: Profile, image: string): Promise<{ image: string; bytes: number }>;
  /** Removes a snapshot image; no error when it is gone. */
  removeImage(image: string): Promise<void>;
  /** An image as a tar in `docker save` format, for `docker load`. */
  exportImage(image: string, opts?: { full?: boolean }): Promise<NodeJS.ReadableStream>;
  /** This hub's snapshots created before `olderThan`, and the oldest beyond `maxBytes` in all; removed unless `dryRun`. */
  pruneSnapshots(opts: { hubId: string; olderThan: Date; maxBytes: number; dryRun: boolean }): Promise<string[]>;
  /** Removes a named agent's volume (its /workspace); no error when it is gone. */
  removeVolume(name: string): Promise<void>;
  /** A process with a TTY in a running container (an interactive shell); NOT_RUNNING when it does not run. */
  exec(ref: ContainerRef, opts: ExecOptions): Promise<ExecSession>;
  /** Stops and removes the container; no error when it is gone, and may repeat. */
  destroy(ref: ContainerRef): Promise<void>;
  /** Every container this hub started that still exists. */
  list(hubId: string): Promise<ContainerInfo[]>;
  /** The hub closes: stops what the backend watches in the background (pending waits never resolve). */
  close(): void;
}

/** Where snapshots live: one tag per job. */
export const SNAPSHOT_REPO = 'docker-agent/snapshot';

export const LABELS = {
  job: 'docker-agent.job',
  hub: 'docker-agent.hub',
  profile: 'docker-agent.profile',
  agent: 'docker-agent.agent',
  pool: 'docker-agent.pool',
  network: 'docker-agent.network',
} as const;

/** Where a container finds the hub's agent socket (its folder is bind-mounted read-only). */
export const AGENT_SOCKET_DIR_IN_CONTAINER = '/run/docker-agent';
export const AGENT_SOCKET_NAME = 'hub.sock';
