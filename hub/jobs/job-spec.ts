// A job request turned into what the hub stores and runs: the steps (from `run`,
// `steps` or a JSON task), their env and limits. Pure: no store, no engine, no
// principal; the job service checks who may ask for what before and after.
import type { JobRequest } from '../../schemas/types.gen.js';
import { HubError } from '../platform/errors.js';
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
  return {
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
}
