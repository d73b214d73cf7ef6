// Follows a job to its end: its output on stdout and stderr byte for byte, as the
// command printed it (all on stderr when stdout is for JSON); image builds and
// errors as notes on stderr.
import { isFinalEvent, type HubClient, type JobEvent, type JobView } from '../client/index.js';
import type { Output } from './output.js';

/** A job's output as the command printed it: stdout to stdout (unless that is for JSON), stderr to stderr. */
export function writeOutput(e: Extract<JobEvent, { type: 'stdout' | 'stderr' }>, out: Output, opts: { json: boolean }): void {
  const bytes = e.encoding === 'base64' ? Buffer.from(e.data, 'base64') : e.data;
  (e.type === 'stdout' && !opts.json ? out.streams.out : out.streams.err).write(bytes);
}

export async function followJob(client: HubClient, job: JobView, out: Output, opts: { json: boolean }): Promise<JobView> {
  for await (const e of client.events(job.id)) {
    if (e.type === 'stdout' || e.type === 'stderr') {
      writeOutput(e, out, opts);
    } else if (e.type === 'progress') {
      out.note(`${e.current ? `[${e.current}/${e.total}] ` : ''}${e.message}`);
    } else if (e.type === 'error') {
      out.note(`${e.code}: ${e.message}`);
    }
    if (isFinalEvent(e)) break;
  }
  return client.getJob(job.id);
}
