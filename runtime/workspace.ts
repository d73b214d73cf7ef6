// The files a task brings: fetched from the hub over the runtime's own endpoint (the
// same Unix socket or URL its channel dials, with its session token) and unpacked
// into the task's folder by the image's tar as the runtime's own user (`-o`: files
// belong to whoever unpacks them, whatever the archive says). Nothing is written
// into the container from outside, so an engine that cannot (a Swarm service, a
// Kubernetes pod) gets the files the same way.
import { spawn } from 'node:child_process';
import type { IncomingMessage, RequestOptions } from 'node:http';
import { pipeline } from 'node:stream/promises';

const WORKSPACE_PATH = '/v1/agent/workspace';

/** Where GET /v1/agent/workspace is, from the channel's URL (`ws+unix:///sock:/v1/agent` or `ws[s]://host/…/v1/agent`). */
export function workspaceRequest(hubUrl: string, session: string): RequestOptions & { secure: boolean } {
  const headers = { authorization: `Bearer ${session}` };
  const unix = /^ws\+unix:\/\/(.+):(\/[^:]*)$/.exec(hubUrl);
  if (unix) return { socketPath: unix[1]!, path: WORKSPACE_PATH, headers, secure: false };
  const url = new URL(hubUrl.replace(/^ws/, 'http'));
  const path = url.pathname.replace(/\/v1\/agent\/?$/, '') + WORKSPACE_PATH;
  return { host: url.hostname, port: url.port || undefined, path, headers, secure: url.protocol === 'https:' };
}

/** Fetches the task's files and unpacks them into `dir`; rejects with what went wrong (HTTP status, tar's own words). */
export async function fetchWorkspace(hubUrl: string, session: string, dir: string): Promise<void> {
  const { secure, ...options } = workspaceRequest(hubUrl, session);
  // Loaded here, not at start: most tasks bring no files, and https (with tls) is for a hub on another host only.
  const { request } = secure ? await import('node:https') : await import('node:http');
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({ ...options, method: 'GET' }, resolve);
    req.on('error', reject);
    req.end();
  });
  if (res.statusCode !== 200) {
    res.resume();
    throw new Error(`the hub answered HTTP ${res.statusCode} for the workspace`);
  }
  const tar = spawn('tar', ['-xzof', '-', '-C', dir], { stdio: ['pipe', 'ignore', 'pipe'] });
  let said = '';
  tar.stderr.on('data', (d: Buffer) => (said = (said + d.toString()).slice(-1000)));
  const exited = new Promise<number>((resolve, reject) => {
    tar.on('error', (err) => reject(new Error(`cannot run tar: ${err.message}`)));
    tar.on('close', (code) => resolve(code ?? 1));
  });
  const copied = pipeline(res, tar.stdin).catch((err: Error) => err);
  const [code, copyError] = await Promise.all([exited, copied]);
  if (code !== 0) throw new Error(`tar exited with ${code}${said.trim() ? `: ${said.trim()}` : ''}`);
  if (copyError) throw new Error(`the workspace did not arrive whole: ${copyError.message}`);
  if (!res.complete) throw new Error('the workspace did not arrive whole: the hub closed the connection early');
}
