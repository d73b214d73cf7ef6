// The action's main step: inputs → run the job on the hub → outputs, summary and
// the job's exit code as the step's.
import * as core from '@actions/core';
import { HubClient } from '../client/index.js';
import { readMaintenanceSettings, readMode, readSettings } from './inputs.js';
import { runJob } from './run-job.js';
import { jobSummary } from './summary.js';

/** The runner cancels a step with SIGINT, then SIGTERM: cancel the job on the hub at once. */
function cancelOnSignal(client: HubClient, jobId: () => string | undefined): void {
  const cancel = (signal: string) => {
    const id = jobId();
    core.info(`docker-agent: ${signal}: cancelling job ${id ?? '(not yet created)'}`);
    if (!id) process.exit(1);
    client
      .cancelJob(id)
      .catch((err) => core.warning(`cancelling job ${id} failed: ${err.message}`))
      .finally(() => process.exit(1));
  };
  process.once('SIGINT', () => cancel('SIGINT'));
  process.once('SIGTERM', () => cancel('SIGTERM'));
}

/** Scheduled maintenance: the hub prunes and says what it removed. */
async function maintenance(): Promise<void> {
  const settings = readMaintenanceSettings();
  core.setSecret(settings.token);
  const client = new HubClient({ url: settings.hubUrl, token: settings.token });
  const { removed, dryRun } = await client.prune(settings.prune);
  const verb = dryRun ? 'would remove' : 'removed';
  const counts = Object.entries(removed).map(([what, list]) => `${list.length} ${what}`);
  core.info(`docker-agent maintenance: ${verb} ${counts.join(', ')}`);
  for (const [what, list] of Object.entries(removed)) for (const item of list) core.info(`  ${what}: ${item}`);
  core.setOutput('removed', JSON.stringify(removed));
  if (process.env.GITHUB_STEP_SUMMARY) {
    await core.summary.addRaw(`### 🧹 docker-agent maintenance\n\nThe hub ${verb} ${counts.join(', ')}.\n`).write();
  }
}

async function main(): Promise<void> {
  if (readMode() === 'maintenance') return maintenance();
  const settings = readSettings();
  core.setSecret(settings.token);
  for (const s of settings.secrets) core.setSecret(s);
  const client = new HubClient({ url: settings.hubUrl, token: settings.token });
  let jobId: string | undefined;
  cancelOnSignal(client, () => jobId);

  const { job, tails } = await runJob(client, settings.request, {
    onCreated: (j) => {
      jobId = j.id;
      core.saveState('job-id', j.id);
      core.setOutput('job-id', j.id);
      core.info(`docker-agent: job ${j.id} queued on ${settings.hubUrl}`);
    },
  });
  core.saveState('finished', 'true');
  const duration = job.startedAt && job.endedAt ? (Date.parse(job.endedAt) - Date.parse(job.startedAt)) / 1000 : 0;
  core.setOutput('status', job.state);
  core.setOutput('exit-code', String(job.exitCode ?? ''));
  core.setOutput('duration', duration.toFixed(1));
  core.setOutput('log-url', job.links.events);
  if (process.env.GITHUB_STEP_SUMMARY) await core.summary.addRaw(jobSummary(job, tails)).write();
  if (job.state !== 'succeeded') {
    core.setFailed(`docker-agent job ${job.state}${job.exitCode ? ` with exit code ${job.exitCode}` : ''}${job.reason ? `: ${job.reason}` : ''}`);
    process.exitCode = job.exitCode || 1;
  }
}

main().catch((err) => {
  core.setFailed(err instanceof Error ? err.message : String(err));
});
