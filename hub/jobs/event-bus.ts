// Stores an event, then tells whoever follows the job that there is more to read.
// Followers never receive events from here, only a wake-up: they read from the
// store, so a slow follower costs no memory and a new one replays the same way.
import type { Db } from '../store/db.js';
import type { EventLog, NewEvent } from '../store/events.js';

export class EventBus {
  private readonly followers = new Map<string, Set<() => void>>();

  constructor(
    private readonly db: Db,
    private readonly log: EventLog,
  ) {}

  /** Appends events (and runs `alsoStore` in the same transaction); returns the last seq. */
  publish(jobId: string, events: NewEvent[], alsoStore?: () => void): number {
    let seq = 0;
    this.db.transaction(() => {
      for (const e of events) seq = this.log.append(jobId, e);
      alsoStore?.();
    })();
    this.wake(jobId);
    return seq;
  }

  follow(jobId: string, wake: () => void): () => void {
    let set = this.followers.get(jobId);
    if (!set) this.followers.set(jobId, (set = new Set()));
    set.add(wake);
    return () => {
      set!.delete(wake);
      if (set!.size === 0) this.followers.delete(jobId);
    };
  }

  private wake(jobId: string): void {
    for (const wake of this.followers.get(jobId) ?? []) wake();
  }
}
