// A real terminal for tests of interactive programs: a tmux session of its own
// (its own server socket), keys typed with send-keys, the screen read with
// capture-pane, the window resized with resize-window.
import { execFileSync } from 'node:child_process';

export interface Terminal {
  /** Types text; `enter` presses Return after it. */
  type(text: string, opts?: { enter?: boolean }): void;
  /** Presses a key by tmux's name for it, e.g. C-c. */
  key(name: string): void;
  screen(): string;
  /** Resolves with the screen once `test` holds for it; fails with the screen after `timeoutMs`. */
  waitFor(test: RegExp | ((screen: string) => boolean), timeoutMs?: number): Promise<string>;
  resize(cols: number, rows: number): void;
  close(): void;
}

export function openTerminal(opts: { cols: number; rows: number; env: Record<string, string>; cwd: string }): Terminal {
  const socket = `da-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const env = Object.entries(opts.env).map(([k, v]) => `${k}=${v}`);
  // A plain shell with a known prompt, with the test's environment and nothing of the user's.
  tmux(
    'new-session',
    '-d',
    '-s',
    'test',
    '-x',
    String(opts.cols),
    '-y',
    String(opts.rows),
    '-c',
    opts.cwd,
    'env',
    '-i',
    `PATH=${process.env.PATH}`,
    `HOME=${process.env.HOME}`,
    'TERM=xterm-256color',
    'PS1=outer$ ',
    ...env,
    'bash',
    '--norc',
    '--noprofile',
    '-i',
  );
  const screen = () => tmux('capture-pane', '-p', '-t', 'test', '-S', '-200');
  return {
    type: (text, { enter = true } = {}) => {
      tmux('send-keys', '-t', 'test', '-l', text);
      if (enter) tmux('send-keys', '-t', 'test', 'Enter');
    },
    key: (name) => void tmux('send-keys', '-t', 'test', name),
    screen,
    async waitFor(test, timeoutMs = 15_000) {
      const ok = typeof test === 'function' ? test : (s: string) => test.test(s);
      const until = Date.now() + timeoutMs;
      for (;;) {
        const s = screen();
        if (ok(s)) return s;
        if (Date.now() > until) throw new Error(`the terminal never showed ${test}; it shows:\n${s}`);
        // Poll the screen: tmux has no way to say that it changed.
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    resize: (cols, rows) => void tmux('resize-window', '-t', 'test', '-x', String(cols), '-y', String(rows)),
    close: () => {
      try {
        tmux('kill-server');
      } catch {
        // already gone
      }
    },
  };
}
