// Named agents: create, list, status, exec, task, logs, stop, start, destroy.
import { InvalidArgumentError, type Command } from 'commander';
import type { AgentView, HubClient, JobEvent } from '../../client/index.js';
import { parseEnvOptions, repeatable, type Context } from '../context.js';
import { CliError, EXIT } from '../exit-codes.js';
import type { Output } from '../output.js';
import { ago } from '../output.js';
import { writeOutput } from '../follow.js';
import { runAndFollow, seconds } from './jobs.js';

/** What `exec -i` reads of stdin at most: a task's input, not a file transfer. */
const MAX_STDIN = 1024 * 1024;

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

/** Follows an agent's log until it runs (or fails), showing image builds as they go. */
async function waitRunning(client: HubClient, name: string, out: Output): Promise<AgentView> {
  const stop = new AbortController();
  try {
    for await (const e of client.agentLogs(name, { tail: 0, follow: true, signal: stop.signal })) {
      if (e.type === 'progress') out.note(`${e.current ? `[${e.current}/${e.total}] ` : ''}${e.message}`);
      if (e.type === 'agent' && e.state !== 'starting') break;
    }
  } finally {
    stop.abort();
  }
  return client.getAgent(name);
}

/** Starting agents may have passed `running` before the log was opened: look once more. */
async function untilStarted(client: HubClient, agent: AgentView, out: Output): Promise<AgentView> {
  const now = agent.state === 'starting' ? await client.getAgent(agent.name) : agent;
  const ended = now.state === 'starting' ? await waitRunning(client, agent.name, out) : now;
  if (ended.state !== 'running') throw new CliError(`agent ${ended.name} is ${ended.state}${ended.reason ? `: ${ended.reason}` : ''}`, EXIT.hubFailed);
  return ended;
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '–' : `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

function printEvent(e: JobEvent, out: Output): void {
  if (e.type === 'stdout' || e.type === 'stderr') {
    writeOutput(e, out, { json: false });
  } else if (e.type === 'agent') {
    out.note(`[${e.time}] agent ${e.state}${e.job ? ` · job ${e.job}` : ''}${e.reason ? ` · ${e.reason}` : ''}`);
  } else if (e.type === 'progress') {
    out.note(`[${e.time}] ${e.message}`);
  }
}

export function registerAgentCommands(program: Command, ctx: Context): void {
  program
    .command('create')
    .description('create a named agent from a profile and wait until it runs')
    .argument('<name>', 'a lower-case DNS label, unique on the hub')
    .option('-p, --profile <name>', "its profile (default: the hub's)")
    .option('-e, --env <KEY=value>', 'an environment variable of every task on it (repeatable)', repeatable, [])
    .option('--idle-timeout <seconds>', 'stop it after this long without a task or a shell', seconds)
    .option('--from <snapshot>', 'start from a snapshot (docker-agent snapshots) with the files it had')
    .option('--json', 'print the agent as JSON')
    .addHelpText('after', '\nExamples:\n  docker-agent create my-builder --profile builder\n  docker-agent create copy --from 5b1e…')
    .action(async (name: string, o: { profile?: string; env: string[]; idleTimeout?: number; from?: string; json?: boolean }) => {
      const env = parseEnvOptions(o.env);
      const client = ctx.client();
      const created = await client.createAgent({
        name,
        ...(o.profile ? { profile: o.profile } : {}),
        ...(Object.keys(env).length ? { env } : {}),
        ...(o.idleTimeout ? { idleTimeout: o.idleTimeout } : {}),
        ...(o.from ? { from: { snapshot: o.from } } : {}),
      });
      const agent = await untilStarted(client, created, ctx.out);
      if (o.json) ctx.out.json(agent);
      else ctx.out.line(`agent ${agent.name} ${ctx.out.state(agent.state)} (profile ${agent.profile}, /workspace on volume ${agent.volume})`);
    });

  program
    .command('list')
    .description('list your agents')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  docker-agent list --json')
    .action(async (o: { json?: boolean }) => {
      const agents = await ctx.client().listAgents();
      if (o.json) return ctx.out.json(agents);
      ctx.out.table(
        ['NAME', 'STATE', 'PROFILE', 'CPU', 'MEMORY', 'JOB', 'LAST ACTIVITY'],
        agents.map((a) => [
          a.name,
          ctx.out.state(a.state),
          a.profile,
          a.health ? `${a.health.cpuPercent.toFixed(1)}%` : '–',
          mib(a.health?.memoryBytes),
          a.currentJob ?? '–',
          ago(a.lastActivityAt),
        ]),
      );
    });

  program
    .command('status')
    .description("an agent's state, image, health and volume")
    .argument('<name>')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  docker-agent status my-builder')
    .action(async (name: string, o: { json?: boolean }) => {
      const a = await ctx.client().getAgent(name);
      if (o.json) return ctx.out.json(a);
      const rows: Array<[string, string]> = [
        ['name', a.name],
        ['state', `${ctx.out.state(a.state)}${a.reason ? ` (${a.reason})` : ''}`],
        ['profile', a.profile],
        ['image', a.image ?? '–'],
        ['created', `${a.createdAt} (${ago(a.createdAt)})`],
        ['last activity', ago(a.lastActivityAt)],
        ['current job', a.currentJob ?? '–'],
        ['cpu', a.health ? `${a.health.cpuPercent.toFixed(1)}%` : '–'],
        ['memory', mib(a.health?.memoryBytes)],
        ['volume', a.volume],
        ['idle timeout', a.idleTimeout ? `${a.idleTimeout} s` : 'off'],
      ];
      for (const [k, v] of rows) ctx.out.line(`${ctx.out.paint(k.padEnd(14), 'bold')}${v}`);
    });

  program
    .command('exec')
    .description('run a command on an agent, after its earlier tasks; output live, its exit code as ours')
    .argument('<name>')
    .argument('<command...>', 'a bash command line (words are joined with spaces)')
    .option('-i, --interactive', 'pass stdin to the command (read to its end first, up to 1 MiB)')
    .option('-e, --env <KEY=value>', 'an environment variable (repeatable)', repeatable, [])
    .option('-t, --timeout <seconds>', 'time limit of the command', seconds)
    .option('--json', "print the ended job as JSON on stdout (the command's output goes to stderr)")
    .addHelpText('after', '\nExamples:\n  docker-agent exec my-builder "npm --version"\n  echo hello | docker-agent exec -i my-builder "tr a-z A-Z"')
    .action(async (name: string, command: string[], o: { interactive?: boolean; env: string[]; timeout?: number; json?: boolean }) => {
      const env = parseEnvOptions(o.env);
      const stdin = o.interactive ? await readStdin() : undefined;
      await runAndFollow(
        ctx,
        {
          agent: name,
          task: {
            type: 'exec',
            command: command.join(' '),
            ...(Object.keys(env).length ? { env } : {}),
            ...(o.timeout ? { timeout: o.timeout } : {}),
            ...(stdin !== undefined ? { stdin } : {}),
          },
        },
        o,
      );
    });

  program
    .command('task')
    .description('send an agent a JSON task ({"type":"exec","command":…}) and follow it')
    .argument('<name>')
    .argument('<json>', 'the task')
    .option('--json', 'print the ended job as JSON on stdout')
    .addHelpText('after', `\nExample:\n  docker-agent task my-builder '{"type":"exec","command":"pwd"}'`)
    .action(async (name: string, json: string, o: { json?: boolean }) => {
      let task: unknown;
      try {
        task = JSON.parse(json);
      } catch (err) {
        throw new CliError(`the task is not JSON: ${(err as Error).message}`, EXIT.usage);
      }
      // The hub checks the task's shape and names a wrong field by its path.
      await runAndFollow(ctx, { agent: name, task: task as never }, o);
    });

  program
    .command('logs')
    .description("an agent's log: its lifecycle and its tasks' output")
    .argument('<name>')
    .option('-n, --tail <n>', 'only the newest n events', count)
    .option('-f, --follow', 'keep printing what comes')
    .option('--json', 'print the events as JSON lines')
    .addHelpText('after', '\nExample:\n  docker-agent logs my-builder --follow --tail 20')
    .action(async (name: string, o: { tail?: number; follow?: boolean; json?: boolean }) => {
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      for await (const e of ctx
        .client()
        .agentLogs(name, { ...(o.tail !== undefined ? { tail: o.tail } : {}), follow: Boolean(o.follow), signal: stop.signal })) {
        if (o.json) ctx.out.line(JSON.stringify(e));
        else printEvent(e, ctx.out);
      }
    });

  program
    .command('stop')
    .description('stop an agent: what runs in it ends, /workspace stays')
    .argument('<name>')
    .option('--json', 'print the agent as JSON')
    .addHelpText('after', '\nExample:\n  docker-agent stop my-builder')
    .action(async (name: string, o: { json?: boolean }) => {
      const a = await ctx.client().stopAgent(name);
      if (o.json) ctx.out.json(a);
      else ctx.out.line(`agent ${a.name} ${ctx.out.state(a.state)}`);
    });

  program
    .command('start')
    .description('start a stopped agent again (a fresh container on the same /workspace) and wait until it runs')
    .argument('<name>')
    .option('--json', 'print the agent as JSON')
    .addHelpText('after', '\nExample:\n  docker-agent start my-builder')
    .action(async (name: string, o: { json?: boolean }) => {
      const client = ctx.client();
      const a = await untilStarted(client, await client.startAgent(name), ctx.out);
      if (o.json) ctx.out.json(a);
      else ctx.out.line(`agent ${a.name} ${ctx.out.state(a.state)}`);
    });

  program
    .command('snapshot')
    .description('commit an agent, with its /workspace, as a snapshot new agents and jobs can start from')
    .argument('<name>')
    .option('--json', 'print the snapshot as JSON')
    .addHelpText('after', '\nExample:\n  docker-agent snapshot my-builder   # then: docker-agent create copy --from <id>')
    .action(async (name: string, o: { json?: boolean }) => {
      const s = await ctx.client().snapshotAgent(name);
      if (o.json) ctx.out.json(s);
      else ctx.out.line(`snapshot ${s.id} of agent ${name} (${mib(s.bytes)}, image ${s.image})`);
    });

  program
    .command('snapshots')
    .description('list your snapshots (of agents, and of jobs that asked for one)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  docker-agent snapshots')
    .action(async (o: { json?: boolean }) => {
      const list = await ctx.client().listSnapshots();
      if (o.json) return ctx.out.json(list);
      ctx.out.table(
        ['ID', 'SOURCE', 'SIZE', 'CREATED'],
        list.map((s) => [s.id, s.source, mib(s.bytes), ago(s.createdAt)]),
      );
    });

  program
    .command('destroy')
    .description('remove an agent, its container and (unless kept) its /workspace volume')
    .argument('<name>')
    .option('--keep-volume', 'keep the volume')
    .addHelpText('after', '\nExample:\n  docker-agent destroy my-builder')
    .action(async (name: string, o: { keepVolume?: boolean }) => {
      await ctx.client().destroyAgent(name, { keepVolume: Boolean(o.keepVolume) });
      ctx.out.line(`agent ${name} destroyed${o.keepVolume ? ' (volume kept)' : ''}`);
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_STDIN) throw new CliError(`stdin is larger than ${MAX_STDIN} bytes, the most exec -i passes on`, EXIT.usage);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
