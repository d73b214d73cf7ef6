// Moves a job from state to state through the table in lifecycle.ts: each change
// stored with its status event in one go, and told to whoever counts them.
import type { JobState } from '../../schemas/types.gen.js';
import type { EventBus } from '../events/event-bus.js';
import type { NewEvent } from '../store/events.js';
import { withoutEnvValues, type Job, type JobPatch, type JobStore } from '../store/jobs.js';
import { canTransition } from './lifecycle.js';

export type EndState = Extract<JobState, 'succeeded' | 'failed' | 'timed_out' | 'cancelled' | 'error'>;

export class JobStates {
  /** Set at shutdown: the store may close, what still runs is the next start's to settle. */
  stopped = false;

  constructor(private readonly deps: { store: JobStore; bus: EventBus; onState?: (job: Job, state: JobState) => void }) {}

  /** Moves job `id` to `to` with `patch`, after the events `before`; false when the lifecycle does not allow it (or the row is gone). */
  move(id: string, to: JobState, patch: JobPatch = {}, before: NewEvent[] = []): boolean {
    return this.moveThrough(id, [to], patch, before);
  }

  /**
   * Moves job `id` through the states `path`, one after the other, stored in one
   * transaction with one status event each (a pooled job goes from queued to running
   * at once); false, and nothing stored, when the lifecycle does not allow a step.
   */
  moveThrough(id: string, path: JobState[], patch: JobPatch = {}, before: NewEvent[] = []): boolean {
    const { store, bus } = this.deps;
    if (this.stopped || path.length === 0) return false;
    const job = store.get(id);
    if (!job) return false;
    let from = job.state;
    for (const to of path) {
      if (!canTransition(from, to)) return false;
      from = to;
    }
    const reason = patch.reason;
    // The reason goes with the state it ends in.
    const events: NewEvent[] = path.map((state, i) => ({ type: 'status', state, ...(reason && i === path.length - 1 ? { reason } : {}) }));
    bus.publish(id, [...before, ...events], () => store.update(id, { ...patch, state: from }));
    const now = store.get(id);
    if (now) for (const state of path) this.deps.onState?.(now, state);
    return true;
  }

  /** Stores `patch` (a row that is gone is a no-op), unless the hub is stopping. */
  update(id: string, patch: JobPatch): void {
    if (!this.stopped) this.deps.store.update(id, patch);
  }

  /** Ends a job in `state`: its secrets and env values go (an ended job never runs again, so only the names stay). */
  end(job: Job, state: EndState, opts: { exitCode?: number; reason?: string }, events: NewEvent[] = []): boolean {
    const patch: JobPatch = {
      endedAt: new Date().toISOString(),
      exitCode: opts.exitCode,
      reason: opts.reason,
      agentTokenHash: null,
      sessionHash: null,
      spec: withoutEnvValues(job.spec),
    };
    return this.move(job.id, state, patch, events);
  }
}
