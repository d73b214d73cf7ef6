// POST /v1/workspaces: a tar (Content-Type application/x-tar) or gzipped tar
// (application/gzip) streamed to disk as it arrives; the answer's id goes into a
// job request's `workspace`. `?strip=N` drops the first N folders of every path,
// as archives of a commit keep everything in one top folder. Uploads in flight are
// counted (each holds a temp file and a stream), and what each principal keeps is
// within its storage budget.
import { Hono } from 'hono';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { HubError } from '../platform/errors.js';
import type { WorkspaceStore } from '../workspaces/uploads.js';
import type { WorkspaceOwners } from '../store/workspace-owners.js';
import type { StorageBudget } from '../store/storage-budget.js';
import { describe, requireScope } from '../platform/principal.js';
import type { HubEnv } from './env.js';

/** One principal's uploads at once: the hub's share (DOCKER_AGENT_MAX_UPLOADS) is for everyone. */
export const UPLOADS_PER_PRINCIPAL = 2;

export interface WorkspacesDeps {
  workspaces: WorkspaceStore;
  workspaceOwners: WorkspaceOwners;
  budget: StorageBudget;
  maxWorkspaceBytes: number;
  maxUploads: number;
}

export function workspacesRoutes({ workspaces, workspaceOwners: owners, budget, maxWorkspaceBytes: maxBytes, maxUploads }: WorkspacesDeps) {
  const app = new Hono<HubEnv>();
  const inFlight = new Map<string, number>();
  let total = 0;
  app.post('/', async (c) => {
    const principal = c.get('principal');
    // Only principals that may submit jobs may upload what jobs start from.
    requireScope(principal, 'jobs', 'uploading a workspace');
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
    const mine = inFlight.get(principal.id) ?? 0;
    if (mine >= UPLOADS_PER_PRINCIPAL) {
      throw new HubError(
        'LIMIT_REACHED',
        `${describe(principal)} already has ${mine} uploads under way, the most one principal may have; send the next when one ends`,
        {
          limit: 'uploads per principal',
          max: UPLOADS_PER_PRINCIPAL,
        },
      );
    }
    if (total >= maxUploads) {
      throw new HubError(
        'LIMIT_REACHED',
        `this hub takes ${maxUploads} uploads at once (DOCKER_AGENT_MAX_UPLOADS), and that many are under way; try again shortly`,
        {
          limit: 'DOCKER_AGENT_MAX_UPLOADS',
          max: maxUploads,
        },
      );
    }
    // Declared sizes are checked before a byte is read; what is stored, after (a chunked upload declares none).
    budget.check(principal.id, describe(principal), declared, 'a workspace');
    inFlight.set(principal.id, mine + 1);
    total++;
    let saved;
    try {
      saved = await workspaces.save(Readable.fromWeb(body as NodeReadableStream), c.req.header('content-type'), { strip });
    } finally {
      total--;
      const left = (inFlight.get(principal.id) ?? 1) - 1;
      if (left > 0) inFlight.set(principal.id, left);
      else inFlight.delete(principal.id);
    }
    // Stored once by content; each principal that sent it owns it (and keeps its bytes).
    if (!owners.owns(saved.id, principal.id)) budget.check(principal.id, describe(principal), saved.bytes, 'a workspace');
    owners.add(saved.id, principal.id, saved.bytes);
    return c.json(saved, 201);
  });
  return app;
}
