// `shell`: a terminal in a container, as `docker exec -it` gives one: raw keys in
// (Ctrl-C reaches the remote process), the window size kept in step, and the
// shell's exit code as ours.
import type { Command } from 'commander';
import type { Context } from '../context.js';

export function registerShellCommand(program: Command, ctx: Context): void {
  program
    .command('shell')
    .description("open an interactive shell in a running job's container")
    .argument('<job-id>')
    .addHelpText('after', '\nExample:\n  docker-agent shell 3f6c…   # then `exit` (its code is the command\'s)')
    .action(async (target: string) => {
      const stdin = process.stdin;
      const stdout = ctx.out.streams.out;
      const size = () => ({ cols: stdout.columns || 80, rows: stdout.rows || 24 });
      const conn = await ctx.client().shell(target, size(), (data) => stdout.write(data));
      const onResize = () => conn.resize(size());
      stdout.on('resize', onResize);
      // Keys go through as they are typed; the remote terminal does the echo and the line editing.
      if (stdin.isTTY) stdin.setRawMode(true);
      stdin.on('data', (d: Buffer) => conn.write(d));
      // Input from a pipe ran out: Ctrl-D, as a person would end the shell.
      stdin.on('end', () => conn.write('\x04'));
      try {
        ctx.exitCode = await conn.exited;
      } finally {
        if (stdin.isTTY) stdin.setRawMode(false);
        stdin.pause();
        stdout.off('resize', onResize);
      }
    });
}
