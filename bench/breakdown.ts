// Where a cold job's time goes, from its own events: accepted → preparing (the
// image looked up) → starting (container created and started) → running (the
// runtime dialled in) → the step's start and end → the job's end.
import type { HubClient } from '../client/index.js';

export interface Breakdown {
  phase: string;
  ms: number;
}

export async function coldBreakdown(client: HubClient, run: string): Promise<Breakdown[]> {
  const t0 = Date.now();
  const job = await client.createJob({ run });
  const marks: Array<[string, number]> = [['POST answered', Date.now()]];
  for await (const e of client.events(job.id)) {
    const at = Date.parse(e.time);
    if (e.type === 'status') marks.push([`status ${e.state}`, at]);
    if (e.type === 'step') marks.push([`step ${e.phase}`, at]);
    if (e.type === 'status' && ['succeeded', 'failed', 'error', 'cancelled', 'timed_out'].includes(e.state)) break;
  }
  marks.push(['client saw the end', Date.now()]);
  let last = t0;
  return marks.map(([phase, at]) => {
    const ms = at - last;
    last = at;
    return { phase, ms };
  });
}
