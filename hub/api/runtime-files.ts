// The runtime's HTTP endpoint beside its channel (GET /v1/agent/workspace): the
// files its task brings, as the stored gzipped tar. It answers a runtime's current
// session token only (sandboxes/registry.ts), on the agent socket, and on the
// public port only when runtimes are told to dial it there.
import { Hono } from 'hono';
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { parseBearer } from '../auth/authenticator.js';
import { HubError } from '../platform/errors.js';
import { answerErrors } from './env.js';

export interface RuntimeFiles {
  workspace(token: string): string;
}

export function runtimeFilesRoutes(sandboxes: RuntimeFiles): Hono {
  const app = new Hono();
  app.get('/v1/agent/workspace', (c) => {
    const token = parseBearer(c.req.header('authorization'));
    if (!token) throw new HubError('UNAUTHORIZED', 'the workspace needs an agent session token');
    const archive = sandboxes.workspace(token);
    const size = statSync(archive).size;
    const body = Readable.toWeb(createReadStream(archive)) as ReadableStream;
    return c.body(body, 200, { 'content-type': 'application/gzip', 'content-length': String(size) });
  });
  answerErrors(app, ' on the agent endpoint');
  return app;
}
