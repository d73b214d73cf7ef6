// The `docker-agent` command: its subcommands, each in cli/commands/.
import { Command } from 'commander';
import { registerAgentCommands } from './commands/agents.js';
import { registerJobCommands } from './commands/jobs.js';
import { registerLoginCommand } from './commands/login.js';
import { registerShellCommand } from './commands/shell.js';
import type { Context } from './context.js';

export function buildProgram(ctx: Context): Command {
  const program = new Command('docker-agent')
    .description('Run jobs and agents in hardened containers on a docker-agent hub.')
    .version('0.1.0')
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({
      writeOut: (s) => ctx.out.streams.out.write(s),
      writeErr: (s) => ctx.out.streams.err.write(s),
    })
    .addHelpText(
      'after',
      `
The hub is DOCKER_AGENT_URL (default http://127.0.0.1:9091) with DOCKER_AGENT_TOKEN,
or what \`docker-agent login\` saved. Exit codes: the command's own; 1 the hub refused
the request; 2 usage; 124 time limit; 125 the hub or engine failed; 126 cannot run;
127 not found; 130 cancelled.`,
    );
  program.exitOverride();
  registerLoginCommand(program, ctx);
  registerAgentCommands(program, ctx);
  registerJobCommands(program, ctx);
  registerShellCommand(program, ctx);
  for (const c of program.commands) c.exitOverride();
  return program;
}
