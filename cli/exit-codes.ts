// What the `docker-agent` command's exit code means, after `docker run` / `docker
// exec`: a command's own code passes through; the command's own failures get
// codes a script can tell apart from it.
import { HubApiError, type JobView } from '../client/index.js';

export const EXIT = {
  ok: 0,
  /** The hub refused the request (unknown agent, bad input, not allowed): the message says why. */
  refused: 1,
  usage: 2,
  /** The job or step ran past its time limit (as `timeout` does). */
  timedOut: 124,
  /** The hub or the engine failed, or cannot be reached. */
  hubFailed: 125,
  /** The command was found but cannot run (bash's own 126). */
  cannotRun: 126,
  /** The command was not found (bash's own 127). */
  notFound: 127,
  /** The job was cancelled (as a shell's Ctrl-C). */
  cancelled: 130,
} as const;

/** A failure of the command itself, with the exit code it ends with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The exit code for a job that ended: its command's, or what ended it. */
export function jobExitCode(job: JobView): number {
  switch (job.state) {
    case 'succeeded':
      return EXIT.ok;
    case 'failed':
      return job.exitCode || 1;
    case 'timed_out':
      return EXIT.timedOut;
    case 'cancelled':
      return EXIT.cancelled;
    default:
      return EXIT.hubFailed;
  }
}

/** Any error as the message and exit code the user gets. */
export function describeFailure(err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof HubApiError) {
    return new CliError(`${err.message}${err.code && err.code !== 'HTTP_ERROR' ? ` (${err.code})` : ''}`, err.status >= 500 ? EXIT.hubFailed : EXIT.refused);
  }
  // The shared client words network failures as "cannot reach the hub at …".
  return new CliError((err as Error)?.message ?? String(err), EXIT.hubFailed);
}
