// The job state machine as a table. Every change of state goes through here, is
// stored with its status event, and a job that ended never moves again.
import type { JobState } from '../../schemas/types.gen.js';

export const TRANSITIONS: Record<JobState, readonly JobState[]> = {
  // preparing → queued: the hub restarted while building, the job is tried again.
  queued: ['preparing', 'cancelled', 'error'],
  preparing: ['queued', 'starting', 'cancelled', 'error'],
  starting: ['running', 'timed_out', 'cancelled', 'error'],
  running: ['snapshotting', 'succeeded', 'failed', 'timed_out', 'cancelled', 'error'],
  snapshotting: ['succeeded', 'failed', 'timed_out', 'cancelled', 'error'],
  succeeded: [],
  failed: [],
  timed_out: [],
  cancelled: [],
  error: [],
};

export function isTerminal(state: JobState): boolean {
  return TRANSITIONS[state].length === 0;
}

export function canTransition(from: JobState, to: JobState): boolean {
  return TRANSITIONS[from].includes(to);
}

export const ALL_STATES = Object.keys(TRANSITIONS) as JobState[];

/** Whether a stored event is a job's final status: nothing follows it in the job's log. */
export function isFinalStatus(e: { type: string; payload: Record<string, unknown> }): boolean {
  return e.type === 'status' && isTerminal(e.payload.state as JobState);
}
