// One-shot jobs: `run` (submit and follow), `jobs` (list), `cancel`.
import { InvalidArgumentError, type Command } from 'commander';
import { packDirectory } from '../../client/pack-directory.js';
import { isFinalEvent, type JobRequest, type JobState, type JobView } from '../../client/index.js';
import { parseEnvOptions, repeatable, type Context } from '../context.js';
import { jobExitCode } from '../exit-codes.js';
import { followJob } from '../follow.js';
import { ago } from '../output.js';

export function seconds(value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new InvalidArgumentError('expected seconds, a number above 0');
  return n;
}

/** Submits a job and follows it; Ctrl-C cancels it on the hub. The job's exit code becomes ours. */
export async function runAndFollow(ctx: Context, request: JobRequest, opts: { json?: boolean; detach?: boolean }): Promise<void> {
  const client = ctx.client();
  const created = await client.createJob(request);
  if (opts.detach) {
    if (opts.json) ctx.out.json(created);
    else ctx.out.line(created.id);
    return;
  }
  const onSignal = () => {
    ctx.out.note(`cancelling job ${created.id}…`);
    void client.cancelJob(created.id).catch(() => {});
  };
  process.on('SIGINT', onSignal);
  try {
    const job = await followJob(client, created, ctx.out, { json: Boolean(opts.json) });
    if (opts.json) ctx.out.json(job);
    else if (job.state !== 'succeeded')
      ctx.out.note(`job ${job.id} ${job.state}${job.exitCode !== null ? ` (exit code ${job.exitCode})` : ''}${job.reason ? `: ${job.reason}` : ''}`);
    ctx.exitCode = jobExitCode(job);
  } finally {
    process.off('SIGINT', onSignal);
  }
}

function jobRow(ctx: Context, j: JobView): string[] {
  return [j.id, ctx.out.state(j.state), j.profile, j.exitCode === null ? '–' : String(j.exitCode), ago(j.createdAt)];
}

export function registerJobCommands(program: Command, ctx: Context): void {
  program
    .command('run')
    .description('run a script in a fresh container and follow it to its end')
    .argument('<script...>', 'the bash script (words are joined with spaces)')
    .option('-p, --profile <name>', "the container's profile (default: the hub's)")
    .option('-e, --env <KEY=value>', 'an environment variable (repeatable)', repeatable, [])
    .option('-t, --timeout <seconds>', 'time limit of the job', seconds)
    .option('-w, --workspace <dir>', 'a folder uploaded into /workspace first (without .git)')
    .option('--from <snapshot>', "start from a snapshot's files instead of the profile's image")
    .option('-d, --detach', 'print the job id and return at once')
    .option('--json', "print the ended job as JSON on stdout (the job's output goes to stderr)")
    .addHelpText('after', '\nExamples:\n  docker-agent run --profile builder -w . "npm ci && npm test"\n  docker-agent run --json -- uname -a')
    .action(
      async (
        script: string[],
        o: { profile?: string; env: string[]; timeout?: number; workspace?: string; from?: string; detach?: boolean; json?: boolean },
      ) => {
        const env = parseEnvOptions(o.env);
        let workspace: string | undefined;
        if (o.workspace) {
          const up = await ctx.client().uploadWorkspace(packDirectory(o.workspace, { includeGit: false }), 'application/gzip');
          if (!o.json) ctx.out.note(`uploaded ${o.workspace} (${up.entries} entries, ${up.bytes} bytes)`);
          workspace = up.id;
        }
        const request: JobRequest = {
          run: script.join(' '),
          ...(o.profile ? { profile: o.profile } : {}),
          ...(Object.keys(env).length ? { env } : {}),
          ...(o.timeout ? { timeout: o.timeout } : {}),
          ...(workspace ? { workspace } : {}),
          ...(o.from ? { from: { snapshot: o.from } } : {}),
        };
        await runAndFollow(ctx, request, o);
      },
    );

  program
    .command('jobs')
    .description('list jobs, newest first')
    .option('-s, --state <states>', 'only these states, comma-separated (e.g. running,queued)')
    .option('-n, --limit <n>', 'how many', (v) => Number(v), 20)
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  docker-agent jobs --state running,queued')
    .action(async (o: { state?: string; limit: number; json?: boolean }) => {
      const { jobs } = await ctx.client().listJobs({ limit: o.limit, ...(o.state ? { state: o.state.split(',') as JobState[] } : {}) });
      if (o.json) return ctx.out.json(jobs);
      ctx.out.table(
        ['ID', 'STATE', 'PROFILE', 'EXIT', 'CREATED'],
        jobs.map((j) => jobRow(ctx, j)),
      );
    });

  program
    .command('cancel')
    .description('cancel a job; what it printed so far is kept')
    .argument('<job-id>')
    .option('--json', 'print the job as JSON')
    .addHelpText('after', '\nExample:\n  docker-agent cancel 3f6c…')
    .action(async (id: string, o: { json?: boolean }) => {
      const client = ctx.client();
      await client.cancelJob(id);
      // As `docker stop` does: back when the job has ended, its processes stopped.
      for await (const e of client.events(id)) if (isFinalEvent(e)) break;
      const job = await client.getJob(id);
      if (o.json) ctx.out.json(job);
      else ctx.out.line(`cancelled job ${job.id} (${job.state})`);
    });
}
