// POST /v1/workspaces: a tar (Content-Type application/x-tar) or gzipped tar
// (application/gzip) streamed to disk as it arrives; the answer's id goes into a
// job request's `workspace`. `?strip=N` drops the first N folders of every path,
// as archives of a commit keep everything in one top folder.
import { Hono } from 'hono';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { HubError } from '../platform/errors.js';
import type { WorkspaceStore } from '../workspaces/uploads.js';
import type { WorkspaceOwners } from '../store/workspace-owners.js';
import { requireScope } from '../platform/principal.js';
import type { HubEnv } from './env.js';

export function workspacesRoutes(workspaces: WorkspaceStore, owners: WorkspaceOwners, maxBytes: number) {
  const app = new Hono<HubEnv>();
  app.post('/', async (c) => {
    // Only principals that may submit jobs may upload what jobs start from.
    requireScope(c.get('principal'), 'jobs', 'uploading a workspace');
    const declared = Number(c.req.header('content-length') ?? 0);
    if (declared > maxBytes) {
      throw new HubError('BODY_TOO_LARGE', `the workspace is ${declared} bytes; this hub takes up to ${maxBytes} (DOCKER_AGENT_MAX_WORKSPACE_BYTES)`);
    }
    const body = c.req.raw.body;
    if (!body) throw new HubError('VALIDATION_FAILED', 'the request has no body: send the workspace as a tar archive');
    const strip = Number(c.req.query('strip') ?? 0);
    if (!Number.isInteger(strip) || strip < 0 || strip > 16) {
      throw new HubError('VALIDATION_FAILED', `strip=${c.req.query('strip')}: expected how many leading folders to drop from each path, 0 to 16`);
    }
    const saved = await workspaces.save(Readable.fromWeb(body as NodeReadableStream), c.req.header('content-type'), { strip });
    // Stored once by content; each principal that sent it owns it.
    owners.add(saved.id, c.get('principal').id);
    return c.json(saved, 201);
  });
  return app;
}
