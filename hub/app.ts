// The HTTP API as a Hono app built from its dependencies, so routes can be tested
// with app.request() and no socket.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { routePath } from 'hono/route';
import type { Authenticator } from './auth.js';
import { HubError } from './errors.js';
import type { Backend, NetworkStatus } from './backend/types.js';
import type { JobService } from './jobs/service.js';
import { jobsRoutes } from './api/jobs.js';
import type { Links } from './links.js';
import { maintenanceRoutes } from './api/maintenance.js';
import { profilesRoutes } from './api/profiles.js';
import { workspacesRoutes } from './api/workspaces.js';
import type { WorkspaceStore } from './workspaces.js';
import type { JobStore } from './store/jobs.js';
import type { ProfileRegistry } from './profiles/registry.js';
import type { HubEnv } from './api/env.js';
import { tokensRoutes } from './api/tokens.js';
import { agentsRoutes } from './api/agents.js';
import { snapshotsRoutes } from './api/snapshots.js';
import { openApiDocument } from './api/openapi.js';
import type { Snapshots } from './snapshots.js';
import type { HubMetrics } from './metrics.js';
import { requireScope } from './principal.js';
import type { AgentService } from './agents/service.js';
import type { EventBus } from './jobs/event-bus.js';
import type { EventLog } from './store/events.js';
import { auditEntry, worthAuditing, type AuditLog } from './audit.js';
import type { TokenStore } from './store/tokens.js';
import type { WorkspaceOwners } from './store/workspace-owners.js';

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
  hubId: string;
  tokens: TokenStore;
  /** A token was revoked through the API: end its open streams. */
  onRevoke: (tokenId: string) => void;
  audit: AuditLog;
  /** The job network's isolation, as found at start. */
  network?: NetworkStatus;
}

/** The id a request is about: `/v1/jobs/:id/…`, `/v1/tokens/:id`. */
function objectOf(path: string): string | null {
  return /^\/v1\/(?:jobs|tokens|agents|snapshots)\/([^/]+)/.exec(path)?.[1] ?? null;
}

export function createApp(deps: AppDeps) {
  const app = new Hono<HubEnv>();

  app.onError((err, c) => {
    const e = err instanceof HubError ? err : new HubError('INTERNAL', `internal error: ${err.message}`);
    if (e.code === 'INTERNAL') console.error(err);
    return c.json(e.toJSON(), e.status as 400);
  });
  app.notFound((c) => c.json(new HubError('NOT_FOUND', `no route ${c.req.method} ${c.req.path}`).toJSON(), 404));

  // Every answer counted by its route's pattern, never its raw path: callers cannot make label values up.
  app.use('*', async (c, next) => {
    await next();
    deps.metrics?.httpRequests.inc({ method: c.req.method, route: routePath(c, -1), status: String(c.res.status) });
  });

  // Prometheus' text format; a token with the `metrics` scope (or admin) may read it.
  app.get('/metrics', async (c) => {
    const principal = await deps.auth.check(c.req.header('authorization'));
    requireScope(principal, 'metrics', 'reading the metrics');
    return c.body(await deps.metrics.registry.metrics(), 200, { 'content-type': deps.metrics.registry.contentType });
  });

  app.get('/health', async (c) => {
    try {
      const engine = await deps.backend.info();
      const { network } = deps;
      // Still 200: the hub runs jobs; `degraded` and the rules tell the operator what is missing.
      const pool = deps.jobs.poolState();
      if (network && !network.isolated) return c.json({ status: 'degraded', engine, network, pool });
      return c.json({ status: 'ok', engine, pool, ...(network ? { network: { name: network.name, isolated: true } } : {}) });
    } catch (err) {
      return c.json({ status: 'degraded', engine: { reachable: false, error: (err as Error).message } }, 503);
    }
  });

  // Outermost, so it sees every answer, refusals by auth included.
  app.use('/v1/*', async (c, next) => {
    await next();
    const err = c.error instanceof HubError ? c.error : undefined;
    if (!worthAuditing(c.req.method, c.res.status, err)) return;
    const route = c.req.routePath && c.req.routePath !== '/v1/*' ? c.req.routePath : c.req.path;
    deps.audit(auditEntry({ method: c.req.method, route, object: objectOf(c.req.path) }, c.get('principal'), c.res.status, err));
  });
  app.use('/v1/*', async (c, next) => {
    c.set('principal', await deps.auth.check(c.req.header('authorization')));
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
  app.route('/v1/jobs', jobsRoutes(deps.jobs, deps.links));
  app.route('/v1/agents', agentsRoutes(deps.agents, deps.snapshots, deps.events, deps.bus));
  app.route('/v1/snapshots', snapshotsRoutes(deps.snapshots));
  app.route('/v1/tokens', tokensRoutes(deps.tokens, deps.onRevoke));
  app.route('/v1/profiles', profilesRoutes(deps.profiles, deps.allowPrivileged));
  app.route('/v1/maintenance', maintenanceRoutes(deps));
  app.route('/v1/workspaces', workspacesRoutes(deps.workspaces, deps.workspaceOwners, deps.maxWorkspaceBytes));
  return app;
}
