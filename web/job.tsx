// A job's page: what it is, its steps, its log live with ANSI colours, cancel and the
// snapshot download.
import { useState } from 'preact/hooks';
import type { JobEvent, JobView } from '../schemas/types.gen.js';
import { hub } from './api.js';
import { bytes, duration, elapsed, owner } from './format.js';
import { State } from './overview.js';
import { LogView } from './terminal.js';

const ENDED = ['succeeded', 'failed', 'timed_out', 'cancelled', 'error'];

/** What a log event prints in the terminal: output as it came, the rest as a dim line. */
export function printable(e: JobEvent): string | Uint8Array | null {
  if (e.type === 'stdout' || e.type === 'stderr') {
    if (e.encoding === 'base64') return Uint8Array.from(atob(e.data), (c) => c.charCodeAt(0));
    return e.type === 'stderr' ? `\x1b[31m${e.data}\x1b[0m` : e.data;
  }
  if (e.type === 'step') return `\x1b[2m── ${e.name} ${e.phase}${e.exitCode !== undefined ? ` (exit ${e.exitCode})` : ''}\x1b[0m\n`;
  if (e.type === 'status') return `\x1b[2m── ${e.state}${e.reason ? `: ${e.reason}` : ''}\x1b[0m\n`;
  if (e.type === 'error') return `\x1b[1;31m── ${e.code}: ${e.message}\x1b[0m\n`;
  if (e.type === 'agent') return `\x1b[2m── agent ${e.state}${e.job ? ` (job ${e.job.slice(0, 8)})` : ''}${e.reason ? `: ${e.reason}` : ''}\x1b[0m\n`;
  return null;
}

export function JobPage({
  job,
  now,
  subscribe,
}: {
  job: JobView | undefined;
  now: number;
  subscribe: (write: (d: string | Uint8Array) => void) => () => void;
}) {
  const [message, setMessage] = useState('');
  if (!job) return <p class="page empty">no such job (or not yours)</p>;
  const cancel = async () => {
    try {
      await hub.cancelJob(job.id);
      setMessage('cancelling…');
    } catch (err) {
      setMessage((err as Error).message);
    }
  };
  return (
    <div class="page">
      <header class="item-head">
        <h2>
          job {job.id.slice(0, 8)} <State state={job.state} />
        </h2>
        <div class="actions">
          {!ENDED.includes(job.state) && (
            <button class="danger" onClick={cancel} data-testid="cancel">
              Cancel
            </button>
          )}
          {job.snapshot && (
            <a class="button" href={`/v1/jobs/${job.id}/snapshot`} download data-testid="snapshot">
              Snapshot ({bytes(job.snapshot.bytes)})
            </a>
          )}
        </div>
      </header>
      {message && <p class="note">{message}</p>}
      <dl class="facts">
        <dt>id</dt>
        <dd>{job.id}</dd>
        <dt>profile</dt>
        <dd>{job.profile}</dd>
        <dt>owner</dt>
        <dd>{owner(job.owner)}</dd>
        {job.node && (
          <>
            <dt>node</dt>
            <dd data-testid="node">{job.node}</dd>
          </>
        )}
        <dt>duration</dt>
        <dd>{elapsed(job.startedAt, job.endedAt, now)}</dd>
        <dt>exit code</dt>
        <dd data-testid="exit-code">{job.exitCode ?? '–'}</dd>
        {job.reason && (
          <>
            <dt>reason</dt>
            <dd>{job.reason}</dd>
          </>
        )}
      </dl>
      <table class="list" data-testid="steps">
        <thead>
          <tr>
            <th>step</th>
            <th>state</th>
            <th>exit</th>
            <th>duration</th>
          </tr>
        </thead>
        <tbody>
          {job.steps.map((s, i) => (
            <tr key={i}>
              <td>{s.name}</td>
              <td>
                <State state={s.state} />
              </td>
              <td>{s.exitCode ?? '–'}</td>
              <td>{duration(s.durationMs)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Log</h3>
      <LogView feed={subscribe} resetKey={job.id} testId="log" />
    </div>
  );
}
