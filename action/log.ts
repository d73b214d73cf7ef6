// Writes a job's events into the workflow log as they come: one ::group:: per
// step, output as it was printed, and a line for every change of state.
import type { JobEvent } from '../schemas/types.gen.js';

export class LogWriter {
  private openGroup = false;
  private lineOpen = false;

  constructor(private readonly write: (text: string) => void = (t) => process.stdout.write(t)) {}

  event(e: JobEvent): void {
    switch (e.type) {
      case 'step':
        if (e.phase === 'started') {
          this.closeGroup();
          this.write(`::group::${e.name}\n`);
          this.openGroup = true;
        } else if (e.phase === 'ended') {
          this.endLine();
          this.write(`${e.name}: exit code ${e.exitCode}${e.timedOut ? ' (time limit)' : ''} in ${((e.durationMs ?? 0) / 1000).toFixed(1)} s\n`);
          this.closeGroup();
        } else {
          this.write(`${e.name}: skipped\n`);
        }
        break;
      case 'stdout':
      case 'stderr': {
        const text = e.encoding === 'base64' ? Buffer.from(e.data, 'base64').toString('utf8') : e.data;
        if (!text) break;
        this.write(text);
        this.lineOpen = !text.endsWith('\n');
        break;
      }
      case 'status':
        this.endLine();
        this.write(`docker-agent: ${e.state}${e.reason ? ` (${e.reason})` : ''}\n`);
        break;
      case 'progress':
        this.write(`docker-agent: ${e.current ? `[${e.current}/${e.total}] ` : ''}${e.message}\n`);
        break;
      case 'error':
        this.endLine();
        this.write(`::error::${e.code}: ${e.message.replace(/\n/g, '%0A')}\n`);
        break;
      case 'exit':
        break;
    }
  }

  closeGroup(): void {
    this.endLine();
    if (this.openGroup) this.write('::endgroup::\n');
    this.openGroup = false;
  }

  private endLine(): void {
    if (this.lineOpen) this.write('\n');
    this.lineOpen = false;
  }
}
