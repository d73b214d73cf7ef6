// What a restarted hub does with each job the last run left unfinished: a pure
// decision from the stored jobs and the containers the engine still has, which the
// job service then carries out. Queued jobs simply wait; a job caught preparing is
// queued again; one whose container still runs is re-attached (its runtime dials
// back in and resends what was not stored); the others end `error` with the reason.
import type { ContainerInfo } from '../backend/types.js';
import type { Job } from '../store/jobs.js';

export type Recovery =
  | { job: Job; action: 'wait' }
  | { job: Job; action: 'requeue'; reason: string }
  | { job: Job; action: 'reattach'; container: ContainerInfo }
  | { job: Job; action: 'fail'; reason: string };

export function recoveryPlan(unfinished: Job[], containers: ContainerInfo[]): Recovery[] {
  const byJob = new Map(containers.map((c) => [c.jobId, c]));
  // A job given a pooled container knows it by id: its labels name the pool, not the job.
  const byId = new Map(containers.map((c) => [c.id, c]));
  return unfinished.map((job): Recovery => {
    if (job.state === 'queued') return { job, action: 'wait' };
    // A named agent's job does not outlive the hub: its runtime's session is the agent's, not the job's.
    if (job.agent) return { job, action: 'fail', reason: 'the hub restarted while the job ran on its agent' };
    if (job.state === 'preparing') return { job, action: 'requeue', reason: 'the hub restarted while preparing the job; it is queued again' };
    const container = byJob.get(job.id) ?? (job.containerId ? byId.get(job.containerId) : undefined);
    if (container?.running) return { job, action: 'reattach', container };
    return { job, action: 'fail', reason: "the hub restarted and the job's container was gone" };
  });
}
