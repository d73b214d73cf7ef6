// `shell`: a terminal in a container, as `docker exec -it` gives one: raw keys in
// (Ctrl-C reaches the remote process), the window size kept in step, and the
// shell's exit code as ours.
import type { Command } from 'commander';
import type { Context } from '../context.js';

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function registerShellCommand(program: Command, ctx: Context): void {
  program
    .command('shell')
    .description("open an interactive shell in a named agent, or in a running job's container")
    .argument('<agent|job-id>')
    .addHelpText(
      'after',
      "\nExamples:\n  docker-agent shell my-builder   # then `exit` (its code is the command's)\n  docker-agent shell 3f6c2a1e-…   # a running job",
    )
    .action(async (target: string) => {
      const stdin = process.stdin;
      const stdout = ctx.out.streams.out;
      const size = () => ({ cols: stdout.columns || 80, rows: stdout.rows || 24 });
      // Job ids are UUIDs; agent names are DNS labels, which a UUID never is.
      const where = JOB_ID.test(target) ? { job: target } : { agent: target };
      const conn = await ctx.client().shell(where, size(), (data) => stdout.write(data));
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
