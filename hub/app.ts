// The HTTP API as a Hono app built from its dependencies, so routes can be tested
// with app.request() and no socket.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { routePath } from 'hono/route';
import { credentialsOf, type Authenticator } from './auth/authenticator.js';
import { HubError } from './platform/errors.js';
import type { Backend } from './backend/types.js';
import type { HealthMonitor } from './health.js';
import type { JobService } from './jobs/service.js';
import { jobsRoutes } from './api/jobs.js';
import type { Links } from './platform/links.js';
import { maintenanceRoutes } from './api/maintenance.js';
import { profilesRoutes } from './api/profiles.js';
import { workspacesRoutes } from './api/workspaces.js';
import type { StorageBudget } from './store/storage-budget.js';
import type { WorkspaceStore } from './workspaces/uploads.js';
import type { JobStore } from './store/jobs.js';
import type { ProfileRegistry } from './profiles/registry.js';
import { answerErrors, type HubEnv } from './api/env.js';
import { tokensRoutes } from './api/tokens.js';
import { agentsRoutes } from './api/agents.js';
import { snapshotsRoutes } from './api/snapshots.js';
import { openApiDocument } from './api/openapi.js';
import type { Snapshots } from './snapshots/snapshots.js';
import type { HubMetrics } from './platform/metrics.js';
import { requireScope } from './platform/principal.js';
import type { AgentService } from './agents/service.js';
import type { EventBus } from './events/event-bus.js';
import type { EventLog } from './store/events.js';
import { auditEntry, worthAuditing, type AuditLog } from './auth/audit.js';
import type { TokenStore } from './store/tokens.js';
import type { WorkspaceOwners } from './store/workspace-owners.js';
import type { SessionStore } from './store/sessions.js';
import type { StreamRegistry } from './api/stream-registry.js';
import { sessionRoutes, signInRoute } from './api/session.js';
import { liveRoutes } from './api/live.js';
import { cachedStats, statsRoutes } from './api/stats.js';
import { dashboardRoutes } from './api/dashboard.js';

export interface AppDeps {
  jobs: JobService;
  metrics: HubMetrics;
  agents: AgentService;
  snapshots: Snapshots;
  events: EventLog;
  bus: EventBus;
  auth: Authenticator;
  backend: Backend;
  links: Links;
  profiles: ProfileRegistry;
  store: JobStore;
  allowPrivileged: boolean;
  maxBodyBytes: number;
  workspaces: WorkspaceStore;
  workspaceOwners: WorkspaceOwners;
  maxWorkspaceBytes: number;
  /** Uploads under way at once, hub-wide (DOCKER_AGENT_MAX_UPLOADS). */
  maxUploads: number;
  /** What each principal may keep (DOCKER_AGENT_MAX_STORED_BYTES_PER_PRINCIPAL). */
  budget: StorageBudget;
  hubId: string;
  tokens: TokenStore;
  /** A token was revoked through the API: end its open streams. */
  onRevoke: (tokenId: string) => void;
  audit: AuditLog;
  /** Removes (unless dryRun) this hub's containers that nothing holds; returns their ids. */
  reapOrphans: (dryRun: boolean) => Promise<string[]>;
  /** /health's report, made in the background, and the free-space floor that refuses new work. */
  health: Pick<HealthMonitor, 'current' | 'admit'>;
  sessions: SessionStore;
  /** Open streams (event streams, shells, live feeds), ended when their token or session does. */
  streams: StreamRegistry;
}

/** What makes something new that takes disk (a container, an upload): refused below the free-space floor. */
function newWork(method: string, path: string): string | undefined {
  if (method !== 'POST') return undefined;
  if (path === '/v1/jobs') return 'a new job';
  if (path === '/v1/agents') return 'a new agent';
  if (/^\/v1\/agents\/[^/]+\/start$/.test(path)) return "an agent's start";
  if (path === '/v1/workspaces') return 'an upload';
  return undefined;
}

/** The id a request is about: `/v1/jobs/:id/…`, `/v1/tokens/:id`. */
function objectOf(path: string): string | null {
  return /^\/v1\/(?:jobs|tokens|agents|snapshots)\/([^/]+)/.exec(path)?.[1] ?? null;
}

export function createApp(deps: AppDeps) {
  const app = new Hono<HubEnv>();

  answerErrors(app);

  // Every answer counted by its route's pattern, never its raw path: callers cannot make label values up.
  app.use('*', async (c, next) => {
    await next();
    deps.metrics?.httpRequests.inc({ method: c.req.method, route: routePath(c, -1), status: String(c.res.status) });
  });

  // Prometheus' text format; a token with the `metrics` scope (or admin) may read it.
  app.get('/metrics', async (c) => {
    const principal = await deps.auth.checkRequest(credentialsOf(c.req.method, (n) => c.req.header(n)));
    requireScope(principal, 'metrics', 'reading the metrics');
    return c.body(await deps.metrics.registry.metrics(), 200, { 'content-type': deps.metrics.registry.contentType });
  });

  // Only the last background look is read: an unauthenticated caller makes the hub do no work (health.ts).
  app.get('/health', (c) => {
    const { status, body } = deps.health.current();
    // Anyone may ask: a Swarm's nodes by state and role, not by name (the dashboard, signed in, shows names).
    const nodes = body.engine?.nodes?.map(({ hostname: _, ...n }) => n);
    return c.json(nodes ? { ...body, engine: { ...body.engine, nodes } } : body, status);
  });

  // Outermost, so it sees every answer, refusals by auth included.
  app.use('/v1/*', async (c, next) => {
    await next();
    const err = c.error instanceof HubError ? c.error : undefined;
    if (!worthAuditing(c.req.method, c.res.status, err)) return;
    const route = c.req.routePath && c.req.routePath !== '/v1/*' ? c.req.routePath : c.req.path;
    deps.audit(auditEntry({ method: c.req.method, route, object: objectOf(c.req.path) }, c.get('principal'), c.res.status, err));
  });
  const sessionDeps = {
    auth: deps.auth,
    sessions: deps.sessions,
    secure: () => deps.links.http.startsWith('https:'),
    onSignOut: (id: string) => deps.streams.closeSession(id),
  };
  // Signing in is the one /v1 route without a caller yet.
  const signIn = signInRoute(sessionDeps);
  app.use('/v1/*', async (c, next) => {
    if (c.req.path === '/v1/session' && c.req.method === 'POST') return next();
    c.set('principal', await deps.auth.checkRequest(credentialsOf(c.req.method, (n) => c.req.header(n))));
    const what = newWork(c.req.method, c.req.path);
    if (what) deps.health.admit(what);
    await next();
  });
  const jsonLimit = bodyLimit({
    maxSize: deps.maxBodyBytes,
    onError: () => {
      throw new HubError('BODY_TOO_LARGE', `request body is larger than ${deps.maxBodyBytes} bytes`);
    },
  });
  // Workspaces are archives with a limit of their own.
  app.use('/v1/*', (c, next) => (c.req.path === '/v1/workspaces' ? next() : jsonLimit(c, next)));

  // Any principal may read what the API is (it says nothing of anyone's objects).
  app.get('/v1/openapi.json', (c) => c.json(openApiDocument(deps.links.http)));
  app.route('/v1/jobs', jobsRoutes(deps.jobs, deps.agents, deps.links));
  app.route('/v1/agents', agentsRoutes(deps.agents, deps.snapshots, deps.events, deps.bus, deps.streams));
  app.route('/v1/snapshots', snapshotsRoutes(deps.snapshots));
  app.route('/v1/tokens', tokensRoutes(deps.tokens, deps.onRevoke));
  app.route('/v1/profiles', profilesRoutes(deps.profiles, deps.allowPrivileged));
  app.route('/v1/maintenance', maintenanceRoutes(deps));
  app.route('/v1/workspaces', workspacesRoutes(deps));
  app.route('/v1/session', signIn);
  app.route('/v1/session', sessionRoutes(sessionDeps));
  const stats = cachedStats(deps.store);
  app.route('/v1/stats', statsRoutes(stats));
  app.route('/v1/live', liveRoutes({ ...deps, health: async () => deps.health.current().body, stats }));
  app.route('/', dashboardRoutes());
  return app;
}
