// The one client of the hub's API, shared by the GitHub Action, the CLI and the
// tests: typed calls over HTTP, and the event stream as an async iterator that
// reconnects with ?from= so nothing is missed or seen twice.
import { Readable } from 'node:stream';
import WebSocket from 'ws';
import type { AgentRequest, AgentView, SnapshotView, CreatedToken, JobEvent, JobRequest, JobState, JobView, TokenRequest, TokenScope, TokenView } from '../schemas/types.gen.js';
import { readShellFrame, SHELL_CHANNEL, SHELL_PROTOCOL, shellFrame, type ShellExit, type ShellSize } from '../schemas/shell-frame.js';

export type { AgentRequest, AgentView, SnapshotView, CreatedToken, JobEvent, JobRequest, JobState, JobView, TokenRequest, TokenScope, TokenView };

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
  /** An API token, or a function giving a current one (OIDC tokens expire within minutes). */
  token: string | (() => Promise<string>);
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

export interface WorkspaceUpload {
  id: string;
  bytes: number;
  entries: number;
}

/** An open shell (see schemas/shell-frame.ts): bytes in and out, the window size, the exit code. */
export interface ShellConnection {
  write(data: Buffer | string): void;
  resize(size: ShellSize): void;
  /** Ends the shell (hangs up its terminal). */
  close(): void;
  /** The shell's exit code; rejects when the connection breaks first. */
  readonly exited: Promise<number>;
}

export interface EventOptions {
  /** First seq wanted (default 1: everything). */
  from?: number;
  /** Reconnect after a dropped stream (default true). */
  reconnect?: boolean;
  signal?: AbortSignal;
}

const TERMINAL: JobState[] = ['succeeded', 'failed', 'timed_out', 'cancelled', 'error'];

/** A state a job never leaves. */
export function isEndState(state: JobState): boolean {
  return TERMINAL.includes(state);
}

export function isFinalEvent(e: JobEvent): boolean {
  return e.type === 'status' && isEndState(e.state);
}

export class HubClient {
  private readonly base: string;

  constructor(private readonly opts: HubClientOptions) {
    this.base = opts.url.replace(/\/$/, '');
  }

  private async token(): Promise<string> {
    return typeof this.opts.token === 'string' ? this.opts.token : this.opts.token();
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

  /** Streams a tar (or gzipped tar) to the hub; its id goes into a job request's `workspace`. */
  uploadWorkspace(archive: Readable, contentType: 'application/gzip' | 'application/x-tar', opts: { strip?: number } = {}): Promise<WorkspaceUpload> {
    return this.request('POST', `/v1/workspaces${opts.strip ? `?strip=${opts.strip}` : ''}`, undefined, { stream: archive, contentType });
  }

  /** A job's snapshot as a tar in `docker save` format: the layers it adds to its base, or with `full` the whole image. */
  async downloadSnapshot(jobId: string, opts: { full?: boolean } = {}): Promise<Readable> {
    const res = await fetch(`${this.base}/v1/jobs/${encodeURIComponent(jobId)}/snapshot${opts.full ? '?full=1' : ''}`, { headers: { authorization: `Bearer ${await this.token()}` } });
    if (!res.ok || !res.body) throw apiError(res.status, await res.text());
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
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
        headers: { authorization: `Bearer ${await this.token()}` },
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

  /** An interactive shell in a running job's container (`{job}`) or a named agent's (`{agent}`); `onOutput` gets the terminal's bytes. */
  async shell(target: { job: string } | { agent: string }, size: ShellSize, onOutput: (data: Buffer) => void): Promise<ShellConnection> {
    const path = 'job' in target ? `jobs/${encodeURIComponent(target.job)}` : `agents/${encodeURIComponent(target.agent)}`;
    const url = `${this.base.replace(/^http/, 'ws')}/v1/${path}/shell?cols=${size.cols}&rows=${size.rows}`;
    const ws = new WebSocket(url, SHELL_PROTOCOL, { headers: { authorization: `Bearer ${await this.token()}` } });
    let exit: ShellExit | undefined;
    const exited = new Promise<number>((resolve, reject) => {
      ws.on('close', (code, reason) => {
        if (exit && 'exitCode' in exit) resolve(exit.exitCode);
        else reject(new Error(exit && 'error' in exit ? exit.error : `the shell's connection closed (${code}${reason.length ? ` ${reason}` : ''})`));
      });
    });
    // A caller that awaits only the open must not see an unhandled rejection.
    exited.catch(() => {});
    ws.on('message', (data: Buffer) => {
      const { channel, body } = readShellFrame(data);
      if (channel === SHELL_CHANNEL.output) onOutput(body);
      else if (channel === SHELL_CHANNEL.exit) exit = JSON.parse(body.toString('utf8')) as ShellExit;
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', (err) => reject(new Error(`cannot reach the hub at ${this.base}: ${err.message}`)));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => reject(apiError(res.statusCode ?? 0, body)));
      });
    });
    ws.on('error', () => {});
    return {
      write: (data) => ws.send(shellFrame(SHELL_CHANNEL.stdin, Buffer.from(data))),
      resize: (s) => ws.send(shellFrame(SHELL_CHANNEL.resize, s)),
      close: () => ws.close(1000),
      exited,
    };
  }

  /** Sends a request as it is given (for callers that test the API's edges). */
  async raw(method: string, path: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    return fetch(`${this.base}${path}`, {
      method,
      body: init.body,
      headers: { authorization: `Bearer ${await this.token()}`, 'content-type': 'application/json', ...init.headers },
    });
  }

  /** The job's events from `from` on, live, ending after the final one. */
  async *events(jobId: string, opts: EventOptions = {}): AsyncGenerator<JobEvent> {
    let next = opts.from ?? 1;
    let attempt = 0;
    for (;;) {
      let sawAny = false;
      try {
        for await (const e of this.eventsOnce(jobId, next, opts.signal)) {
          sawAny = true;
          next = e.seq + 1;
          yield e;
          if (isFinalEvent(e)) return;
        }
        // The hub closes the stream only after the final event; anything else is a drop.
      } catch (err) {
        if (err instanceof HubApiError && err.status < 500) throw err;
        if (opts.reconnect === false || opts.signal?.aborted) throw err;
      }
      if (opts.reconnect === false) return;
      if (opts.signal?.aborted) throw opts.signal.reason;
      attempt = sawAny ? 0 : attempt + 1;
      if (attempt > 8) throw new Error(`event stream of job ${jobId} keeps dropping; last seq seen ${next - 1}`);
      await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt) * Math.random()));
    }
  }

  private async *eventsOnce(jobId: string, from: number, signal?: AbortSignal): AsyncGenerator<JobEvent> {
    const url = `${this.base.replace(/^http/, 'ws')}/v1/jobs/${encodeURIComponent(jobId)}/events?from=${from}`;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${await this.token()}` } });
    const queue: JobEvent[] = [];
    let done = false;
    let failure: Error | undefined;
    let wake = () => {};
    const onAbort = () => ws.terminate();
    signal?.addEventListener('abort', onAbort);
    ws.on('message', (data) => {
      queue.push(JSON.parse(data.toString()) as JobEvent);
      // Let the hub feel our pace: stop reading while the caller is behind.
      if (queue.length > 256) ws.pause();
      wake();
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => {
        failure = apiError(res.statusCode ?? 0, body);
        done = true;
        wake();
      });
    });
    ws.on('error', (err) => {
      failure ??= err;
      wake();
    });
    ws.on('close', () => {
      done = true;
      wake();
    });
    try {
      for (;;) {
        if (queue.length) {
          yield queue.shift()!;
          if (queue.length < 64) ws.resume();
          continue;
        }
        if (failure) throw failure;
        if (done) return;
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.terminate();
    }
  }

  /** A JSON request, or with `upload`, a streamed body of that type; the JSON answer. */
  private async request<T>(method: string, path: string, body?: unknown, upload?: { stream: Readable; contentType: string }): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${await this.token()}`,
          ...(upload ? { 'content-type': upload.contentType } : body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(upload
          ? { body: Readable.toWeb(upload.stream) as ReadableStream, duplex: 'half' }
          : { body: body === undefined ? undefined : JSON.stringify(body) }),
      } as RequestInit);
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new Error(`cannot reach the hub at ${this.base}: ${cause}`);
    }
    const text = await res.text();
    if (!res.ok) throw apiError(res.status, text);
    // 204 No Content (a destroyed agent, a revoked token) has no body.
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

function apiError(status: number, body: string): HubApiError {
  try {
    const { error } = JSON.parse(body) as { error: { code: string; message: string } & Record<string, unknown> };
    const { code, message, ...details } = error;
    return new HubApiError(status, code, message, details);
  } catch {
    return new HubApiError(status, 'HTTP_ERROR', `hub answered ${status}: ${body.slice(0, 200)}`);
  }
}
