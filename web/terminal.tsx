// xterm.js views: a job's or agent's log (read-only, ANSI colours as printed), and an
// interactive shell over the hub's shell protocol (schemas/shell-frame.ts), the same
// one the CLI speaks.
import { useEffect, useRef } from 'preact/hooks';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import { SHELL_CHANNEL, SHELL_PROTOCOL } from '../schemas/shell-frame.js';

const THEME = { background: '#0d1117', foreground: '#d6dde6' };

function mount(el: HTMLElement, opts: ConstructorParameters<typeof Terminal>[0]) {
  const term = new Terminal({ fontSize: 13, scrollback: 20_000, convertEol: true, theme: THEME, ...opts });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(el);
  fit.fit();
  const resize = new ResizeObserver(() => fit.fit());
  resize.observe(el);
  return { term, dispose: () => (resize.disconnect(), term.dispose()) };
}

/** Gives the parent a `write` to feed the log into; the terminal lives as long as `resetKey` stays. */
export function LogView({ feed, resetKey, testId }: { feed: (write: (data: string | Uint8Array) => void) => () => void; resetKey: string; testId?: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const { term, dispose } = mount(box.current!, { disableStdin: true, cursorBlink: false, cursorStyle: 'bar' });
    const stop = feed((d) => term.write(d));
    return () => {
      stop();
      dispose();
    };
  }, [resetKey]);
  return <div class="terminal" data-testid={testId} ref={box} />;
}

/** A shell in a running agent or job over WS …/shell (the session cookie authorizes it). */
export function Shell({ path, onExit }: { path: string; onExit: (message: string) => void }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const { term, dispose } = mount(box.current!, { cursorBlink: true, convertEol: false });
    const url = new URL(path, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('cols', String(term.cols));
    url.searchParams.set('rows', String(term.rows));
    const ws = new WebSocket(url, SHELL_PROTOCOL);
    ws.binaryType = 'arraybuffer';
    const encoder = new TextEncoder();
    const frame = (channel: number, body: Uint8Array) => {
      const out = new Uint8Array(body.length + 1);
      out[0] = channel;
      out.set(body, 1);
      return out;
    };
    const send = (channel: number, body: Uint8Array) => ws.readyState === WebSocket.OPEN && ws.send(frame(channel, body));
    ws.onmessage = (m) => {
      const data = new Uint8Array(m.data as ArrayBuffer);
      const body = data.subarray(1);
      if (data[0] === SHELL_CHANNEL.output) term.write(body);
      else if (data[0] === SHELL_CHANNEL.exit) {
        const exit = JSON.parse(new TextDecoder().decode(body)) as { exitCode?: number; error?: string };
        onExit(exit.error ?? `the shell exited with ${exit.exitCode}`);
      }
    };
    ws.onclose = (e) => {
      if (e.code !== 1000) onExit(`the shell closed: ${e.reason || `code ${e.code}`}`);
    };
    const input = term.onData((d) => send(SHELL_CHANNEL.stdin, encoder.encode(d)));
    const resized = term.onResize(({ cols, rows }) => send(SHELL_CHANNEL.resize, encoder.encode(JSON.stringify({ cols, rows }))));
    term.focus();
    return () => {
      input.dispose();
      resized.dispose();
      ws.close();
      dispose();
    };
  }, [path]);
  return <div class="terminal shell" data-testid="shell" ref={box} />;
}
