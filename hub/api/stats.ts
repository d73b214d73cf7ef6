// GET /v1/stats?hours=24: task metrics (jobs per hour, success rate, duration p50/p95
// per profile) of the caller's jobs, everyone's for admin.
import { Hono } from 'hono';
import type { TaskStats } from '../../schemas/types.gen.js';
import { HubError } from '../errors.js';
import { isAdmin, type Principal } from '../principal.js';
import type { JobStore } from '../store/jobs.js';
import { taskStats } from '../stats.js';
import { needsScope, type HubEnv } from './env.js';

const MAX_HOURS = 168;
/** The newest ended jobs read for one answer: enough for any chart, bounded for a busy hub. */
const MAX_JOBS = 50_000;

export function statsOf(store: JobStore, p: Principal, hours = 24, now = new Date()): TaskStats {
  const since = new Date(now.getTime() - hours * 3_600_000).toISOString();
  return taskStats(store.endedSince(since, isAdmin(p) ? undefined : p.id, MAX_JOBS), now, hours);
}

export function statsRoutes(store: JobStore) {
  const app = new Hono<HubEnv>();
  app.use('*', needsScope('jobs', 'reading task metrics'));
  app.get('/', (c) => {
    const raw = c.req.query('hours') ?? '24';
    const hours = Number(raw);
    if (!Number.isInteger(hours) || hours < 1 || hours > MAX_HOURS) {
      throw new HubError('VALIDATION_FAILED', `hours=${raw}: expected an integer from 1 to ${MAX_HOURS}`, { issues: [{ path: 'hours', message: `expected an integer from 1 to ${MAX_HOURS}` }] });
    }
    return c.json(statsOf(store, c.get('principal'), hours));
  });
  return app;
}
