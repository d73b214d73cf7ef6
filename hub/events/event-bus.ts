// Stores an event, then tells whoever follows the job that there is more to read.
// Followers never receive events from here, only a wake-up: they read from the
// store, so a slow follower costs no memory and a new one replays the same way.
import type { Db } from '../store/db.js';
import type { EventLog, NewEvent } from '../store/events.js';

export class EventBus {
  private readonly followers = new Map<string, Set<() => void>>();
  /** Woken by every log's events but output (the dashboard's overview). */
  private readonly everything = new Set<() => void>();

  constructor(
    private readonly db: Db,
    private readonly log: EventLog,
    /** Told how many output bytes each publish stored (for the metrics). */
    private readonly onOutputBytes: (n: number) => void = () => {},
  ) {}

  /** Appends events (and runs `alsoStore` in the same transaction); returns the last seq. */
  publish(jobId: string, events: NewEvent[], alsoStore?: () => void): number {
    let seq = 0;
    let bytes = 0;
    let changes = false;
    this.db.transaction(() => {
      for (const e of events) {
        seq = this.log.append(jobId, e);
        if (e.type === 'stdout' || e.type === 'stderr') bytes += e.data.length;
        else changes = true;
      }
      alsoStore?.();
    })();
    if (bytes) this.onOutputBytes(bytes);
    this.wake(jobId, changes);
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

  /** Wakes on any log's events other than output (a job's state, a step, an agent's state); returns how to stop. */
  followAll(wake: () => void): () => void {
    this.everything.add(wake);
    return () => this.everything.delete(wake);
  }

  private wake(jobId: string, changes: boolean): void {
    for (const wake of this.followers.get(jobId) ?? []) wake();
    if (changes) for (const wake of this.everything) wake();
  }
}
