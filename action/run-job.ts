// Submits the job and follows it to the end, writing its output to the log as it
// is produced and keeping the tail of each step's output for the summary.
import { HubClient, isFinalEvent, type JobRequest, type JobView } from '../client/index.js';
import { LogWriter } from './log.js';

const TAIL_LINES = 30;

export interface JobResult {
  job: JobView;
  tails: Map<number, string>;
}

function keepTail(tails: Map<number, string>, step: number, text: string): void {
  const joined = (tails.get(step) ?? '') + text;
  tails.set(
    step,
    joined
      .split('\n')
      .slice(-TAIL_LINES - 1)
      .join('\n')
      .slice(-8000),
  );
}

export async function runJob(client: HubClient, request: JobRequest, opts: { log?: LogWriter; onCreated?: (job: JobView) => void } = {}): Promise<JobResult> {
  const log = opts.log ?? new LogWriter();
  const created = await client.createJob(request);
  opts.onCreated?.(created);
  const tails = new Map<number, string>();
  for await (const e of client.events(created.id)) {
    log.event(e);
    if (e.type === 'stdout' || e.type === 'stderr') {
      keepTail(tails, e.step, e.encoding === 'base64' ? Buffer.from(e.data, 'base64').toString('utf8') : e.data);
    }
    if (isFinalEvent(e)) break;
  }
  log.closeGroup();
  return { job: await client.getJob(created.id), tails };
}
