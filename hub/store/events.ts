// The append-only event log. An event gets its `seq` inside the same transaction
// that stores it, so seqs have no gaps and a reader that asks for `from` gets
// exactly what it has not seen. Output bytes are stored as BLOBs, as produced.
import { isUtf8 } from 'node:buffer';
import type { JobEvent } from '../../schemas/types.gen.js';
import type { Db } from './db.js';

type Without<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An event before it is stored; output carries its bytes in `data`. */
export type NewEvent = Without<Exclude<JobEvent, { type: 'stdout' | 'stderr' }>, 'seq' | 'time'> | { type: 'stdout' | 'stderr'; step: number; data: Buffer };

export interface StoredEvent {
  seq: number;
  time: string;
  type: JobEvent['type'];
  payload: Record<string, unknown>;
  data: Buffer | null;
}

/** A named agent's own log (its lifecycle and its tasks' output) lives beside the jobs' under this key. */
export const agentLogKey = (agentId: string) => `agent:${agentId}`;

export class EventLog {
  private readonly insert;
  private readonly bump;
  private readonly bumpAgent;
  private readonly page;
  private readonly tail;

  constructor(db: Db) {
    this.insert = db.prepare('INSERT INTO events (job_id, seq, time, type, payload, data) VALUES (?, ?, ?, ?, ?, ?)');
    this.bump = db.prepare('UPDATE jobs SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq');
    this.bumpAgent = db.prepare('UPDATE agents SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq');
    this.tail = db.prepare('SELECT max(seq) AS seq FROM events WHERE job_id = ?');
    this.page = db.prepare('SELECT seq, time, type, payload, data FROM events WHERE job_id = ? AND seq >= ? ORDER BY seq LIMIT ?');
  }

  /** Stores one event and returns its seq. Call inside a transaction to store it with other changes. */
  append(jobId: string, event: NewEvent): number {
    const row = (jobId.startsWith('agent:') ? this.bumpAgent.get(jobId.slice(6)) : this.bump.get(jobId)) as { last_seq: number } | undefined;
    if (!row) throw new Error(`cannot append an event: no job ${jobId}`);
    const seq = row.last_seq;
    const time = new Date().toISOString();
    if (event.type === 'stdout' || event.type === 'stderr') {
      this.insert.run(jobId, seq, time, event.type, JSON.stringify({ step: event.step }), event.data);
    } else {
      const { type, ...payload } = event;
      this.insert.run(jobId, seq, time, type, JSON.stringify(payload), null);
    }
    return seq;
  }

  /** The seq of the newest event of a log (0 when it has none). */
  lastSeq(jobId: string): number {
    return (this.tail.get(jobId) as { seq: number | null }).seq ?? 0;
  }

  read(jobId: string, from: number, limit: number): StoredEvent[] {
    return (this.page.all(jobId, from, limit) as Array<Omit<StoredEvent, 'payload'> & { payload: string }>).map((r) => ({
      ...r,
      payload: JSON.parse(r.payload),
    }));
  }
}

/** The wire form: output that is valid UTF-8 is sent as text, anything else as base64. */
export function toWire(e: StoredEvent): JobEvent {
  if (e.type === 'stdout' || e.type === 'stderr') {
    const data = e.data ?? Buffer.alloc(0);
    const step = e.payload.step as number;
    return isUtf8(data)
      ? { seq: e.seq, time: e.time, type: e.type, step, data: data.toString('utf8') }
      : { seq: e.seq, time: e.time, type: e.type, step, data: data.toString('base64'), encoding: 'base64' };
  }
  return { seq: e.seq, time: e.time, type: e.type, ...e.payload } as JobEvent;
}
