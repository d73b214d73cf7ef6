// How the CLI talks to people and to scripts: tables and colour for a terminal
// (never with NO_COLOR, never into a pipe), JSON with --json.

export interface Streams {
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
}

export type Colour = 'red' | 'green' | 'yellow' | 'dim' | 'bold';
const CODES: Record<Colour, [number, number]> = { red: [31, 39], green: [32, 39], yellow: [33, 39], dim: [2, 22], bold: [1, 22] };

export class Output {
  readonly colour: boolean;

  constructor(
    readonly streams: Streams = { out: process.stdout, err: process.stderr },
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.colour = Boolean(streams.out.isTTY) && !env.NO_COLOR;
  }

  paint(text: string, colour: Colour): string {
    const [on, off] = CODES[colour];
    return this.colour ? `\x1b[${on}m${text}\x1b[${off}m` : text;
  }

  json(value: unknown): void {
    this.streams.out.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  line(text = ''): void {
    this.streams.out.write(`${text}\n`);
  }

  /** Progress and notes: on stderr, so stdout stays the command's own output. */
  note(text: string): void {
    this.streams.err.write(`${this.paint(text, 'dim')}\n`);
  }

  table(headers: string[], rows: string[][]): void {
    const visible = (s: string) => s.replace(/\x1b\[\d+m/g, '').length;
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? ''))));
    const fmt = (cells: string[]) =>
      cells
        .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - visible(c))))
        .join('  ')
        .trimEnd();
    this.line(this.paint(fmt(headers), 'bold'));
    for (const r of rows) this.line(fmt(r));
  }

  state(state: string): string {
    const colour: Colour | undefined = (
      { succeeded: 'green', running: 'green', failed: 'red', error: 'red', timed_out: 'red', cancelled: 'yellow', stopped: 'yellow' } as Record<string, Colour>
    )[state];
    return colour ? this.paint(state, colour) : state;
  }
}

/** `3 min ago`, `12 s`: times the way a table wants them. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '–';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}
