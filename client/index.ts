// The one client of the hub's API, shared by the GitHub Action, the CLI and the
// tests: the HTTP calls of ./http.ts (which the dashboard uses in the browser), plus
// what needs Node: uploads and downloads as streams, and the event stream as an async
// iterator that reconnects with ?from= so nothing is missed or seen twice, and shells.
import { Readable } from 'node:stream';
import WebSocket from 'ws';
import { readShellFrame, SHELL_CHANNEL, SHELL_PROTOCOL, shellFrame, type ShellExit, type ShellSize } from '../schemas/shell-frame.js';
import { apiError, HubApiError, HubHttp, isFinalEvent, type JobEvent } from './http.js';

export * from './http.js';

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

export class HubClient extends HubHttp {
  /** Streams a tar (or gzipped tar) to the hub; its id goes into a job request's `workspace`. */
  uploadWorkspace(archive: Readable, contentType: 'application/gzip' | 'application/x-tar', opts: { strip?: number } = {}): Promise<WorkspaceUpload> {
    return this.request('POST', `/v1/workspaces${opts.strip ? `?strip=${opts.strip}` : ''}`, undefined, {
      body: Readable.toWeb(archive) as ReadableStream,
      contentType,
    });
  }

  /** A job's snapshot as a tar in `docker save` format: the layers it adds to its base, or with `full` the whole image. */
  async downloadSnapshot(jobId: string, opts: { full?: boolean } = {}): Promise<Readable> {
    const res = await fetch(`${this.base}/v1/jobs/${encodeURIComponent(jobId)}/snapshot${opts.full ? '?full=1' : ''}`, { headers: await this.authHeaders() });
    if (!res.ok || !res.body) throw apiError(res.status, await res.text());
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
  }

  /** An interactive shell in a running job's container (`{job}`) or a named agent's (`{agent}`); `onOutput` gets the terminal's bytes. */
  async shell(target: { job: string } | { agent: string }, size: ShellSize, onOutput: (data: Buffer) => void): Promise<ShellConnection> {
    const path = 'job' in target ? `jobs/${encodeURIComponent(target.job)}` : `agents/${encodeURIComponent(target.agent)}`;
    const url = `${this.base.replace(/^http/, 'ws')}/v1/${path}/shell?cols=${size.cols}&rows=${size.rows}`;
    const ws = new WebSocket(url, SHELL_PROTOCOL, { headers: await this.authHeaders() });
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
    const ws = new WebSocket(url, { headers: await this.authHeaders() });
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
}
