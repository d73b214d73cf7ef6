// A job request turned into what the hub stores and runs: the steps (from `run`,
// `steps` or a JSON task), their env and limits. Pure: no store, no engine, no
// principal; the job service checks who may ask for what before and after.
import type { JobRequest } from '../../schemas/types.gen.js';
import { HubError, validationError } from '../platform/errors.js';
import type { JobSpec } from '../store/jobs.js';

export const DEFAULT_TIMEOUT_S = 3600;

export function jobSpec(req: JobRequest, o: { profileTimeout?: number; agentEnv?: Record<string, string>; fromImage?: string }): JobSpec {
  if (o.agentEnv && (req.from || req.profile || req.workspace || req.keep || req.snapshot)) {
    throw new HubError(
      'VALIDATION_FAILED',
      "a job on a named agent runs in the agent's container: `profile`, `from`, `workspace`, `keep` and `snapshot` do not apply (snapshot the agent instead)",
      {
        issues: [{ path: '/agent', message: 'cannot be combined with profile, from, workspace, keep or snapshot' }],
      },
    );
  }
  const steps =
    req.steps ??
    (req.task
      ? [{ name: req.task.type, run: req.task.command, env: req.task.env, timeout: req.task.timeout, stdin: req.task.stdin }]
      : [{ name: 'run', run: req.run! }]);
  const spec: JobSpec = {
    steps: steps.map((s, i) => ({
      name: s.name ?? `step ${i + 1}`,
      run: s.run,
      env: s.env ?? {},
      ...(s.timeout ? { timeout: s.timeout } : {}),
      ...('stdin' in s && s.stdin !== undefined ? { stdin: s.stdin } : {}),
    })),
    env: { ...o.agentEnv, ...req.env },
    timeout: req.timeout ?? o.profileTimeout ?? DEFAULT_TIMEOUT_S,
    keep: req.keep ?? false,
    ...(req.workspace ? { workspace: req.workspace } : {}),
    ...(req.snapshot ? { snapshot: true } : {}),
    ...(o.fromImage ? { fromImage: o.fromImage } : {}),
  };
  checkExecLimits(spec, req.steps ? 'steps' : req.task ? 'task' : 'run');
  return spec;
}

/**
 * The kernel's limits on what one program is started with: each step is `bash -c RUN`
 * with the job's and the step's env, so a longer RUN or env value could be stored
 * but never started (E2BIG). One argument or `NAME=value` may be 128 KiB less its
 * NUL (MAX_ARG_STRLEN); all of them together are kept under 1 MiB, half of the usual
 * ARG_MAX, leaving the rest to the runtime's own environment.
 */
export const MAX_ARG_BYTES = 128 * 1024 - 1;
export const MAX_EXEC_BYTES = 1024 * 1024;

function checkExecLimits(spec: JobSpec, given: 'run' | 'steps' | 'task'): void {
  const issues: Array<{ path: string; message: string }> = [];
  const tooLong = (bytes: number) =>
    `is ${bytes} bytes; a program's argument or environment entry may be at most ${MAX_ARG_BYTES} (put longer text in a file of the workspace)`;
  const envBytes = (env: Record<string, string>, at: string) => {
    let total = 0;
    for (const [name, value] of Object.entries(env)) {
      const bytes = Buffer.byteLength(`${name}=${value}`) + 1;
      if (bytes - 1 > MAX_ARG_BYTES) issues.push({ path: `${at}/${name}`, message: tooLong(bytes - 1) });
      total += bytes;
    }
    return total;
  };
  const jobEnv = envBytes(spec.env, '/env');
  spec.steps.forEach((step, i) => {
    const at = given === 'steps' ? `/steps/${i}/run` : given === 'task' ? '/task/command' : '/run';
    const run = Buffer.byteLength(step.run) + 1;
    if (run - 1 > MAX_ARG_BYTES) issues.push({ path: at, message: tooLong(run - 1) });
    const total = run + jobEnv + envBytes(step.env, given === 'steps' ? `/steps/${i}/env` : '/task/env');
    if (total > MAX_EXEC_BYTES)
      issues.push({ path: at, message: `with its env is ${total} bytes; a step may start with at most ${MAX_EXEC_BYTES} bytes of command and env` });
  });
  if (issues.length) throw validationError('job request', issues);
}
