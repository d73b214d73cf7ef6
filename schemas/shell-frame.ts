// The shell sub-protocol: an interactive terminal in a container over one
// WebSocket (after Kubernetes' channel.k8s.io exec protocol). The client asks for
// sub-protocol `docker-agent.shell.v1` and may give the first window size as
// `?cols=&rows=`. Every message is a binary frame whose first byte is its channel:
//
//   0  stdin   client → hub   bytes typed at the terminal (Ctrl-C is the byte 0x03;
//                              the PTY turns it into SIGINT for the foreground process)
//   1  output  hub → client   bytes the terminal printed (a TTY merges stdout and stderr)
//   3  exit    hub → client   JSON {"exitCode": n} when the shell ends, or {"error": "…"};
//                              the hub then closes with 1000
//   4  resize  client → hub   JSON {"cols": n, "rows": n}: the window changed size
//
// A client that closes the socket ends the shell (the PTY is hung up).

export const SHELL_PROTOCOL = 'docker-agent.shell.v1';

export const SHELL_CHANNEL = { stdin: 0, output: 1, exit: 3, resize: 4 } as const;

export type ShellChannel = (typeof SHELL_CHANNEL)[keyof typeof SHELL_CHANNEL];

export interface ShellSize {
  cols: number;
  rows: number;
}

export type ShellExit = { exitCode: number } | { error: string };

/** Terminal sizes a hub accepts: what a real screen can be. */
export const MAX_SHELL_SIZE = 1000;

export function shellFrame(channel: ShellChannel, payload: Buffer | string | object): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return Buffer.concat([Buffer.from([channel]), body]);
}

export function readShellFrame(frame: Buffer): { channel: number; body: Buffer } {
  if (frame.length === 0) throw new Error('empty shell frame');
  return { channel: frame[0]!, body: frame.subarray(1) };
}

/** A window size from untrusted input, or an error naming what is wrong. */
export function parseShellSize(value: unknown): ShellSize {
  const { cols, rows } = (value ?? {}) as Partial<ShellSize>;
  const ok = (n: unknown) => Number.isInteger(n) && (n as number) > 0 && (n as number) <= MAX_SHELL_SIZE;
  if (!ok(cols) || !ok(rows)) throw new Error(`expected {"cols": n, "rows": n} with whole numbers from 1 to ${MAX_SHELL_SIZE}`);
  return { cols: cols!, rows: rows! };
}
