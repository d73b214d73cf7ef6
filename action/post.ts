// The post step: a job the main step started but did not see end (the workflow
// was cancelled, the main step killed) is cancelled on the hub.
import * as core from '@actions/core';
import { isEndState } from '../client/index.js';
import { connectHub } from './hub-auth.js';
import { readHubSettings } from './inputs.js';

async function post(): Promise<void> {
  const jobId = core.getState('job-id');
  if (!jobId || core.getState('finished') === 'true') return;
  const client = await connectHub(readHubSettings());
  const job = await client.getJob(jobId);
  if (isEndState(job.state)) return;
  await client.cancelJob(jobId);
  core.info(`docker-agent: cancelled job ${jobId}, which was still ${job.state}`);
}

post().catch((err) => core.warning(`docker-agent post step: ${err instanceof Error ? err.message : err}`));
