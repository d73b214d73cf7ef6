// The action's main step: read the inputs, then run a job, answer a PR comment or
// ask for maintenance, and report: outputs, a summary, and the job's exit code as
// the step's.
import * as core from '@actions/core';
import { createWriteStream, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as github from '@actions/github';
import type { HubClient, JobRequest } from '../client/index.js';
import {
  commentRequest,
  ignoreReason,
  masked,
  parseCommand,
  refusedProfile,
  resultReply,
  WRITE,
  type CommentCommand,
  type CommentEvent,
  type Parsed,
} from './comment.js';
import { actStandIn, gitHubApi, type GitHubApi, type Reaction } from './github.js';
import { connectHub } from './hub-auth.js';
import { readCommentSettings, readMaintenanceSettings, readMode, readSettings, type Settings } from './inputs.js';
import { LogWriter } from './log.js';
import { runJob, type JobResult } from './run-job.js';
import { jobSummary, seconds } from './summary.js';
import { packDirectory } from '../client/pack-directory.js';

const say = (message: string) => core.info(`docker-agent: ${message}`);
const act = process.env.ACT === 'true';

/** The runner cancels a step with SIGINT, then SIGTERM: cancel the job on the hub at once. */
function cancelOnSignal(client: HubClient, log: LogWriter, jobId: () => string | undefined): void {
  const cancel = (signal: string) => {
    // The job's output may be mid-line and commands stopped: the warning below is the action's.
    log.resume();
    const id = jobId();
    say(`${signal}: cancelling job ${id ?? '(not yet created)'}`);
    if (!id) process.exit(1);
    client
      .cancelJob(id)
      .catch((err) => core.warning(`cancelling job ${id} failed: ${err.message}`))
      .finally(() => process.exit(1));
  };
  process.once('SIGINT', () => cancel('SIGINT'));
  process.once('SIGTERM', () => cancel('SIGTERM'));
}

/** Runs the job to its end and reports it: outputs, summary, and the step failing with the job. */
async function runAndReport(client: HubClient, settings: Settings, request: JobRequest): Promise<JobResult> {
  for (const s of settings.secrets) core.setSecret(s);
  let jobId: string | undefined;
  const log = new LogWriter();
  cancelOnSignal(client, log, () => jobId);
  const result = await runJob(client, request, {
    log,
    onCreated: (j) => {
      jobId = j.id;
      core.saveState('job-id', j.id);
      core.setOutput('job-id', j.id);
      say(`job ${j.id} queued on ${settings.hubUrl}`);
    },
  });
  const { job, tails } = result;
  core.saveState('finished', 'true');
  core.setOutput('status', job.state);
  core.setOutput('exit-code', String(job.exitCode ?? ''));
  const duration = seconds(job);
  core.setOutput('duration', duration === '–' ? '0' : duration);
  core.setOutput('log-url', job.links.events);
  if (job.snapshot) await saveSnapshot(client, job.id, job.snapshot.image);
  if (process.env.GITHUB_STEP_SUMMARY) await core.summary.addRaw(jobSummary(job, tails)).write();
  if (job.state !== 'succeeded') {
    core.setFailed(`docker-agent job ${job.state}${job.exitCode ? ` with exit code ${job.exitCode}` : ''}${job.reason ? `: ${job.reason}` : ''}`);
    process.exitCode = job.exitCode || 1;
  }
  return result;
}

/** The job's snapshot written where a later step (e.g. actions/upload-artifact) can take it. */
async function saveSnapshot(client: HubClient, jobId: string, image: string): Promise<void> {
  const path = join(process.env.RUNNER_TEMP || tmpdir(), `docker-agent-snapshot-${jobId}.tar`);
  await pipeline(await client.downloadSnapshot(jobId), createWriteStream(path));
  say(`snapshot ${image} saved to ${path} (${(statSync(path).size / 1e6).toFixed(1)} MB; docker load -i loads it)`);
  core.setOutput('snapshot-image', image);
  core.setOutput('snapshot-path', path);
}

/** The `workspace` folder uploaded to the hub, its id for the job request. */
async function uploadFolder(client: HubClient, settings: Settings): Promise<string | undefined> {
  if (!settings.workspace) return undefined;
  const { path, includeGit } = settings.workspace;
  const up = await client.uploadWorkspace(packDirectory(path, { includeGit }), 'application/gzip');
  say(`uploaded ${path} (${up.entries} entries, ${up.bytes} bytes${includeGit ? '' : ', without .git'}) as workspace ${up.id.slice(0, 12)}`);
  return up.id;
}

async function run(): Promise<void> {
  const settings = readSettings();
  const client = await connectHub(settings);
  const workspace = await uploadFolder(client, settings);
  await runAndReport(client, settings, { ...settings.request, ...(workspace ? { workspace } : {}) });
}

/** `/agent run …` in a PR comment: checked, acknowledged, run at the PR's head commit, answered. */
async function comment(): Promise<void> {
  const event = github.context.payload as unknown as CommentEvent;
  const ignored = ignoreReason(event);
  if (ignored) return say(`nothing to do: ${ignored}`);
  const cmd = parseCommand(event.comment.body ?? '');
  if (!cmd) return say('nothing to do: the comment is not an /agent run command');

  const settings = readCommentSettings();
  const { owner, repo } = github.context.repo;
  const gh: GitHubApi = act ? actStandIn() : gitHubApi(settings.githubToken, { owner, repo });
  const pr = event.issue.number;
  const who = event.comment.user.login;
  // A reaction that cannot be posted is no reason to run or not run the command.
  const react = (content: Reaction) =>
    gh.react(event.comment.id, content).catch((err) => core.warning(`reacting with ${content} failed: ${(err as Error).message}`));
  const refuse = async (why: string) => {
    core.setOutput('status', 'refused');
    say(`refused: ${why}`);
    await react('-1');
    await gh.comment(pr, `👎 @${who}: ${why}`);
  };

  const approved = await approve(gh, event, cmd, settings);
  if ('refuse' in approved) return refuse(approved.refuse);
  const { sha, newer, command } = approved;
  const note = newer ? `Commits pushed after the comment (the head is now \`${newer.slice(0, 12)}\`) did not run.` : undefined;
  core.setOutput('sha', sha);
  await react('eyes');
  say(`accepted /agent run from @${who} on #${pr} at ${sha}, the head when the comment was written${note ? `. ${note}` : ''}`);

  const runUrl = process.env.GITHUB_RUN_ID ? `${github.context.serverUrl}/${owner}/${repo}/actions/runs/${process.env.GITHUB_RUN_ID}` : undefined;
  const secrets = [...settings.secrets, settings.token];
  try {
    const client = await connectHub(settings);
    const workspace = act ? await uploadFolder(client, settings) : (await client.uploadWorkspace(await gh.tarball(sha), 'application/gzip', { strip: 1 })).id;
    const { job, tails } = await runAndReport(client, settings, commentRequest(settings.request, command, sha, pr, workspace));
    await react(job.state === 'succeeded' ? 'rocket' : '-1');
    const tail = tails.get(0) ?? '';
    await gh.comment(
      pr,
      resultReply({ job, sha, command: command.command, tail, logUrl: job.links.events, secrets, ...(runUrl ? { runUrl } : {}), ...(note ? { note } : {}) }),
    );
  } catch (err) {
    // The commenter saw 👀: they get an answer whatever went wrong.
    await react('-1');
    const why = masked((err as Error).message, secrets);
    await gh
      .comment(pr, `💥 @${who}: /agent run could not run on \`${sha.slice(0, 12)}\`: ${why}${runUrl ? ` ([workflow run](${runUrl}))` : ''}`)
      .catch((e) => core.warning(`replying failed: ${(e as Error).message}`));
    throw err;
  }
}

/**
 * Whether the command may run, and at which commit: the commenter may write, the
 * command and its profile are allowed, the PR is not a fork's (unless allowed), and
 * its head when the comment was written is known (`newer`: what was pushed since).
 */
async function approve(
  gh: GitHubApi,
  event: CommentEvent,
  cmd: NonNullable<Parsed>,
  settings: ReturnType<typeof readCommentSettings>,
): Promise<{ refuse: string } | { command: CommentCommand; sha: string; newer?: string }> {
  const { owner, repo } = github.context.repo;
  const pr = event.issue.number;
  const permission = await gh.permission(event.comment.user.login);
  if (!WRITE.includes(permission)) return { refuse: `/agent run needs write permission on ${owner}/${repo}; you have ${permission}.` };
  if ('usage' in cmd) return { refuse: cmd.usage };
  const profileRefused = refusedProfile(cmd, settings.allowedProfiles);
  if (profileRefused) return { refuse: profileRefused };
  const head = await gh.pullRequest(pr);
  if (head.headRepo !== head.baseRepo && !settings.allowForks) {
    return { refuse: `#${pr} comes from a fork (${head.headRepo ?? 'a deleted repository'}); this workflow does not run fork pull requests (allow-forks).` };
  }
  // The head when the comment was written, whatever was pushed to the PR since: that is what was approved.
  const approved = await gh.approvedHead(head, event.comment.created_at);
  if ('refuse' in approved) return { refuse: `/agent run did not run: ${approved.refuse}.` };
  return { command: cmd, sha: approved.sha, ...(approved.newer ? { newer: approved.newer } : {}) };
}

/** Scheduled maintenance: the hub prunes and says what it removed. */
async function maintenance(): Promise<void> {
  const settings = readMaintenanceSettings();
  const client = await connectHub(settings);
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

const MODES = { run, comment, maintenance };

Promise.resolve()
  .then(() => MODES[readMode()]())
  .catch((err) => {
    core.setFailed(err instanceof Error ? err.message : String(err));
  });
