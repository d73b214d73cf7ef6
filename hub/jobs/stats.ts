// Task metrics for the dashboard and GET /v1/stats: jobs per hour, success rate and
// duration percentiles per profile, over a window of hours, from the jobs that ended
// in it. Computed from the store on demand: nothing to keep in step.
import type { TaskStats } from '../../schemas/types.gen.js';
import type { EndedJob } from '../store/jobs.js';

const HOUR_MS = 3_600_000;

/** The q-quantile (0..1) of sorted numbers, by the nearest rank; null for none. */
export function quantile(sorted: number[], q: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

const round = (n: number | null, places = 3) => (n === null ? null : Math.round(n * 10 ** places) / 10 ** places);

export function taskStats(jobs: EndedJob[], now: Date, hours: number): TaskStats {
  const end = Math.ceil(now.getTime() / HOUR_MS) * HOUR_MS;
  const start = end - hours * HOUR_MS;
  const perHour = Array.from({ length: hours }, (_, i) => ({ hour: new Date(start + i * HOUR_MS).toISOString(), ended: 0, succeeded: 0 }));
  const byProfile = new Map<string, { ended: number; succeeded: number; durations: number[] }>();
  for (const j of jobs) {
    const at = Date.parse(j.endedAt);
    const bucket = perHour[Math.floor((at - start) / HOUR_MS)];
    if (!bucket) continue;
    const ok = j.state === 'succeeded';
    bucket.ended++;
    if (ok) bucket.succeeded++;
    let p = byProfile.get(j.profile);
    if (!p) byProfile.set(j.profile, (p = { ended: 0, succeeded: 0, durations: [] }));
    p.ended++;
    if (ok) p.succeeded++;
    if (j.startedAt) p.durations.push((at - Date.parse(j.startedAt)) / 1000);
  }
  const profiles = [...byProfile]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([profile, p]) => {
      const sorted = p.durations.sort((a, b) => a - b);
      return {
        profile,
        ended: p.ended,
        succeeded: p.succeeded,
        successRate: round(p.ended ? p.succeeded / p.ended : null, 4),
        durationP50: round(quantile(sorted, 0.5)),
        durationP95: round(quantile(sorted, 0.95)),
      };
    });
  return { since: new Date(start).toISOString(), hours, jobsPerHour: perHour, profiles };
}
