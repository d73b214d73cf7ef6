// Task metrics from ended jobs: hourly buckets, success rate, nearest-rank percentiles.
import { describe, expect, it } from 'vitest';
import { quantile, taskStats } from '../../hub/jobs/stats.js';
import type { EndedJob } from '../../hub/store/jobs.js';

const now = new Date('2026-12-01T15:30:00Z');
const job = (profile: string, state: EndedJob['state'], endedAt: string, seconds: number | null): EndedJob => ({
  profile,
  state,
  endedAt,
  startedAt: seconds === null ? null : new Date(Date.parse(endedAt) - seconds * 1000).toISOString(),
});

describe('taskStats', () => {
  it('counts jobs per hour, success rate and duration percentiles per profile', () => {
    const s = taskStats(
      [
        job('default', 'succeeded', '2026-12-01T15:10:00Z', 1),
        job('default', 'failed', '2026-12-01T15:20:00Z', 3),
        job('default', 'succeeded', '2026-12-01T14:05:00Z', 2),
        job('default', 'succeeded', '2026-12-01T13:59:00Z', 10),
        // Cancelled before it started: counted as ended, with no duration.
        job('tester', 'cancelled', '2026-12-01T15:00:00Z', null),
        // Outside the window.
        job('default', 'succeeded', '2026-11-29T10:00:00Z', 100),
      ],
      now,
      3,
    );
    expect(s.since).toBe('2026-12-01T13:00:00.000Z');
    expect(s.jobsPerHour).toEqual([
      { hour: '2026-12-01T13:00:00.000Z', ended: 1, succeeded: 1 },
      { hour: '2026-12-01T14:00:00.000Z', ended: 1, succeeded: 1 },
      { hour: '2026-12-01T15:00:00.000Z', ended: 3, succeeded: 1 },
    ]);
    expect(s.profiles).toEqual([
      { profile: 'default', ended: 4, succeeded: 3, successRate: 0.75, durationP50: 2, durationP95: 10 },
      { profile: 'tester', ended: 1, succeeded: 0, successRate: 0, durationP50: null, durationP95: null },
    ]);
  });

  it('takes percentiles by the nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantile(xs, 0.5)).toBe(50);
    expect(quantile(xs, 0.95)).toBe(95);
    expect(quantile([7], 0.95)).toBe(7);
    expect(quantile([], 0.5)).toBeNull();
  });
});
