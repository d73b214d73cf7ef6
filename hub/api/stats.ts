// GET /v1/stats?hours=24: task metrics (jobs per hour, success rate, duration p50/p95
// per profile) of the caller's jobs, everyone's for admin.
import { Hono } from 'hono';
import type { TaskStats } from '../../schemas/types.gen.js';
import { HubError } from '../platform/errors.js';
import { isAdmin, type Principal } from '../platform/principal.js';
import type { JobStore } from '../store/jobs.js';
import { taskStats } from '../jobs/stats.js';
import { needsScope, type HubEnv } from './env.js';

const MAX_HOURS = 168;
/** The newest ended jobs read for one answer: enough for any chart, bounded for a busy hub. */
const MAX_JOBS = 50_000;

export function statsOf(store: JobStore, p: Principal, hours = 24, now = new Date()): TaskStats {
  const since = new Date(now.getTime() - hours * 3_600_000).toISOString();
  return taskStats(store.endedSince(since, isAdmin(p) ? undefined : p.id, MAX_JOBS), now, hours);
}

/** How long one answer is reused for the same principal and window (the dashboard asks every few seconds). */
const CACHE_MS = 10_000;

/** Task metrics by principal, each computed at most once in CACHE_MS. */
export function cachedStats(store: JobStore): (p: Principal, hours?: number) => TaskStats {
  const cache = new Map<string, { at: number; stats: TaskStats }>();
  return (p, hours = 24) => {
    const key = `${p.id} ${isAdmin(p)} ${hours}`;
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.stats;
    // Old entries go as new ones come: the map holds at most the recent callers.
    for (const [k, v] of cache) if (Date.now() - v.at >= CACHE_MS) cache.delete(k);
    const stats = statsOf(store, p, hours);
    cache.set(key, { at: Date.now(), stats });
    return stats;
  };
}

export function statsRoutes(stats: (p: Principal, hours?: number) => TaskStats) {
  const app = new Hono<HubEnv>();
  app.use('*', needsScope('jobs', 'reading task metrics'));
  app.get('/', (c) => {
    const raw = c.req.query('hours') ?? '24';
    const hours = Number(raw);
    if (!Number.isInteger(hours) || hours < 1 || hours > MAX_HOURS) {
      throw new HubError('VALIDATION_FAILED', `hours=${raw}: expected an integer from 1 to ${MAX_HOURS}`, {
        issues: [{ path: 'hours', message: `expected an integer from 1 to ${MAX_HOURS}` }],
      });
    }
    return c.json(stats(c.get('principal'), hours));
  });
  return app;
}
