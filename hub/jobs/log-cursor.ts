// Follows one stored log (a job's events, or a named agent's) for a reader: a page at
// a time from `from`, each event handed to `send` and awaited (so a slow reader holds
// one page at most), then waits for the bus to say there is more. A late reader gets
// the same events, once, in order. Shared by the job's WebSocket and the dashboard's
// live feed.
import type { EventLog, StoredEvent } from '../store/events.js';
import type { EventBus } from '../events/event-bus.js';

const PAGE = 64;

export interface LogReader {
  /** False once the reader has gone. */
  open(): boolean;
  /** Resolves (or calls back) when the reader goes away, so a wait for more ends. */
  onGone(wake: () => void): void;
  send(e: StoredEvent): Promise<void>;
  /** The event after which nothing more will come (a job's final status). */
  isLast?(e: StoredEvent): boolean;
  /** Whether the log has ended although `from` is past its last event. */
  ended?(): boolean;
}

/** Resolves `'ended'` after the log's last event was sent, `'gone'` when the reader left first. */
export async function followLog(log: EventLog, bus: EventBus, key: string, from: number, reader: LogReader): Promise<'ended' | 'gone'> {
  let wake: () => void = () => {};
  const unfollow = bus.follow(key, () => wake());
  reader.onGone(() => wake());
  let next = from;
  try {
    while (reader.open()) {
      // Ask for a wake-up before reading, so an event stored in between is not missed.
      const more = new Promise<void>((r) => (wake = r));
      const page = log.read(key, next, PAGE);
      for (const e of page) {
        await reader.send(e);
        next = e.seq + 1;
        if (reader.isLast?.(e)) return 'ended';
      }
      if (page.length < PAGE) {
        if (page.length === 0 && reader.ended?.()) return 'ended';
        await more;
      }
    }
    return 'gone';
  } finally {
    unfollow();
  }
}
