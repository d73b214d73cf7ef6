// Writes a job's events into the workflow log as they come: one ::group:: per
// step, output as it was printed, and a line for every change of state.
//
// Whatever the job prints is the job's, not the action's: the runner would take a
// line like `::add-mask::…` or `::error file=…::` in it as a workflow command. So
// everything that comes from the hub is written between `::stop-commands::<token>`
// and `::<token>::` (the runner's own mechanism; the token is random, so the job
// cannot end the section early), and only the action's own commands (groups,
// errors) are written outside it.
import { randomBytes } from 'node:crypto';
import type { JobEvent } from '../schemas/types.gen.js';

/** A workflow command's data as the runner unescapes it, so a value cannot start a new line. */
export function commandData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

export class LogWriter {
  private openGroup = false;
  private lineOpen = false;
  private stopped = false;

  constructor(
    private readonly write: (text: string) => void = (t) => process.stdout.write(t),
    private readonly token: string = randomBytes(16).toString('hex'),
  ) {}

  event(e: JobEvent): void {
    switch (e.type) {
      case 'step':
        if (e.phase === 'started') {
          this.closeGroup();
          this.command(`::group::${commandData(e.name)}`);
          this.openGroup = true;
        } else if (e.phase === 'ended') {
          this.text(`${e.name}: exit code ${e.exitCode}${e.timedOut ? ' (time limit)' : ''} in ${((e.durationMs ?? 0) / 1000).toFixed(1)} s\n`);
          this.closeGroup();
        } else {
          this.text(`${e.name}: skipped\n`);
        }
        break;
      case 'stdout':
      case 'stderr': {
        const text = e.encoding === 'base64' ? Buffer.from(e.data, 'base64').toString('utf8') : e.data;
        if (text) this.text(text, { raw: true });
        break;
      }
      case 'status':
        this.text(`docker-agent: ${e.state}${e.reason ? ` (${e.reason})` : ''}\n`);
        break;
      case 'progress':
        this.text(`docker-agent: ${e.current ? `[${e.current}/${e.total}] ` : ''}${e.message}\n`);
        break;
      case 'error':
        this.command(`::error::${commandData(`${e.code}: ${e.message}`)}`);
        break;
      case 'exit':
        break;
    }
  }

  /** Ends the open group and gives the log back to the runner's commands; call before anything else writes to it. */
  closeGroup(): void {
    if (this.openGroup) this.command('::endgroup::');
    this.openGroup = false;
    this.resume();
  }

  /** Commands work again from here on (the action's own, e.g. core.setFailed). */
  resume(): void {
    this.endLine();
    if (this.stopped) this.write(`::${this.token}::\n`);
    this.stopped = false;
  }

  /** Text from the hub: never read as a command. `raw` text is the job's own, written as printed. */
  private text(text: string, { raw = false } = {}): void {
    if (!raw) this.endLine();
    if (!this.stopped) this.write(`::stop-commands::${this.token}\n`);
    this.stopped = true;
    this.write(text);
    this.lineOpen = !text.endsWith('\n');
  }

  /** One of the action's own commands, on a line of its own. */
  private command(line: string): void {
    this.resume();
    this.write(`${line}\n`);
  }

  private endLine(): void {
    if (this.lineOpen) this.write('\n');
    this.lineOpen = false;
  }
}
