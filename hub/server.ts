// Starts a hub: opens the store, connects the backend, serves the API and the
// event streams on TCP and the runtime channel on a Unix socket, then puts right
// whatever a previous run left behind.
import { getRequestListener, serve } from '@hono/node-server';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { runtimeChannel } from './api/runtime-channel.js';
import { runtimeFilesRoutes } from './api/runtime-files.js';
import { rejectUpgrade, type UpgradeHandler } from './api/upgrade.js';
import { AGENT_HEADERS_TIMEOUT_MS, guardDials } from './api/dial-guard.js';
import { eventStream, EVENTS_PATH } from './api/event-stream.js';
import { shellStream, SHELL_PATH } from './api/shell-stream.js';
import { createApp } from './app.js';
import { DockerBackend } from './backend/docker/backend.js';
import { SwarmBackend } from './backend/swarm/backend.js';
import { AGENT_SOCKET_NAME, type Backend, type ContainerInfo, type NetworkStatus } from './backend/types.js';
import type { HubConfig } from './platform/config.js';
import { HubError } from './platform/errors.js';
import { EventBus } from './events/event-bus.js';
import { JobService } from './jobs/service.js';
import { AgentService } from './agents/service.js';
import { SandboxRegistry } from './sandboxes/registry.js';
import { reapOrphans } from './sandboxes/reaper.js';
import { AgentStore } from './store/agents.js';
import { SnapshotStore } from './store/snapshots.js';
import { Snapshots } from './snapshots/snapshots.js';
import { HubMetrics } from './platform/metrics.js';
import { ProfileRegistry } from './profiles/registry.js';
import { hubId as loadHubId, openDb } from './store/db.js';
import { EventLog } from './store/events.js';
import { JobStore } from './store/jobs.js';
import { EnvVault } from './store/env-vault.js';
import { newSecret, TokenStore } from './store/tokens.js';
import { WorkspaceStore } from './workspaces/uploads.js';
import { secureDataDir } from './platform/data-dir.js';
import { Authenticator, type OidcSettings } from './auth/authenticator.js';
import { auditLog } from './auth/audit.js';
import { StreamRegistry } from './api/stream-registry.js';
import { OidcRepositories } from './store/oidc-repositories.js';
import { migrateOidcOwners } from './store/oidc-owner-migration.js';
import { WorkspaceOwners } from './store/workspace-owners.js';
import { StorageBudget } from './store/storage-budget.js';
import { SessionStore } from './store/sessions.js';
import { DiskWatch } from './sandboxes/disk-watch.js';
import { HealthMonitor } from './health.js';
import type { DiskHealth } from '../schemas/live.js';

/** How long a dashboard sign-in lasts, and how many one token may hold. */
const SESSION_TTL_MS = 12 * 3_600_000;
const SESSIONS_PER_TOKEN = 20;

export interface RunningHub {
  url: string;
  hubId: string;
  /** Set when this start created the first API token. */
  tokenFile?: string;
  jobs: JobService;
  close(): Promise<void>;
}

export interface HubOptions {
  /** The clock tokens' ends are measured by (tests move it instead of waiting). */
  now?: () => Date;
}

export async function startHub(config: HubConfig, log: (msg: string) => void = (m) => console.error(m), opts: HubOptions = {}): Promise<RunningHub> {
  // run/ holds the agent socket that containers bind-mount: it alone stays open (0755, socket 0666).
  secureDataDir(config.dataDir, ['run']);
  const runDir = join(config.dataDir, 'run');
  mkdirSync(runDir, { recursive: true, mode: 0o755 });
  chmodSync(runDir, 0o755);
  const db = openDb(join(config.dataDir, 'hub.db'));
  const hubId = loadHubId(db);
  const tokens = new TokenStore(db, opts.now);
  for (const m of migrateOidcOwners(db, config.oidcRepositories)) log(`OIDC owners by entry: what ${m.from} made is now owned by ${m.to}`);
  const tokenFile = ensureToken(tokens, config, log);
  const workspaceOwners = new WorkspaceOwners(db);

  const metrics = new HubMetrics();
  const backendOptions = {
    ...config,
    agentSocketDir: config.agentUrl ? undefined : runDir,
    onImageBuilt: (profile: string, seconds: number) => metrics.imageBuilds.observe({ profile }, seconds),
  };
  const backend: Backend =
    config.backend === 'swarm'
      ? await SwarmBackend.connect({
          ...backendOptions,
          manager: config.dockerHost,
          registry: config.registry!,
          nodeSocket: config.swarmNodeSocket,
          constraints: config.swarmConstraints,
        })
      : await DockerBackend.connect(backendOptions, config.dockerHost);
  const profiles = new ProfileRegistry(config.builtinProfilesDir, config.profilesDir);
  const store = new JobStore(db, new EnvVault(join(config.dataDir, 'env', 'jobs')));
  const events = new EventLog(db);
  const bus = new EventBus(db, events, (n) => metrics.eventBytes.inc(n));
  const workspaces = new WorkspaceStore(join(config.dataDir, 'workspaces'), {
    maxBytes: config.maxWorkspaceBytes,
    maxNameBytes: config.maxEntryNameBytes,
    maxDepth: config.maxEntryDepth,
    maxEntries: config.maxWorkspaceEntries,
  });
  const links = { http: '', ws: '' };
  const sessions = new SessionStore(db, opts.now ?? (() => new Date()), SESSION_TTL_MS, SESSIONS_PER_TOKEN);
  const auth = new Authenticator(tokens, oidcSettings(config, links), new OidcRepositories(db), sessions);
  const budget = new StorageBudget(db, config.maxStoredBytesPerPrincipal);
  const snapshots = new Snapshots(new SnapshotStore(db), backend, links, budget);
  const registry = new SandboxRegistry();
  const disk = await diskLimit(backend, config, log);
  const diskWatch = disk.enforcement === 'watch' ? new DiskWatch({ backend, limit: disk.limit, intervalMs: config.diskCheckSeconds * 1000, log }) : undefined;
  const sandboxes = { config, backend, index: registry, log, ...(diskWatch ? { disk: diskWatch } : {}) };
  const jobs = new JobService({
    config,
    hubId,
    store,
    bus,
    backend,
    profiles,
    workspaces,
    workspaceOwners,
    budget,
    snapshots,
    links,
    log,
    sandboxes,
    onState: (job, state) => metrics.jobState(job, state),
    ownerRefused: (owner) => {
      if (!owner.startsWith('token:')) return undefined;
      const verdict = tokens.checkId(owner.slice('token:'.length));
      return verdict.ok ? undefined : `its token was ${verdict.why === 'expired' ? 'expired' : 'revoked'}`;
    },
    mayRunPrivileged: (owner) => auth.mayRunPrivileged(owner),
  });
  const agentStore = new AgentStore(db, new EnvVault(join(config.dataDir, 'env', 'agents')));
  const agents = new AgentService({ config, hubId, agents: agentStore, store, bus, backend, profiles, jobs, snapshots, sandboxes, log });
  // What holds a container is asked of the hub's records, never of labels a snapshot may have passed on.
  const reap = (dryRun: boolean, containers?: ContainerInfo[]) =>
    reapOrphans({ backend, hubId, log, holds: (c) => jobs.holds(c) || agents.holds(c) }, dryRun, containers);

  const network = await jobNetwork(backend, hubId, config, log);
  const health = new HealthMonitor({
    backend,
    dataDir: config.dataDir,
    intervalMs: config.healthCheckSeconds * 1000,
    minFree: config.minFreeBytes,
    disk,
    network,
    pool: () => jobs.poolState(),
    log,
  });
  // Looked at once before the hub listens, so its first /health and its first submit know the engine and the disk.
  await health.start();
  metrics.readFrom({
    jobsByState: () => store.countUnfinished(),
    agentsByState: () => agentStore.list().reduce<Record<string, number>>((n, a) => ({ ...n, [a.state]: (n[a.state] ?? 0) + 1 }), {}),
    poolIdle: () => Object.fromEntries(Object.entries(jobs.poolState()).map(([profile, p]) => [profile, p.idle])),
    // The background look's, as /health's: a scrape makes no engine call of its own.
    engineUp: async () => health.current().status === 200,
    nodes: () => health.current().body.engine?.nodes ?? [],
  });
  const streams = new StreamRegistry((p) => auth.stillValid(p), { perPrincipal: config.maxStreamsPerPrincipal, total: config.maxStreams });
  const audit = auditLog(log);
  const app = createApp({
    agents,
    metrics,
    snapshots,
    events,
    bus,
    ...{ jobs, auth, backend, profiles, store, links, workspaces, workspaceOwners, hubId, tokens, audit, health },
    sessions,
    streams,
    reapOrphans: (dryRun) => reap(dryRun),
    onRevoke: (id) => {
      // Nothing the token asked for starts after it is revoked (the scheduler checks too, for a revoke from the CLI); what runs runs to its end.
      const cancelled = jobs.cancelQueued(`token:${id}`, 'its token was revoked');
      if (cancelled) log(`token ${id} revoked: ${cancelled} queued jobs cancelled`);
      sessions.closeForToken(id);
      streams.closeToken(id);
    },
    allowPrivileged: config.allowPrivileged,
    maxBodyBytes: config.maxBodyBytes,
    maxWorkspaceBytes: config.maxWorkspaceBytes,
    maxUploads: config.maxUploads,
    budget,
  });
  const runtimeFiles = runtimeFilesRoutes(registry);
  // The runtime's own endpoint is on the public port only when containers are told to dial it there.
  const fetch: typeof app.fetch = config.agentUrl
    ? (req, ...rest) => (new URL(req.url).pathname.startsWith('/v1/agent/') ? runtimeFiles.fetch(req) : app.fetch(req, ...rest))
    : app.fetch;
  const api = serve({ fetch, hostname: config.host, port: config.port }) as Server;
  await new Promise<void>((resolve, reject) => {
    api.once('listening', resolve);
    api.once('error', (err) => reject(new HubError('CONFIG_INVALID', `cannot listen on ${config.host}:${config.port}: ${err.message}`)));
  });
  const { port } = api.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  links.http = (config.publicUrl ?? `http://${host}:${port}`).replace(/\/$/, '');
  links.ws = links.http.replace(/^http/, 'ws');

  const toAgent = runtimeChannel(registry, log, {
    maxFrameBytes: config.maxAgentFrameBytes,
    // Half the asked-for interval leaves room for timer jitter; anything faster is a runtime gone wrong.
    healthMinIntervalMs: Math.floor(config.healthIntervalMs / 2),
  });
  const upgraded = new Set<Duplex>();
  const toEvents = eventStream({ jobs, log: events, bus, auth, streams, audit });
  const toShell = shellStream({ jobs, agents, auth, backend, streams, audit, log });
  // The runtime channel is on the public port only when containers are told to dial it there.
  api.on(
    'upgrade',
    route(upgraded, config.agentUrl ? { '/v1/agent': toAgent } : {}, [
      [EVENTS_PATH, toEvents],
      [SHELL_PATH, toShell],
    ]),
  );

  // Agents dial this socket; its folder is what containers see, read-only.
  const socketPath = join(runDir, AGENT_SOCKET_NAME);
  rmSync(socketPath, { force: true });
  const agentServer = createServer(getRequestListener(runtimeFiles.fetch));
  agentServer.on('upgrade', route(upgraded, { '/v1/agent': toAgent }));
  // Every container may dial here: one that floods it must not keep another's runtime out.
  guardDials(agentServer, { maxWaiting: config.maxAgentDials, headersTimeoutMs: AGENT_HEADERS_TIMEOUT_MS });
  await new Promise<void>((resolve) => agentServer.listen(socketPath, resolve));
  chmodSync(socketPath, 0o666);

  const containers = await backend.list(hubId);
  await jobs.recover(containers);
  await agents.recover(containers);
  await reap(false, containers);
  registry.open();

  return {
    url: links.http,
    hubId,
    tokenFile,
    jobs,
    async close() {
      health.stop();
      diskWatch?.stop();
      registry.close();
      await jobs.stop();
      agents.close();
      backend.close();
      streams.stop();
      // Runtimes dial back in to the next start; clients reconnect with ?from=.
      for (const socket of upgraded) socket.destroy();
      await Promise.all([new Promise((r) => agentServer.close(r)), new Promise((r) => api.close(r))]);
      api.closeAllConnections?.();
      agentServer.closeAllConnections?.();
      db.close();
    },
  };
}

/**
 * Routes an upgrade by its path. Upgraded sockets (runtime channels, event streams,
 * shells) leave the HTTP server's count of connections, so the server cannot end
 * them when it closes: `upgraded` holds them for the hub's close().
 */
function route(upgraded: Set<Duplex>, exact: Record<string, UpgradeHandler>, patterns: Array<[RegExp, UpgradeHandler]> = []): UpgradeHandler {
  return (req, socket, head) => {
    // Node drops its own error listener on upgrade: a client that resets mid-handshake must not take the hub down.
    socket.on('error', () => socket.destroy());
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
    const path = new URL(req.url ?? '/', 'http://hub').pathname;
    const handler = exact[path] ?? patterns.find(([pattern]) => pattern.test(path))?.[1];
    if (handler) handler(req, socket, head);
    else rejectUpgrade(socket, new HubError('NOT_FOUND', `no WebSocket endpoint at ${path}`));
  };
}

/**
 * The operator's own token when given (an admin token that works only while
 * DOCKER_AGENT_TOKEN holds it: a changed or unset value ends the old one);
 * otherwise, on first start (or when no admin token works any more), an admin
 * token written where the operator can read it.
 */
function ensureToken(tokens: TokenStore, config: HubConfig, log: (msg: string) => void): string | undefined {
  const ended = tokens.revokeOtherEnvTokens(config.token);
  if (ended.length) log(`DOCKER_AGENT_TOKEN changed or was unset: its earlier value no longer works`);
  if (config.token) tokens.add({ name: 'DOCKER_AGENT_TOKEN', token: config.token, scopes: ['admin'], source: 'env' });
  // Without a working admin token the hub could not be managed: make one, as on first start.
  if (tokens.countActive('admin') > 0) return undefined;
  const token = newSecret('dat');
  const file = join(config.dataDir, 'token');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  tokens.add({ name: 'first start', token, scopes: ['admin'], source: 'first-start' });
  log(`created an admin API token; it is in ${file} (send it as Authorization: Bearer <token>)`);
  return existsSync(file) ? file : undefined;
}

/**
 * This hub's job network, fenced off from the host and each other as far as the hub
 * may; when it may not, the operator is told the exact rules (and /health says so).
 */
async function jobNetwork(backend: Backend, hubId: string, config: HubConfig, log: (msg: string) => void): Promise<NetworkStatus | undefined> {
  // Containers that dial the hub over TCP (DOCKER_AGENT_AGENT_URL) must still reach its port on the host.
  const agent = config.agentUrl ? new URL(config.agentUrl.replace(/^ws/, 'http')) : undefined;
  const allowTcpPorts = agent ? [Number(agent.port || (agent.protocol === 'https:' ? 443 : 80))] : [];
  let status: NetworkStatus | undefined;
  try {
    status = await backend.jobNetwork({ hubId, allowTcpPorts, allow: config.bridgeAllow, subnet: config.jobSubnet });
  } catch (err) {
    status = { name: '', isolated: false, rules: [], problem: `the job network could not be set up: ${(err as Error).message}` };
  }
  if (!status) {
    log(
      `WARNING: the ${backend.name} backend makes no job network: profiles with network: bridge are refused, and a job's task joins its node's ` +
        "default bridge unless that node's engine has none (--bridge=none); no-new-privileges holds only where the node's daemon.json sets it (docs/swarm.md)",
    );
  } else if (!status.isolated) {
    log(`WARNING: jobs of bridge profiles are not isolated: ${status.problem}.`);
    if (status.rules.length) log(`Add these rules as root (again after a reboot):\n  ${status.rules.join('\n  ')}`);
  }
  return status;
}

/**
 * What a container may write (DOCKER_AGENT_MAX_DISK_BYTES), and who enforces it:
 * the engine's storage driver where it has a quota, else the hub's own watch.
 */
async function diskLimit(backend: Backend, config: HubConfig, log: (msg: string) => void): Promise<Pick<DiskHealth, 'limit' | 'enforcement'>> {
  const limit = config.maxDiskBytes;
  if (!limit) return { limit, enforcement: 'off' };
  if (await backend.useDiskQuota(limit)) return { limit, enforcement: 'quota' };
  log(`the engine's storage driver has no size quota: the hub measures each container every ${config.diskCheckSeconds} s and ends one past ${limit} bytes`);
  return { limit, enforcement: 'watch' };
}

/** OIDC is on when the operator names the repositories it admits. */
function oidcSettings(config: HubConfig, links: { http: string }): OidcSettings | undefined {
  if (!config.oidcRepositories.length) return undefined;
  // By default a token must be made for this hub (its public URL), so one asked for another hub is no good here.
  const audience = () => config.oidcAudience ?? links.http;
  return { jwksUrl: config.oidcJwksUrl, issuer: config.oidcIssuer, audience, entries: config.oidcRepositories };
}
