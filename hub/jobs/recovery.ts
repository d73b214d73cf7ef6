// What a restarted hub does with each job the last run left unfinished: a pure
// decision from the stored jobs and the containers the engine still has, which the
// job service then carries out (recover()). Queued jobs simply wait; a job caught preparing is
// queued again; one whose container still runs is re-attached (its runtime dials
// back in and resends what was not stored); the others end `error` with the reason.
import type { ContainerInfo, ContainerRef } from '../backend/types.js';
import { withoutEnvValues, type Job, type JobStore } from '../store/jobs.js';
import { isTerminal } from './lifecycle.js';
import type { JobStates } from './states.js';

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

export interface RecoveryDeps {
  store: JobStore;
  states: JobStates;
  log: (msg: string) => void;
  /** A running job takes its container on again. */
  adopt(job: Job, ref: ContainerRef): void;
}

/** Carries out the plan: jobs whose containers still run are re-attached, the rest queued again or ended with the reason. */
export async function recover(containers: ContainerInfo[], deps: RecoveryDeps): Promise<void> {
  const { store, states, log } = deps;
  // Jobs that ended under an older hub may still hold their env values: removed as an ending job's are now.
  for (const job of store.endedWithEnvValues()) store.update(job.id, { spec: withoutEnvValues(job.spec) });
  for (const step of recoveryPlan(store.unfinished(), containers)) {
    const { job } = step;
    if (step.action === 'requeue') states.move(job.id, 'queued', { reason: step.reason });
    else if (step.action === 'fail') states.end(job, 'error', { reason: step.reason });
    else if (step.action === 'reattach') {
      deps.adopt(job, { id: step.container.id, jobId: step.container.jobId });
      log(`job ${job.id}: re-attached to its running container`);
    }
  }
  // Values a crash left behind (written for a job whose row never was, or one that ended before its file went).
  store.pruneEnv((id) => {
    const state = store.stateOf(id);
    return state !== undefined && !isTerminal(state);
  });
}
