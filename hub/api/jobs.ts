// /v1/jobs: submit, look at, list and cancel jobs.
import { Hono } from 'hono';
import { Readable } from 'node:stream';
import type { JobState, JobView } from '../../schemas/types.gen.js';
import { HubError, validationError } from '../platform/errors.js';
import { ALL_STATES } from '../jobs/lifecycle.js';
import type { JobService } from '../jobs/service.js';
import type { AgentService } from '../agents/service.js';
import type { JobSummary } from '../store/jobs.js';
import { validateJobRequest } from '../platform/validation.js';
import { snapshotUrl, type Links } from '../platform/links.js';
import { readJson } from './body.js';
import { fullParam, needsScope, type HubEnv } from './env.js';

export function jobView(job: JobSummary, base: Links): JobView {
  return {
    id: job.id,
    state: job.state,
    profile: job.profile,
    owner: job.owner,
    createdAt: job.createdAt,
    startedAt: job.startedAt ?? null,
    endedAt: job.endedAt ?? null,
    exitCode: job.exitCode ?? null,
    reason: job.reason ?? null,
    timeout: job.spec.timeout,
    steps: job.steps,
    health: job.health ?? null,
    snapshot: job.snapshot ? { ...job.snapshot, url: snapshotUrl(job.id, base) } : null,
    node: job.node ?? null,
    links: {
      self: `${base.http}/v1/jobs/${job.id}`,
      events: `${base.ws}/v1/jobs/${job.id}/events`,
      cancel: `${base.http}/v1/jobs/${job.id}/cancel`,
    },
  };
}

export function jobsRoutes(jobs: JobService, agents: Pick<AgentService, 'submitJob'>, links: Links) {
  // Every route: a principal with the `jobs` scope, and only its own jobs (admin: all).
  const app = new Hono<HubEnv>();
  app.use('*', needsScope('jobs', 'working with jobs'));

  app.post('/', async (c) => {
    const parsed = validateJobRequest(await readJson(c));
    if (!parsed.ok) throw validationError('job request', parsed.issues);
    const req = parsed.value;
    // A job for a named agent is the agent's to take in: it runs with the agent's profile and env.
    const job = req.agent ? agents.submitJob({ ...req, agent: req.agent }, c.get('principal')) : jobs.submit(req, c.get('principal'));
    return c.json(jobView(job, links), 201);
  });

  app.get('/', (c) => {
    const states = c.req.query('state')?.split(',').filter(Boolean) ?? [];
    const unknown = states.filter((s) => !ALL_STATES.includes(s as JobState));
    if (unknown.length) {
      throw validationError('query', [{ path: 'state', message: `unknown state ${unknown.join(', ')}; expected ${ALL_STATES.join(', ')}` }]);
    }
    const limit = intParam(c.req.query('limit'), 'limit', 1, 200) ?? 50;
    const before = intParam(c.req.query('cursor'), 'cursor', 1, Number.MAX_SAFE_INTEGER);
    const page = jobs.list({ states: states as JobState[], limit: limit + 1, before }, c.get('principal'));
    const more = page.length > limit;
    const shown = page.slice(0, limit);
    return c.json({ jobs: shown.map((j) => jobView(j, links)), next: more ? String(shown.at(-1)!.seqNo) : null });
  });

  app.get('/:id', (c) => c.json(jobView(jobs.get(c.req.param('id'), c.get('principal')), links)));

  app.get('/:id/snapshot', async (c) => {
    const id = c.req.param('id');
    const archive = await jobs.snapshotArchive(id, c.get('principal'), { full: fullParam(c.req.query('full')) });
    return new Response(Readable.toWeb(Readable.from(archive)) as ReadableStream, {
      headers: { 'content-type': 'application/x-tar', 'content-disposition': `attachment; filename="docker-agent-snapshot-${id}.tar"` },
    });
  });

  app.post('/:id/cancel', async (c) => c.json(jobView(await jobs.cancel(c.req.param('id'), c.get('principal')), links), 202));

  return app;
}

function intParam(raw: string | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new HubError('VALIDATION_FAILED', `${name}=${raw}: expected an integer from ${min} to ${max}`, {
      issues: [{ path: name, message: `expected an integer from ${min} to ${max}` }],
    });
  }
  return n;
}
