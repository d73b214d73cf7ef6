// The one client of the hub's HTTP API, for every caller that has fetch: the
// GitHub Action, the CLI, the tests and the dashboard in the browser. It signs its
// requests with a bearer token, or, in the dashboard, relies on the browser's session
// cookie and sends the session's CSRF token. Node-only parts (uploads and downloads
// as streams, the event and shell WebSockets) are in ./index.ts.
import type {
  AgentRequest,
  AgentView,
  SnapshotView,
  CreatedToken,
  JobEvent,
  JobRequest,
  JobState,
  JobView,
  SessionView,
  TaskStats,
  TokenRequest,
  TokenScope,
  TokenView,
} from '../schemas/types.gen.js';

export type {
  AgentRequest,
  AgentView,
  SnapshotView,
  CreatedToken,
  JobEvent,
  JobRequest,
  JobState,
  JobView,
  SessionView,
  TaskStats,
  TokenRequest,
  TokenScope,
  TokenView,
};

export class HubApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HubApiError';
  }
}

export interface HubClientOptions {
  url: string;
  /** An API token, or a function giving a current one (OIDC tokens expire within minutes); none in the dashboard, where the session cookie goes instead. */
  token?: string | (() => Promise<string>);
  /** The dashboard's session CSRF token, sent on every request that is not a read. */
  csrf?: () => string | null;
}

export interface PruneOptions {
  jobsOlderThan?: number;
  keepJobs?: number;
  imagesOlderThan?: number;
  maxImageBytes?: number;
  snapshotsOlderThan?: number;
  maxSnapshotBytes?: number;
  workspacesOlderThan?: number;
  reapContainers?: boolean;
  dryRun?: boolean;
}

export interface PruneResult {
  dryRun: boolean;
  removed: { jobs: string[]; images: string[]; containers: string[]; snapshots: string[]; workspaces: string[] };
}

const TERMINAL: JobState[] = ['succeeded', 'failed', 'timed_out', 'cancelled', 'error'];

/** A state a job never leaves. */
export function isEndState(state: JobState): boolean {
  return TERMINAL.includes(state);
}

export function isFinalEvent(e: JobEvent): boolean {
  return e.type === 'status' && isEndState(e.state);
}

export class HubHttp {
  protected readonly base: string;

  constructor(protected readonly opts: HubClientOptions) {
    this.base = opts.url.replace(/\/$/, '');
  }

  /** How this client proves who it is on a request of `method`. */
  protected async authHeaders(method = 'GET'): Promise<Record<string, string>> {
    if (this.opts.token !== undefined) return { authorization: `Bearer ${typeof this.opts.token === 'string' ? this.opts.token : await this.opts.token()}` };
    const csrf = method === 'GET' ? null : this.opts.csrf?.();
    return csrf ? { 'x-csrf-token': csrf } : {};
  }

  health(): Promise<{ status: string; engine: Record<string, unknown> }> {
    return this.request('GET', '/health');
  }
  createJob(req: JobRequest): Promise<JobView> {
    return this.request('POST', '/v1/jobs', req);
  }
  getJob(id: string): Promise<JobView> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}`);
  }
  listJobs(q: { state?: JobState[]; limit?: number; cursor?: string } = {}): Promise<{ jobs: JobView[]; next: string | null }> {
    const params = new URLSearchParams();
    if (q.state?.length) params.set('state', q.state.join(','));
    if (q.limit) params.set('limit', String(q.limit));
    if (q.cursor) params.set('cursor', q.cursor);
    const qs = params.toString();
    return this.request('GET', `/v1/jobs${qs ? `?${qs}` : ''}`);
  }
  cancelJob(id: string): Promise<JobView> {
    return this.request('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`);
  }
  /** Asks the hub to remove ended jobs, unused images, old snapshots and uploads, and orphaned containers. */
  prune(opts: PruneOptions = {}): Promise<PruneResult> {
    return this.request('POST', '/v1/maintenance/prune', opts);
  }
  /** A new API token (admin only); its secret is in this answer and nowhere else. */
  createToken(req: TokenRequest): Promise<CreatedToken> {
    return this.request('POST', '/v1/tokens', req);
  }
  /** Every API token of the hub, without secrets (admin only). */
  listTokens(): Promise<{ tokens: TokenView[] }> {
    return this.request('GET', '/v1/tokens');
  }
  /** Ends a token at once, its open event streams included (admin only). */
  revokeToken(id: string): Promise<TokenView> {
    return this.request('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
  }
  createAgent(req: AgentRequest): Promise<AgentView> {
    return this.request('POST', '/v1/agents', req);
  }
  getAgent(name: string): Promise<AgentView> {
    return this.request('GET', `/v1/agents/${encodeURIComponent(name)}`);
  }
  async listAgents(): Promise<AgentView[]> {
    return (await this.request<{ agents: AgentView[] }>('GET', '/v1/agents')).agents;
  }
  startAgent(name: string): Promise<AgentView> {
    return this.request('POST', `/v1/agents/${encodeURIComponent(name)}/start`);
  }
  stopAgent(name: string): Promise<AgentView> {
    return this.request('POST', `/v1/agents/${encodeURIComponent(name)}/stop`);
  }
  async destroyAgent(name: string, opts: { keepVolume?: boolean } = {}): Promise<void> {
    await this.request('DELETE', `/v1/agents/${encodeURIComponent(name)}${opts.keepVolume ? '?keepVolume=true' : ''}`);
  }
  /** Commits an agent, with its /workspace, as a snapshot new agents and jobs can start from (`from: {snapshot: id}`). */
  snapshotAgent(name: string): Promise<SnapshotView> {
    return this.request('POST', `/v1/agents/${encodeURIComponent(name)}/snapshot`);
  }
  async listSnapshots(): Promise<SnapshotView[]> {
    return (await this.request<{ snapshots: SnapshotView[] }>('GET', '/v1/snapshots')).snapshots;
  }
  async deleteSnapshot(id: string): Promise<void> {
    await this.request('DELETE', `/v1/snapshots/${encodeURIComponent(id)}`);
  }
  /** An agent's log (its lifecycle and its jobs' output): the newest `tail` events, then with `follow` what comes, until `signal` aborts. */
  async *agentLogs(name: string, opts: { tail?: number; follow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<JobEvent> {
    const q = new URLSearchParams();
    if (opts.tail !== undefined) q.set('tail', String(opts.tail));
    if (opts.follow) q.set('follow', '1');
    let res: Response;
    try {
      res = await fetch(`${this.base}/v1/agents/${encodeURIComponent(name)}/logs?${q}`, {
        headers: await this.authHeaders(),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      if (opts.signal?.aborted) return;
      throw new Error(`cannot reach the hub at ${this.base}: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`);
    }
    if (!res.ok || !res.body) throw apiError(res.status, await res.text());
    let buffered = '';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) if (line) yield JSON.parse(line) as JobEvent;
      }
    } catch (err) {
      if (!opts.signal?.aborted) throw err;
    }
  }
  /** Sends a request as it is given (for callers that test the API's edges). */
  async raw(method: string, path: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    return fetch(`${this.base}${path}`, {
      method,
      body: init.body,
      headers: { ...(await this.authHeaders(method)), 'content-type': 'application/json', ...init.headers },
    });
  }

  /** Who is calling; in the dashboard, also the session's CSRF token. */
  session(): Promise<SessionView> {
    return this.request('GET', '/v1/session');
  }

  /** Trades an API token for a dashboard session (the browser keeps its cookie). */
  signIn(token: string): Promise<SessionView> {
    return this.request('POST', '/v1/session', { token });
  }

  async signOut(): Promise<void> {
    await this.request('DELETE', '/v1/session');
  }

  /** Task metrics over the last `hours`. */
  stats(hours = 24): Promise<TaskStats> {
    return this.request('GET', `/v1/stats?hours=${hours}`);
  }

  /** A JSON request, or with `upload` a body of that type as it is; the JSON answer. */
  protected async request<T>(method: string, path: string, body?: unknown, upload?: { body: BodyInit; contentType: string }): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          ...(await this.authHeaders(method)),
          ...(upload ? { 'content-type': upload.contentType } : body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        // A streamed upload is sent as it is read (Node's fetch asks for half duplex).
        ...(upload ? { body: upload.body, duplex: 'half' } : { body: body === undefined ? undefined : JSON.stringify(body) }),
      } as RequestInit);
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new Error(`cannot reach the hub at ${this.base || 'this page'}: ${cause}`);
    }
    const text = await res.text();
    if (!res.ok) throw apiError(res.status, text);
    // 204 No Content (a destroyed agent, a revoked token) has no body.
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

export function apiError(status: number, body: string): HubApiError {
  try {
    const { error } = JSON.parse(body) as { error: { code: string; message: string } & Record<string, unknown> };
    const { code, message, ...details } = error;
    return new HubApiError(status, code, message, details);
  } catch {
    return new HubApiError(status, 'HTTP_ERROR', `hub answered ${status}: ${body.slice(0, 200)}`);
  }
}
