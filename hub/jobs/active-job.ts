// What the hub holds for a job it is running: its container and runtime link, the
// runtime's last message seen, and the timers that end it if the runtime does not
// (its deadline, the wait for the runtime to dial in, a cancel's grace). The record
// owns its timers: setting one replaces the last of that name, and end() clears all.
import type { ContainerRef } from '../backend/types.js';
import type { RuntimeLink } from '../sandboxes/runtime-link.js';

export type TimerName = 'deadline' | 'connect' | 'cancel';

export class ActiveJob {
  ref?: ContainerRef;
  agent?: RuntimeLink;
  ending = false;
  timedOutStep?: number;
  /** Set while its snapshot is taken: a cancel stops the wait for it. */
  stopSnapshot?: (reason: string) => void;
  private readonly timers = new Map<TimerName, NodeJS.Timeout>();

  constructor(
    readonly id: string,
    /** Its job's owner ('' for jobs from before owners), for each principal's share of the slots. */
    readonly owner: string,
    /** The runtime's message counter stored so far: what comes at or below it was seen before. */
    public agentSeq: number,
    /** Output bytes stored so far, and whether the OUTPUT_LIMIT event was. */
    readonly output: { bytes: number; capped: boolean },
    /** The named agent it runs on: the container and the link are the agent's, not the job's. */
    readonly agentId?: string,
  ) {}

  /** Runs `fn` after `ms` (at once when past), unless the timer is cleared or the job ends first. */
  setTimer(name: TimerName, ms: number, fn: () => void): void {
    clearTimeout(this.timers.get(name));
    this.timers.set(name, setTimeout(fn, Math.max(0, ms)));
  }

  clearTimer(name: TimerName): void {
    clearTimeout(this.timers.get(name));
    this.timers.delete(name);
  }

  clearTimers(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
