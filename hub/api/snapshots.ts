// /v1/snapshots: a principal's snapshots (of its agents, and of its jobs that asked
// for one), to list, download as a `docker save` tar, and delete. Someone else's
// is a 404 like a missing one; admin sees all.
import { Hono } from 'hono';
import { Readable } from 'node:stream';
import type { Snapshots } from '../snapshots/snapshots.js';
import { fullParam, needsScope, type HubEnv } from './env.js';

export function snapshotsRoutes(snapshots: Snapshots) {
  const app = new Hono<HubEnv>();
  app.use('*', needsScope('jobs', 'working with snapshots'));

  app.get('/', (c) => c.json({ snapshots: snapshots.list(c.get('principal')).map((s) => snapshots.view(s)) }));

  app.get('/:id', (c) => c.json(snapshots.view(snapshots.get(c.req.param('id'), c.get('principal')))));

  app.get('/:id/archive', async (c) => {
    const id = c.req.param('id');
    const archive = await snapshots.archive(id, c.get('principal'), { full: fullParam(c.req.query('full')) });
    return new Response(Readable.toWeb(Readable.from(archive)) as ReadableStream, {
      headers: { 'content-type': 'application/x-tar', 'content-disposition': `attachment; filename="docker-agent-snapshot-${id}.tar"` },
    });
  });

  app.delete('/:id', async (c) => {
    await snapshots.remove(c.req.param('id'), c.get('principal'));
    return c.body(null, 204);
  });

  return app;
}
