// GET /v1/openapi.json: an OpenAPI 3.1 description of every route, built from the
// JSON Schemas in schemas/ (each shape written once, there) and the table below.
// A test walks the app's routes and fails when one is missing here, or extra.
import agent from '../../schemas/agent.schema.json' with { type: 'json' };
import event from '../../schemas/event.schema.json' with { type: 'json' };
import jobRequest from '../../schemas/job-request.schema.json' with { type: 'json' };
import job from '../../schemas/job.schema.json' with { type: 'json' };
import profile from '../../schemas/profile.schema.json' with { type: 'json' };
import snapshot from '../../schemas/snapshot.schema.json' with { type: 'json' };
import task from '../../schemas/task.schema.json' with { type: 'json' };
import token from '../../schemas/token.schema.json' with { type: 'json' };
import session from '../../schemas/session.schema.json' with { type: 'json' };
import stats from '../../schemas/stats.schema.json' with { type: 'json' };

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

/** The schema files, by the component each becomes. */
const FILES: Record<string, { $id: string }> = {
  JobRequest: jobRequest,
  JobView: job,
  JobEvent: event,
  JsonTask: task,
  AgentSchemas: agent,
  SnapshotSchemas: snapshot,
  TokenView: token,
  Profile: profile,
  SessionView: session,
  TaskStats: stats,
};
const componentOf = new Map(Object.entries(FILES).map(([c, f]) => [f.$id.split('/').pop()!, c]));
const def = (file: { $id: string }, name: string): Schema => ref(`${componentOf.get(file.$id.split('/').pop()!)}/$defs/${name}`);

/**
 * A schema file as a component: its refs (to its own parts, or to another file by
 * name) pointed inside the document, as OpenAPI tools resolve them.
 */
function bundled(component: string, schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map((s) => bundled(component, s));
  if (!schema || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === '$id' || k === '$schema' || k === 'tsType') continue;
    if (k === '$ref' && typeof v === 'string') {
      const [file, fragment = ''] = v.split('#');
      const target = file ? componentOf.get(file.split('/').pop()!) : component;
      if (!target) throw new Error(`the OpenAPI document cannot place ${v} (in ${component})`);
      out.$ref = `#/components/schemas/${target}${fragment}`;
    } else out[k] = bundled(component, v);
  }
  return out;
}
const json = (schema: Schema) => ({ 'application/json': { schema } });
const list = (key: string, item: Schema): Schema => ({ type: 'object', required: [key], properties: { [key]: { type: 'array', items: item } } });

interface Route {
  method: 'get' | 'post' | 'delete';
  path: string;
  summary: string;
  /** Who may call it; `public` needs no token. */
  scope: 'public' | 'jobs' | 'admin' | 'metrics' | 'any';
  params?: Array<{ name: string; in: 'path' | 'query'; schema: Schema; description?: string }>;
  body?: { type: string; schema: Schema };
  ok: { status: number; description: string; content?: Record<string, { schema: Schema }> };
  /** A WebSocket upgrade: answered 101 with the frames its description names. */
  websocket?: boolean;
}

const id = { name: 'id', in: 'path' as const, schema: { type: 'string', maxLength: 200 } };
const name = { name: 'name', in: 'path' as const, schema: def(agent, 'name') };
const tar = { 'application/x-tar': { schema: { type: 'string', contentMediaType: 'application/x-tar' } } };

/** Every route the hub serves, HTTP and WebSocket. */
export const ROUTES: Route[] = [
  {
    method: 'get',
    path: '/health',
    summary: "The engine's and the hub's health (network, warm pool, disk), from the hub's last background look (checkedAt)",
    scope: 'public',
    ok: { status: 200, description: 'healthy or degraded', content: json({ type: 'object' }) },
  },
  {
    method: 'get',
    path: '/metrics',
    summary: "Prometheus' text format",
    scope: 'metrics',
    ok: { status: 200, description: 'the metrics', content: { 'text/plain': { schema: { type: 'string' } } } },
  },
  {
    method: 'get',
    path: '/v1/openapi.json',
    summary: 'This description',
    scope: 'any',
    ok: { status: 200, description: 'OpenAPI 3.1', content: json({ type: 'object' }) },
  },

  {
    method: 'post',
    path: '/v1/jobs',
    summary: 'Submit a job (on a fresh container, or on a named agent)',
    scope: 'jobs',
    body: { type: 'application/json', schema: ref('JobRequest') },
    ok: { status: 201, description: 'queued', content: json(ref('JobView')) },
  },
  {
    method: 'get',
    path: '/v1/jobs',
    summary: "The caller's jobs, newest first",
    scope: 'jobs',
    params: [
      { name: 'state', in: 'query', schema: { type: 'string' }, description: 'states, comma-separated' },
      { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200 } },
      { name: 'cursor', in: 'query', schema: { type: 'string' } },
    ],
    ok: {
      status: 200,
      description: 'a page',
      content: json({
        type: 'object',
        required: ['jobs', 'next'],
        properties: { jobs: { type: 'array', items: ref('JobView') }, next: { type: ['string', 'null'] } },
      }),
    },
  },
  {
    method: 'get',
    path: '/v1/jobs/{id}',
    summary: 'A job',
    scope: 'jobs',
    params: [id],
    ok: { status: 200, description: 'the job', content: json(ref('JobView')) },
  },
  {
    method: 'get',
    path: '/v1/jobs/{id}/snapshot',
    summary: "The job's snapshot as a docker save tar",
    scope: 'jobs',
    params: [id],
    ok: { status: 200, description: 'the tar', content: tar },
  },
  {
    method: 'post',
    path: '/v1/jobs/{id}/cancel',
    summary: 'Cancel a job; what it printed is kept',
    scope: 'jobs',
    params: [id],
    ok: { status: 202, description: 'cancelling', content: json(ref('JobView')) },
  },
  {
    method: 'get',
    path: '/v1/jobs/{id}/events',
    summary: "WebSocket: the job's events from ?from=SEQ, then live",
    scope: 'jobs',
    params: [id, { name: 'from', in: 'query', schema: { type: 'integer', minimum: 1 } }],
    websocket: true,
    ok: { status: 101, description: 'one JSON text frame per JobEvent; closed with 1000 after the final status' },
  },
  {
    method: 'get',
    path: '/v1/jobs/{id}/shell',
    summary: "WebSocket (sub-protocol docker-agent.shell.v1): a shell in a running job's container",
    scope: 'jobs',
    params: [id],
    websocket: true,
    ok: { status: 101, description: 'binary frames: 0 stdin, 1 output, 3 exit, 4 resize (schemas/shell-frame.ts)' },
  },

  {
    method: 'post',
    path: '/v1/agents',
    summary: 'Create a named agent',
    scope: 'jobs',
    body: { type: 'application/json', schema: ref('AgentRequest') },
    ok: { status: 201, description: 'starting', content: json(ref('AgentView')) },
  },
  {
    method: 'get',
    path: '/v1/agents',
    summary: "The caller's agents",
    scope: 'jobs',
    ok: { status: 200, description: 'the agents', content: json(list('agents', ref('AgentView'))) },
  },
  {
    method: 'get',
    path: '/v1/agents/{name}',
    summary: 'An agent',
    scope: 'jobs',
    params: [name],
    ok: { status: 200, description: 'the agent', content: json(ref('AgentView')) },
  },
  {
    method: 'post',
    path: '/v1/agents/{name}/start',
    summary: 'Start a stopped agent',
    scope: 'jobs',
    params: [name],
    ok: { status: 202, description: 'starting', content: json(ref('AgentView')) },
  },
  {
    method: 'post',
    path: '/v1/agents/{name}/stop',
    summary: 'Stop an agent (its volume stays)',
    scope: 'jobs',
    params: [name],
    ok: { status: 200, description: 'stopped', content: json(ref('AgentView')) },
  },
  {
    method: 'post',
    path: '/v1/agents/{name}/snapshot',
    summary: 'Commit the agent with its /workspace',
    scope: 'jobs',
    params: [name],
    ok: { status: 201, description: 'the snapshot', content: json(ref('SnapshotView')) },
  },
  {
    method: 'delete',
    path: '/v1/agents/{name}',
    summary: 'Destroy an agent',
    scope: 'jobs',
    params: [name, { name: 'keepVolume', in: 'query', schema: { enum: ['true', 'false'] } }],
    ok: { status: 204, description: 'gone' },
  },
  {
    method: 'get',
    path: '/v1/agents/{name}/logs',
    summary: "The agent's lifecycle and its jobs' output as NDJSON",
    scope: 'jobs',
    params: [
      name,
      { name: 'tail', in: 'query', schema: { type: 'integer', minimum: 0, maximum: 10000 } },
      { name: 'follow', in: 'query', schema: { enum: ['1', 'true'] } },
    ],
    ok: { status: 200, description: 'one JobEvent per line', content: { 'application/x-ndjson': { schema: ref('JobEvent') } } },
  },
  {
    method: 'get',
    path: '/v1/agents/{name}/shell',
    summary: 'WebSocket (sub-protocol docker-agent.shell.v1): a shell in the agent',
    scope: 'jobs',
    params: [name],
    websocket: true,
    ok: { status: 101, description: 'binary frames: 0 stdin, 1 output, 3 exit, 4 resize (schemas/shell-frame.ts)' },
  },

  {
    method: 'get',
    path: '/v1/snapshots',
    summary: "The caller's snapshots",
    scope: 'jobs',
    ok: { status: 200, description: 'the snapshots', content: json(list('snapshots', ref('SnapshotView'))) },
  },
  {
    method: 'get',
    path: '/v1/snapshots/{id}',
    summary: 'A snapshot',
    scope: 'jobs',
    params: [id],
    ok: { status: 200, description: 'the snapshot', content: json(ref('SnapshotView')) },
  },
  {
    method: 'get',
    path: '/v1/snapshots/{id}/archive',
    summary: 'A snapshot as a docker save tar',
    scope: 'jobs',
    params: [id],
    ok: { status: 200, description: 'the tar', content: tar },
  },
  { method: 'delete', path: '/v1/snapshots/{id}', summary: 'Delete a snapshot', scope: 'jobs', params: [id], ok: { status: 204, description: 'gone' } },

  {
    method: 'post',
    path: '/v1/workspaces',
    summary: 'Upload a workspace archive (tar or gzipped tar)',
    scope: 'jobs',
    params: [{ name: 'strip', in: 'query', schema: { type: 'integer', minimum: 0, maximum: 100 } }],
    body: { type: 'application/gzip', schema: { type: 'string', contentMediaType: 'application/gzip' } },
    ok: {
      status: 201,
      description: 'stored',
      content: json({ type: 'object', required: ['id'], properties: { id: { type: 'string' }, bytes: { type: 'integer' }, entries: { type: 'integer' } } }),
    },
  },

  {
    method: 'get',
    path: '/v1/profiles',
    summary: 'The profiles and any broken profile files',
    scope: 'jobs',
    ok: { status: 200, description: 'the profiles', content: json({ type: 'object' }) },
  },
  {
    method: 'get',
    path: '/v1/profiles/{name}',
    summary: 'A profile',
    scope: 'jobs',
    params: [{ name: 'name', in: 'path', schema: { type: 'string', maxLength: 100 } }],
    ok: { status: 200, description: 'the profile', content: json({ type: 'object' }) },
  },
  {
    method: 'post',
    path: '/v1/profiles/validate',
    summary: 'Check a profile without saving it',
    scope: 'jobs',
    body: { type: 'application/json', schema: ref('Profile') },
    ok: { status: 200, description: 'valid', content: json({ type: 'object' }) },
  },

  {
    method: 'post',
    path: '/v1/tokens',
    summary: 'Create an API token (its secret shown once)',
    scope: 'admin',
    body: { type: 'application/json', schema: def(token, 'request') },
    ok: { status: 201, description: 'created', content: json(def(token, 'created')) },
  },
  {
    method: 'get',
    path: '/v1/tokens',
    summary: 'The API tokens (never their secrets)',
    scope: 'admin',
    ok: { status: 200, description: 'the tokens', content: json(list('tokens', ref('TokenView'))) },
  },
  {
    method: 'delete',
    path: '/v1/tokens/{id}',
    summary: 'Revoke a token (its streams end at once)',
    scope: 'admin',
    params: [id],
    ok: { status: 200, description: 'revoked', content: json(ref('TokenView')) },
  },

  {
    method: 'post',
    path: '/v1/session',
    summary: "Sign in to the dashboard with an API token: sets the session cookie (HttpOnly, SameSite=Strict); refused when posted from another site's page",
    scope: 'public',
    body: { type: 'application/json', schema: def(session, 'signIn') },
    ok: { status: 201, description: 'signed in; the answer has the CSRF token to send as X-CSRF-Token', content: json(ref('SessionView')) },
  },
  {
    method: 'get',
    path: '/v1/session',
    summary: "Who is calling, and the session's CSRF token",
    scope: 'any',
    ok: { status: 200, description: 'the caller', content: json(ref('SessionView')) },
  },
  {
    method: 'delete',
    path: '/v1/session',
    summary: 'Sign out: the session and its open streams end',
    scope: 'any',
    ok: { status: 204, description: 'signed out' },
  },
  {
    method: 'get',
    path: '/v1/live',
    summary:
      "The dashboard's live feed (server-sent events): `overview` when it changes; with ?job, that job's events as `job`; with ?agent, the agent's log as `agent-log`; `end` when the session or token stops working",
    scope: 'jobs',
    params: [
      { name: 'job', in: 'query', schema: { type: 'string', maxLength: 200 } },
      { name: 'agent', in: 'query', schema: def(agent, 'name') },
      { name: 'from', in: 'query', schema: { type: 'integer', minimum: 1 } },
    ],
    ok: {
      status: 200,
      description: 'an event stream; `job` and `agent-log` events carry a JobEvent with its seq as the SSE id',
      content: { 'text/event-stream': { schema: { type: 'string' } } },
    },
  },
  {
    method: 'get',
    path: '/v1/stats',
    summary: 'Task metrics: jobs per hour, success rate, duration p50/p95 per profile',
    scope: 'jobs',
    params: [{ name: 'hours', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 168 } }],
    ok: { status: 200, description: 'the metrics', content: json(ref('TaskStats')) },
  },
  {
    method: 'get',
    path: '/',
    summary: 'The dashboard (sign in with an API token)',
    scope: 'public',
    ok: { status: 200, description: 'the page', content: { 'text/html': { schema: { type: 'string' } } } },
  },
  {
    method: 'get',
    path: '/ui/{file}',
    summary: "The dashboard's script and styles",
    scope: 'public',
    params: [{ name: 'file', in: 'path', schema: { type: 'string', maxLength: 100 } }],
    ok: { status: 200, description: 'the file', content: { 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } },
  },

  {
    method: 'post',
    path: '/v1/maintenance/prune',
    summary: 'Remove ended jobs, stale images, old snapshots and uploads, orphaned containers',
    scope: 'admin',
    body: { type: 'application/json', schema: { type: 'object' } },
    ok: { status: 200, description: 'what was (or would be) removed', content: json({ type: 'object' }) },
  },
];

/** The error body every refusal has. */
const ERROR: Schema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'stable, e.g. VALIDATION_FAILED, JOB_NOT_FOUND, SCOPE_REQUIRED' },
        message: { type: 'string', description: 'what is wrong and what to do' },
        issues: {
          type: 'array',
          items: { type: 'object', required: ['path', 'message'], properties: { path: { type: 'string' }, message: { type: 'string' } } },
        },
      },
    },
  },
};

export function openApiDocument(serverUrl: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const responses: Record<string, unknown> = {
      [String(r.ok.status)]: { description: r.ok.description, ...(r.ok.content ? { content: r.ok.content } : {}) },
      '4XX': {
        description:
          'refused: a bad input (400, naming the path), no or a wrong token (401), a missing scope (403), not found or not yours (404), a conflict (409), too big (413), a limit (429)',
        content: json(ref('Error')),
      },
      '5XX': {
        description:
          "the hub or the engine failed, or cannot take it now: the engine does not answer, free space is below the floor (503 DISK_LOW), the disk under the hub's store is full (503 DISK_FULL)",
        content: json(ref('Error')),
      },
    };
    paths[r.path] ??= {};
    paths[r.path]![r.method] = {
      summary: r.summary,
      ...(r.websocket ? { description: 'A WebSocket upgrade (send Upgrade: websocket).' } : {}),
      ...(r.scope === 'public' ? { security: [] } : { 'x-scope': r.scope }),
      ...(r.params ? { parameters: r.params.map((p) => ({ ...p, required: p.in === 'path' })) } : {}),
      ...(r.body ? { requestBody: { required: true, content: { [r.body.type]: { schema: r.body.schema } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'docker-agent hub',
      version: '0.1.0',
      description:
        "Jobs and named agents in hardened containers. Every route but /health, the dashboard and the sign-in needs `Authorization: Bearer <token>`, or the dashboard's session cookie with X-CSRF-Token on anything that changes something; `x-scope` names the scope it needs (admin has all).",
    },
    servers: [{ url: serverUrl }],
    security: [{ bearer: [] }, { session: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API token of the hub, or a GitHub Actions OIDC token from an allowed repository' },
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: 'docker_agent_session',
          description: "The dashboard's sign-in (POST /v1/session); requests that change something also send X-CSRF-Token",
        },
      },
      schemas: {
        Error: ERROR,
        ...Object.fromEntries(Object.entries(FILES).map(([c, f]) => [c, bundled(c, f)])),
        AgentRequest: def(agent, 'request'),
        AgentView: def(agent, 'view'),
        SnapshotView: def(snapshot, 'view'),
      },
    },
  };
}
