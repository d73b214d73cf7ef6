// `docker-agent …`: parse the command line, run the command, exit with a code that
// means something (cli/exit-codes.ts).
import { CommanderError } from 'commander';
import { createContext } from './context.js';
import { describeFailure, EXIT } from './exit-codes.js';
import { buildProgram } from './program.js';

// A reader that stops early (`docker-agent jobs | head`) closes the pipe: that is the end of our output, not a crash.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

async function main(): Promise<number> {
  const ctx = createContext();
  try {
    await buildProgram(ctx).parseAsync(process.argv);
    return ctx.exitCode;
  } catch (err) {
    // Help and --version are "errors" to commander; usage mistakes have already been printed.
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    const failure = describeFailure(err);
    ctx.out.streams.err.write(`docker-agent: ${failure.message}\n`);
    return failure.exitCode;
  }
}

main().then((code) => {
  process.exitCode = code;
});
