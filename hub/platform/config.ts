// The hub's configuration: command-line flags over DOCKER_AGENT_* environment
// variables over defaults, checked in one place so a bad value is named with what
// was expected before anything starts.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { HubError } from './errors.js';
import { parseOidcEntry, type OidcEntry } from './oidc-entries.js';
import { repoPath } from './paths.js';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v));

/** Each setting: its flag, its environment variable and its schema. */
const SETTINGS = {
  host: { flag: 'host', env: 'DOCKER_AGENT_HOST', schema: z.string().min(1).default('127.0.0.1') },
  port: {
    flag: 'port',
    env: 'DOCKER_AGENT_PORT',
    schema: z.coerce.number({ message: 'expected a port number' }).int('expected an integer').min(0).max(65535).default(9091),
  },
  dataDir: {
    flag: 'data-dir',
    env: 'DOCKER_AGENT_DATA_DIR',
    schema: z
      .string()
      .min(1)
      .default(join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'docker-agent')),
  },
  token: {
    flag: undefined,
    env: 'DOCKER_AGENT_TOKEN',
    schema: z.string().min(16, 'expected at least 16 characters').regex(/^\S+$/, 'expected no spaces').optional(),
  },
  maxJobs: {
    flag: 'max-jobs',
    env: 'DOCKER_AGENT_MAX_JOBS',
    schema: z.coerce.number().int('expected an integer').min(1).max(1000).default(8),
  },
  baseImage: { flag: 'base-image', env: 'DOCKER_AGENT_BASE_IMAGE', schema: z.string().min(1).default('docker-agent/base:bookworm') },
  defaultProfile: { flag: 'default-profile', env: 'DOCKER_AGENT_DEFAULT_PROFILE', schema: z.string().min(1).default('default') },
  publicUrl: { flag: 'public-url', env: 'DOCKER_AGENT_PUBLIC_URL', schema: z.url({ message: 'expected an http(s) URL' }).optional() },
  agentUrl: {
    flag: 'agent-url',
    env: 'DOCKER_AGENT_AGENT_URL',
    schema: z
      .string()
      .regex(/^wss?:\/\//, 'expected a ws:// or wss:// URL the containers can reach')
      .optional(),
  },
  allowPrivileged: { flag: 'allow-privileged', env: 'DOCKER_AGENT_ALLOW_PRIVILEGED', schema: bool.default(false) },
  maxBodyBytes: {
    flag: 'max-body',
    env: 'DOCKER_AGENT_MAX_BODY_BYTES',
    schema: z.coerce
      .number()
      .int()
      .min(1024)
      .default(1024 * 1024),
  },
  agentConnectTimeoutMs: {
    flag: undefined,
    env: 'DOCKER_AGENT_AGENT_CONNECT_TIMEOUT_MS',
    schema: z.coerce.number().int().min(100).default(60_000),
  },
  extraCaDir: {
    flag: 'extra-ca-dir',
    env: 'DOCKER_AGENT_EXTRA_CA_DIR',
    schema: z.string().default('/usr/local/share/ca-certificates'),
  },
  healthIntervalMs: {
    flag: undefined,
    env: 'DOCKER_AGENT_HEALTH_INTERVAL_MS',
    schema: z.coerce.number().int().min(100).default(5000),
  },
  maxQueuedPerPrincipal: {
    flag: 'max-queued-per-principal',
    env: 'DOCKER_AGENT_MAX_QUEUED_PER_PRINCIPAL',
    schema: z.coerce.number().int('expected an integer').min(1).max(100_000).default(50),
  },
  maxAgentsPerPrincipal: {
    flag: 'max-agents-per-principal',
    env: 'DOCKER_AGENT_MAX_AGENTS_PER_PRINCIPAL',
    schema: z.coerce.number().int('expected an integer').min(0).max(10_000).default(10),
  },
  maxSnapshotsPerPrincipal: {
    flag: 'max-snapshots-per-principal',
    env: 'DOCKER_AGENT_MAX_SNAPSHOTS_PER_PRINCIPAL',
    schema: z.coerce.number().int('expected an integer').min(0).max(10_000).default(20),
  },
  // An official Node build (glibc): copied into every image, shared as one layer. Set-up makes the default.
  runtimeNode: { flag: undefined, env: 'DOCKER_AGENT_RUNTIME_NODE', schema: z.string().min(1).default(repoPath('build', 'runtime-node')) },
  maxUploads: { flag: 'max-uploads', env: 'DOCKER_AGENT_MAX_UPLOADS', schema: z.coerce.number().int().min(1).max(1000).default(8) },
  maxStoredBytesPerPrincipal: {
    flag: 'max-stored-per-principal',
    env: 'DOCKER_AGENT_MAX_STORED_BYTES_PER_PRINCIPAL',
    schema: z.coerce
      .number()
      .int()
      .min(1024 * 1024)
      .default(50 * 1024 ** 3),
  },
  maxRunningPerPrincipal: {
    flag: 'max-running-per-principal',
    env: 'DOCKER_AGENT_MAX_RUNNING_PER_PRINCIPAL',
    // Unset: three quarters of --max-jobs (at least 1), so one principal always leaves room for others.
    schema: z.coerce.number().int('expected an integer').min(1).max(1000).optional(),
  },
  profilesDir: { flag: 'profiles-dir', env: 'DOCKER_AGENT_PROFILES_DIR', schema: z.string().min(1).optional() },
  maxWorkspaceBytes: {
    flag: 'max-workspace',
    env: 'DOCKER_AGENT_MAX_WORKSPACE_BYTES',
    schema: z.coerce
      .number()
      .int()
      .min(1024)
      .default(1024 * 1024 * 1024),
  },
  // Limits that keep one caller from taking the hub or the host down (issue 9).
  maxEntryNameBytes: {
    flag: undefined,
    env: 'DOCKER_AGENT_MAX_ENTRY_NAME_BYTES',
    schema: z.coerce
      .number()
      .int()
      .min(256)
      .max(1024 * 1024)
      .default(4096),
  },
  maxEntryDepth: {
    flag: undefined,
    env: 'DOCKER_AGENT_MAX_ENTRY_DEPTH',
    schema: z.coerce.number().int().min(1).max(4096).default(64),
  },
  maxWorkspaceEntries: {
    flag: undefined,
    env: 'DOCKER_AGENT_MAX_WORKSPACE_ENTRIES',
    schema: z.coerce.number().int().min(1).default(100_000),
  },
  maxOutputBytes: {
    flag: 'max-output',
    env: 'DOCKER_AGENT_MAX_OUTPUT_BYTES',
    schema: z.coerce
      .number()
      .int()
      .min(1024)
      .default(100 * 1024 * 1024),
  },
  // A named agent's log holds its jobs' output as it saw it: past this, its oldest output goes (the jobs keep their own).
  maxAgentLogBytes: {
    flag: 'max-agent-log',
    env: 'DOCKER_AGENT_MAX_AGENT_LOG_BYTES',
    schema: z.coerce
      .number()
      .int()
      .min(1024)
      .default(100 * 1024 * 1024),
  },
  poolMinIdle: {
    flag: 'pool-min-idle',
    env: 'DOCKER_AGENT_POOL_MIN_IDLE',
    schema: z.coerce.number().int().min(0).max(100).default(0),
  },
  poolMax: {
    flag: 'pool-max',
    env: 'DOCKER_AGENT_POOL_MAX',
    schema: z.coerce.number().int().min(0).max(100).optional(),
  },
  poolTtlS: {
    flag: 'pool-ttl',
    env: 'DOCKER_AGENT_POOL_TTL_S',
    schema: z.coerce.number().positive().max(86400).default(600),
  },
  maxSnapshotBytes: {
    flag: 'max-snapshot',
    env: 'DOCKER_AGENT_MAX_SNAPSHOT_BYTES',
    schema: z.coerce
      .number()
      .int()
      .min(1024)
      .default(10 * 1024 * 1024 * 1024),
  },
  containerLogMaxSize: {
    flag: undefined,
    env: 'DOCKER_AGENT_CONTAINER_LOG_MAX_SIZE',
    schema: z
      .string()
      .regex(/^[0-9]+[kmg]?$/, 'expected a size such as 10m (json-file max-size)')
      .default('10m'),
  },
  containerLogMaxFiles: {
    flag: undefined,
    env: 'DOCKER_AGENT_CONTAINER_LOG_MAX_FILES',
    schema: z.coerce.number().int().min(1).max(100).default(3),
  },
  maxAgentFrameBytes: {
    flag: undefined,
    env: 'DOCKER_AGENT_MAX_AGENT_FRAME_BYTES',
    // A runtime frame is one pipe read (64 KiB) plus its header and a held-back UTF-8 tail: keep room above that.
    schema: z.coerce
      .number()
      .int()
      .min(128 * 1024)
      .default(1024 * 1024),
  },
  // Private ranges (RFC 1918, CGNAT, link-local) a bridge job may reach; the host itself stays closed.
  bridgeAllow: {
    flag: 'bridge-allow',
    env: 'DOCKER_AGENT_BRIDGE_ALLOW',
    schema: z
      .string()
      .default('')
      .transform((v, ctx) => {
        const ranges = v
          .split(',')
          .map((r) => r.trim())
          .filter(Boolean);
        for (const r of ranges) {
          if (!z.cidrv4().safeParse(r).success) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(r)} is not an IPv4 range like 10.1.2.0/24` });
        }
        return ranges;
      }),
  },
  // The engine (or, with the swarm backend, a Swarm manager's engine); unset, the default socket.
  dockerHost: { flag: 'docker-host', env: 'DOCKER_HOST', schema: z.string().min(1).optional() },
  // Many hosts: a Docker Swarm behind DOCKER_HOST (a manager's engine) instead of one engine (docs/swarm.md).
  backend: { flag: 'backend', env: 'DOCKER_AGENT_BACKEND', schema: z.enum(['docker', 'swarm'], { message: 'expected docker or swarm' }).default('docker') },
  // The registry every Swarm node pulls from; the hub pushes its images there.
  registry: {
    flag: 'registry',
    env: 'DOCKER_AGENT_REGISTRY',
    schema: z
      .string()
      .regex(/^[a-z0-9.-]+(:\d+)?$/i, 'expected a registry address like registry.example:5000')
      .optional(),
  },
  // The engine that builds the images a Swarm runs (the hub's own host's).
  buildHost: { flag: 'build-host', env: 'DOCKER_AGENT_BUILD_HOST', schema: z.string().min(1).default('unix:///var/run/docker.sock') },
  // Where each node's own engine is, as its node helper sees it; {{.Node.Hostname}} and {{.Node.ID}} are replaced.
  swarmNodeSocket: { flag: undefined, env: 'DOCKER_AGENT_SWARM_NODE_SOCKET', schema: z.string().min(1).default('/var/run/docker.sock') },
  // Placement constraints for jobs (comma-separated, as `docker service create --constraint`); all nodes by default.
  swarmConstraints: {
    flag: undefined,
    env: 'DOCKER_AGENT_SWARM_CONSTRAINTS',
    schema: z
      .string()
      .default('')
      .transform((v) =>
        v
          .split(',')
          .map((c) => c.trim())
          .filter(Boolean),
      ),
  },
  // Unset: the engine picks a range from its address pools (which run out after ~30 networks).
  jobSubnet: { flag: 'job-subnet', env: 'DOCKER_AGENT_JOB_SUBNET', schema: z.cidrv4({ message: 'expected an IPv4 range like 10.213.0.0/24' }).optional() },
  // Disk: what one container may write, and the free space below which the hub takes no new work.
  maxDiskBytes: {
    flag: 'max-disk',
    env: 'DOCKER_AGENT_MAX_DISK_BYTES',
    // 0: no limit.
    schema: z.coerce
      .number()
      .int('expected a number of bytes')
      .min(0)
      .default(10 * 1024 ** 3),
  },
  diskCheckSeconds: {
    flag: undefined,
    env: 'DOCKER_AGENT_DISK_CHECK_SECONDS',
    schema: z.coerce.number().positive().max(3600).default(5),
  },
  minFreeBytes: {
    flag: 'min-free',
    env: 'DOCKER_AGENT_MIN_FREE_BYTES',
    // 0: no floor.
    schema: z.coerce
      .number()
      .int('expected a number of bytes')
      .min(0)
      .default(1024 ** 3),
  },
  healthCheckSeconds: {
    flag: undefined,
    env: 'DOCKER_AGENT_HEALTH_CHECK_SECONDS',
    schema: z.coerce.number().positive().max(3600).default(5),
  },
  maxKeptPerPrincipal: {
    flag: 'max-kept-per-principal',
    env: 'DOCKER_AGENT_MAX_KEPT_PER_PRINCIPAL',
    schema: z.coerce.number().int('expected an integer').min(0).max(1000).default(5),
  },
  maxStreamsPerPrincipal: {
    flag: 'max-streams-per-principal',
    env: 'DOCKER_AGENT_MAX_STREAMS_PER_PRINCIPAL',
    schema: z.coerce.number().int('expected an integer').min(1).max(100_000).default(32),
  },
  maxStreams: {
    flag: 'max-streams',
    env: 'DOCKER_AGENT_MAX_STREAMS',
    schema: z.coerce.number().int('expected an integer').min(1).max(1_000_000).default(1024),
  },
  maxAgentDials: {
    flag: undefined,
    env: 'DOCKER_AGENT_MAX_AGENT_DIALS',
    // At least twice the socket's listen backlog (511), so one turn of the event loop accepting a flood cannot push out a runtime that just dialled.
    schema: z.coerce.number().int('expected an integer').min(1024).max(100_000).default(2048),
  },
  oidcRepositories: {
    flag: 'oidc-repositories',
    env: 'DOCKER_AGENT_OIDC_REPOSITORIES',
    schema: z
      .string()
      .default('')
      .transform((v, ctx) => {
        const entries: OidcEntry[] = [];
        for (const text of v
          .split(',')
          .map((r) => r.trim())
          .filter(Boolean)) {
          const e = parseOidcEntry(text);
          if (typeof e === 'string') ctx.addIssue({ code: 'custom', message: e });
          else entries.push(e);
        }
        return entries;
      }),
  },
  oidcJwksUrl: {
    flag: 'oidc-jwks-url',
    env: 'DOCKER_AGENT_OIDC_JWKS_URL',
    schema: z.url({ message: 'expected the http(s) URL of a JWKS' }).default('https://token.actions.githubusercontent.com/.well-known/jwks'),
  },
  oidcIssuer: { flag: 'oidc-issuer', env: 'DOCKER_AGENT_OIDC_ISSUER', schema: z.string().min(1).default('https://token.actions.githubusercontent.com') },
  // Unset: the hub's public URL (DOCKER_AGENT_PUBLIC_URL, else the URL it listens on), what the Action asks for by default.
  oidcAudience: { flag: 'oidc-audience', env: 'DOCKER_AGENT_OIDC_AUDIENCE', schema: z.string().min(1).optional() },
} as const;

type Settings = typeof SETTINGS;
export type HubConfig = Omit<{ [K in keyof Settings]: z.output<Settings[K]['schema']> }, 'maxRunningPerPrincipal'> & {
  maxRunningPerPrincipal: number;
  /** Where built-in profiles and the runtime bundle live. */
  builtinProfilesDir: string;
  runtimeBundle: string;
};

export function loadConfig(argv: string[] = [], env: NodeJS.ProcessEnv = process.env): HubConfig {
  const options = Object.fromEntries(
    Object.values(SETTINGS)
      .filter((s) => s.flag)
      .map((s) => [s.flag!, { type: 'string' as const }]),
  );
  let flags: Record<string, string | undefined>;
  try {
    flags = parseArgs({ args: argv, options, allowPositionals: false, strict: true }).values as Record<string, string>;
  } catch (err) {
    throw new HubError(
      'CONFIG_INVALID',
      `${(err as Error).message}. Flags: ${Object.keys(options)
        .map((f) => `--${f}`)
        .join(', ')}`,
    );
  }
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, s] of Object.entries(SETTINGS)) {
    const fromFlag = s.flag ? flags[s.flag] : undefined;
    const raw = fromFlag ?? (env[s.env] === '' ? undefined : env[s.env]);
    const parsed = (s.schema as z.ZodType).safeParse(raw);
    if (parsed.success) out[key] = parsed.data;
    else {
      const source = fromFlag !== undefined ? `--${s.flag}` : s.env;
      problems.push(`${source}=${JSON.stringify(raw)}: ${parsed.error.issues.map((i) => i.message).join(', ')}`);
    }
  }
  if (out.backend === 'swarm' && !out.registry && !problems.length) {
    problems.push('DOCKER_AGENT_BACKEND=swarm needs DOCKER_AGENT_REGISTRY: a registry every node pulls from, where the hub pushes its images');
  }
  if (problems.length) throw new HubError('CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`);
  return {
    ...(out as Omit<HubConfig, 'builtinProfilesDir' | 'runtimeBundle'>),
    maxRunningPerPrincipal: (out.maxRunningPerPrincipal as number | undefined) ?? Math.max(1, Math.floor(((out.maxJobs as number) * 3) / 4)),
    dataDir: resolve(out.dataDir as string),
    builtinProfilesDir: repoPath('profiles'),
    runtimeBundle: repoPath('build', 'runtime.cjs'),
  };
}

/** The table shown in docs/configuration.md and in `--help`. */
export function describeSettings(): string {
  return Object.values(SETTINGS)
    .map((s) => `${s.flag ? `--${s.flag}`.padEnd(20) : ''.padEnd(20)} ${s.env}`)
    .join('\n');
}
