// Where a job's time goes, from its own events (the hub's clock, shared with the
// client on one machine): accepted → preparing (the image looked up) → starting
// (container created and started, or a pooled one taken) → running (the runtime
// dialled in, or was sent the task) → the step's start → its first output stored →
// the client's first byte → the job's end.
import type { HubClient } from '../client/index.js';
import { summarize } from './stats.js';

export interface Breakdown {
  phase: string;
  /** ms since the phase before (median over the jobs measured). */
  ms: number;
  /** ms since the client sent the POST (median). */
  at: number;
}

const FINAL = ['succeeded', 'failed', 'error', 'cancelled', 'timed_out'];

/** One job's marks, ms since its POST was sent, in the order they came. */
async function marksOf(client: HubClient, run: string): Promise<Array<[string, number]>> {
  const t0 = performance.timeOrigin + performance.now();
  const now = () => performance.timeOrigin + performance.now() - t0;
  const job = await client.createJob({ run });
  const marks: Array<[string, number]> = [['POST answered', now()]];
  let output = false;
  for await (const e of client.events(job.id)) {
    const at = Date.parse(e.time) - t0;
    if (e.type === 'status') marks.push([`status ${e.state}`, at]);
    if (e.type === 'step') marks.push([`step ${e.phase}`, at]);
    if (e.type === 'stdout' && !output) {
      output = true;
      marks.push(['first output stored', at], ['client saw first byte', now()]);
    }
    if (e.type === 'status' && FINAL.includes(e.state)) break;
  }
  marks.push(['client saw the end', now()]);
  return marks;
}

/** The median of each phase over `n` jobs (each after `before`), in the order of the first job. */
export async function breakdown(client: HubClient, run: string, n = 1, before: () => Promise<void> = async () => {}): Promise<Breakdown[]> {
  const all: Array<Map<string, number>> = [];
  let order: string[] = [];
  for (let i = 0; i < n; i++) {
    await before();
    const marks = await marksOf(client, run);
    if (i === 0) order = marks.map(([phase]) => phase);
    all.push(new Map(marks));
  }
  let last = 0;
  return order.map((phase) => {
    const at = summarize(all.map((m) => m.get(phase) ?? NaN).filter((x) => !Number.isNaN(x))).median;
    const b = { phase, ms: Math.round(at - last), at: Math.round(at) };
    last = at;
    return b;
  });
}
