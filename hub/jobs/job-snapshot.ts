// A job's snapshot at its end: its container committed to an image, listed under
// the job's id so later jobs and agents can start from it. A cancel or the time
// limit stops the wait: the job ends without it, and the image the commit makes
// anyway is removed once it is there.
import type { Backend, ContainerRef } from '../backend/types.js';
import type { HubConfig } from '../platform/config.js';
import { HubError } from '../platform/errors.js';
import { snapshotUrl, type Links } from '../platform/links.js';
import type { Snapshots } from '../snapshots/snapshots.js';
import type { NewEvent } from '../store/events.js';
import type { JobStates } from './states.js';

/** How long a job's end may wait for its snapshot. */
const SNAPSHOT_TIMEOUT_MS = 5 * 60_000;

export interface JobSnapshotDeps {
  config: Pick<HubConfig, 'maxSnapshotsPerPrincipal'>;
  backend: Backend;
  snapshots: Snapshots;
  links: Links;
  states: JobStates;
}

export class JobSnapshot {
  private stopWait?: (why: string) => void;

  constructor(
    private readonly deps: JobSnapshotDeps,
    private readonly jobId: string,
    private readonly owner: string,
  ) {}

  /** Whether it is being taken now. */
  get taking(): boolean {
    return this.stopWait !== undefined;
  }

  /** The job ends without waiting for it (a cancel). */
  stop(why: string): void {
    this.stopWait?.(why);
  }

  /** Takes it, its event added to `events`; returns why it was not kept when a cancel or the time limit came first. */
  async takeInto(ref: ContainerRef, events: NewEvent[]): Promise<string | undefined> {
    const taken = await this.unlessStopped(ref);
    if ('event' in taken) return void events.push(taken.event);
    events.push({ type: 'error', code: 'SNAPSHOT_FAILED', message: `the snapshot was not kept: ${taken.stopped}` });
    return taken.stopped;
  }

  private unlessStopped(ref: ContainerRef): Promise<{ event: NewEvent } | { stopped: string }> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (result: { event: NewEvent } | { stopped: string }) => {
        settled = true;
        this.stopWait = undefined;
        clearTimeout(timer);
        resolve(result);
      };
      this.stopWait = (why) => settle({ stopped: why });
      const timer = setTimeout(() => this.stop(`taking it took longer than ${SNAPSHOT_TIMEOUT_MS / 1000} s`), SNAPSHOT_TIMEOUT_MS);
      timer.unref();
      void this.commit(ref).then((event) => {
        if (!settled) return settle({ event });
        if (event.type === 'snapshot') {
          this.deps.snapshots.forget(ref.jobId);
          void this.deps.backend.removeImage(event.image).catch(() => {});
        }
      });
    });
  }

  /** The container committed to an image, as the event that says where to get it (or why not). */
  private async commit(ref: ContainerRef): Promise<NewEvent> {
    try {
      // Others may have been kept while the job ran: the limit holds at the commit too.
      if (this.owner) this.deps.snapshots.checkRoomOf(this.owner, this.owner, this.deps.config.maxSnapshotsPerPrincipal);
      const snap = await this.deps.backend.snapshot(ref);
      // Kept only if its owner has room for it (record removes the image when not).
      this.deps.snapshots.record({ id: this.jobId, owner: this.owner || null, source: `job ${this.jobId}`, ...snap });
      this.deps.states.update(this.jobId, { snapshot: snap });
      return { type: 'snapshot', ...snap, url: snapshotUrl(this.jobId, this.deps.links) };
    } catch (err) {
      if (err instanceof HubError) return { type: 'error', code: err.code, message: err.message };
      return { type: 'error', code: 'SNAPSHOT_FAILED', message: `committing the container failed: ${(err as Error).message}` };
    }
  }
}
