// A job's or an agent's container as the engine is asked for it: a pure function of
// the spec and the hub's settings, so the hardening (a non-root user, every
// capability dropped, no-new-privileges, memory/cpu/pids limits, no network unless
// the profile asks, the runtime socket read-only) is checked by unit tests, not by
// reading engine calls.
import type Docker from 'dockerode';
import { HubError } from '../../platform/errors.js';
import { userIds } from '../../profiles/user.js';
import { AGENT_SOCKET_DIR_IN_CONTAINER, LABELS, type ContainerSpec } from '../types.js';

const DEFAULTS = { memory: '1g', cpus: 1, pids: 512 };
/** Open files per process, and processes per uid (host-wide: see the Ulimits below). */
export const LIMITS = { nofile: 8192, nproc: 16384 };

export function parseMemory(value: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)([kmg]?)$/i.exec(value);
  if (!m) throw new HubError('PROFILE_INVALID', `memory ${JSON.stringify(value)}: expected bytes or a number with k, m or g`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * unit);
}

export interface ContainerSettings {
  /** The hub's job network, for profiles with `network: bridge`; undefined when there is none. */
  network?: string;
  /** Why there is no job network (what the engine said when it was made). */
  networkProblem?: string;
  /** The host folder holding the hub's runtime socket, bind-mounted read-only. */
  agentSocketDir?: string;
  /** Whether the engine's kernel has IPv6 (then non-privileged containers get it turned off). */
  ipv6?: boolean;
  logMaxSize?: string;
  logMaxFiles?: number;
  /** The engine's cap on a container's writable layer, where its storage driver has one (StorageOpt size). */
  diskQuotaBytes?: number;
  /** What a privileged profile gets (it depends on the host's capability set, read by the caller). */
  privileged: () => Docker.HostConfig;
}

export function containerOptions(spec: ContainerSpec, s: ContainerSettings): Docker.ContainerCreateOptions {
  const { profile } = spec;
  // Never Docker's default bridge: there jobs reach each other and the host.
  if (profile.network === 'bridge' && !s.network) {
    throw new HubError(
      'NETWORK_UNAVAILABLE',
      `profile ${profile.name} needs the hub's job network (network: bridge), which this hub has not got: ${s.networkProblem ?? 'it was not set up'}`,
    );
  }
  const resources = { ...DEFAULTS, ...profile.resources };
  const user = userIds(profile);
  return {
    name: `docker-agent-${spec.jobId.replace(':', '-')}`,
    Image: spec.image,
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    Labels: {
      [LABELS.job]: spec.jobId,
      [LABELS.hub]: spec.hubId,
      [LABELS.profile]: profile.name,
      // Always set, empty when not: a container inherits its image's labels, and a snapshot's image carries those of the container it was taken from.
      [LABELS.agent]: spec.agent?.id ?? '',
      [LABELS.pool]: spec.pool ?? '',
    },
    WorkingDir: '/workspace',
    // The runtime refuses nothing here: the image's user is non-root, and a profile may only pick another uid.
    User: `${user.uid}:${user.gid}`,
    HostConfig: {
      // A tiny init as PID 1 reaps the orphans of steps and lets the runtime kill(-1) all of them.
      Init: true,
      Memory: parseMemory(resources.memory),
      MemorySwap: parseMemory(resources.memory),
      NanoCpus: Math.round(resources.cpus * 1e9),
      PidsLimit: resources.pids,
      // The engine's default is the daemon's (often 1048576 files, no process cap): a job's own bounds instead.
      // nproc counts a uid's processes across every container of that uid, so it is a host-wide backstop; pids is per container.
      Ulimits: [
        { Name: 'nofile', Soft: LIMITS.nofile, Hard: LIMITS.nofile },
        { Name: 'nproc', Soft: LIMITS.nproc, Hard: LIMITS.nproc },
      ],
      ...(profile.privileged ? s.privileged() : { CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] }),
      NetworkMode: profile.network === 'bridge' ? s.network! : 'none',
      // The job network has no IPv6; engines before 26.0.2 still gave containers link-local addresses.
      // Only where the container has an interface besides loopback: with `network: none` there is nothing to fence, and the sysctl costs each start.
      ...(!profile.privileged && profile.network === 'bridge' && s.ipv6 ? { Sysctls: { 'net.ipv6.conf.all.disable_ipv6': '1' } } : {}),
      ...(s.diskQuotaBytes ? { StorageOpt: { size: String(s.diskQuotaBytes) } } : {}),
      LogConfig: {
        Type: 'json-file',
        Config: { 'max-size': s.logMaxSize ?? '10m', 'max-file': String(s.logMaxFiles ?? 3) },
      },
      Binds: [
        ...(s.agentSocketDir ? [`${s.agentSocketDir}:${AGENT_SOCKET_DIR_IN_CONTAINER}:ro`] : []),
        ...(spec.agent ? [`${spec.agent.volume}:/workspace`] : []),
      ],
    },
  };
}
