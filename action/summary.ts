// The Markdown the action writes to $GITHUB_STEP_SUMMARY: the outcome, a table of
// the steps, and the tail of a failing step's output.
import type { JobView } from '../schemas/types.gen.js';

export const ICON: Record<string, string> = {
  succeeded: '✅',
  failed: '❌',
  timed_out: '⏱️',
  cancelled: '🚫',
  skipped: '⏭️',
  error: '💥',
  pending: '·',
  running: '▶️',
};

export function fence(text: string): string {
  const ticks = '`'.repeat(Math.max(3, ...[...text.matchAll(/`+/g)].map((m) => m[0].length + 1)));
  return `${ticks}\n${text.replace(/\n$/, '')}\n${ticks}`;
}

/** Seconds from the container's start to the job's end, or – when it never started. */
export function seconds(job: JobView): string {
  return job.startedAt && job.endedAt ? ((Date.parse(job.endedAt) - Date.parse(job.startedAt)) / 1000).toFixed(1) : '–';
}

export function jobSummary(job: JobView, tails: Map<number, string>): string {
  const lines = [
    `### ${ICON[job.state] ?? ''} docker-agent job ${job.state}`,
    '',
    `Job \`${job.id}\` on profile \`${job.profile}\`: exit code ${job.exitCode ?? '–'}, ${seconds(job)} s.${job.reason ? ` ${job.reason}.` : ''}`,
    '',
    '| step | result | exit code | duration |',
    '| --- | --- | --- | --- |',
    ...job.steps.map(
      (s) =>
        `| ${s.name.replace(/\|/g, '\\|')} | ${ICON[s.state] ?? ''} ${s.state} | ${s.exitCode ?? '–'} | ${s.durationMs !== undefined ? `${(s.durationMs / 1000).toFixed(1)} s` : '–'} |`,
    ),
  ];
  const failing = job.steps.findIndex((s) => s.state === 'failed' || s.state === 'timed_out');
  if (failing >= 0 && tails.get(failing)) {
    lines.push('', `<details open><summary>Last lines of ${job.steps[failing]!.name}</summary>`, '', fence(tails.get(failing)!), '', '</details>');
  }
  return lines.join('\n') + '\n';
}
