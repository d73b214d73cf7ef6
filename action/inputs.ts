// Turns the action's raw inputs into one typed settings object, checking each as
// it goes, so a bad input is named before anything is sent to the hub.
import * as core from '@actions/core';
import type { JobRequest, PruneOptions } from '../client/index.js';

export class InputError extends Error {
  constructor(input: string, message: string) {
    super(`input \`${input}\`: ${message}`);
    this.name = 'InputError';
  }
}

export interface HubSettings {
  hubUrl: string;
  /** Empty: authenticate with a GitHub OIDC ID token for `audience` (by default the hub's URL). */
  token: string;
  audience: string;
}

export interface Settings extends HubSettings {
  request: JobRequest;
  /** Values to hide in the log besides the token. */
  secrets: string[];
  /** A folder to upload into the agent's /workspace. */
  workspace?: { path: string; includeGit: boolean };
}

export interface CommentSettings extends Settings {
  githubToken: string;
  allowForks: boolean;
  /** Profiles a comment may pick with --profile; the workflow's own `profile` is always among them. */
  allowedProfiles: string[];
}

export type Mode = 'run' | 'comment' | 'maintenance';

export interface MaintenanceSettings extends HubSettings {
  prune: Required<
    Pick<PruneOptions, 'jobsOlderThan' | 'keepJobs' | 'imagesOlderThan' | 'maxImageBytes' | 'snapshotsOlderThan' | 'maxSnapshotBytes' | 'dryRun'>
  >;
}

const EVENT_MODES: Record<string, Mode> = { schedule: 'maintenance', issue_comment: 'comment' };

/** `run` a job, answer a PR `comment`, or `maintenance`; by default chosen by the event. */
export function readMode(get: (name: string) => string = (n) => core.getInput(n), event = process.env.GITHUB_EVENT_NAME ?? ''): Mode {
  const mode = get('mode').trim() || EVENT_MODES[event] || 'run';
  if (!['run', 'comment', 'maintenance'].includes(mode)) throw new InputError('mode', `expected run, comment or maintenance, got ${JSON.stringify(mode)}`);
  return mode as Mode;
}

function flag(get: (name: string) => string, name: string): boolean {
  const text = get(name).trim().toLowerCase();
  if (!['', 'true', 'false'].includes(text)) throw new InputError(name, `expected true or false, got ${JSON.stringify(text)}`);
  return text === 'true';
}

export function readHubSettings(get: (name: string) => string = (n) => core.getInput(n)): HubSettings {
  const hubUrl = get('hub-url').trim();
  if (!/^https?:\/\//.test(hubUrl)) throw new InputError('hub-url', `expected an http(s) URL of the hub, got ${JSON.stringify(hubUrl)}`);
  // A hub's default audience is its public URL: a token asked for one hub is no good at another.
  return { hubUrl, token: get('token').trim(), audience: get('oidc-audience').trim() || hubUrl.replace(/\/+$/, '') };
}

function number(get: (name: string) => string, name: string, fallback: number): number {
  const text = get(name).trim();
  if (!text) return fallback;
  const n = Number(text);
  if (!(n >= 0)) throw new InputError(name, `expected a number from 0, got ${JSON.stringify(text)}`);
  return n;
}

export function readMaintenanceSettings(get: (name: string) => string = (n) => core.getInput(n)): MaintenanceSettings {
  const day = 86400;
  return {
    ...readHubSettings(get),
    prune: {
      jobsOlderThan: number(get, 'max-job-age-days', 30) * day,
      keepJobs: Math.floor(number(get, 'keep-jobs', 100)),
      imagesOlderThan: number(get, 'max-image-age-days', 7) * day,
      maxImageBytes: number(get, 'max-image-gb', 20) * 1024 ** 3,
      snapshotsOlderThan: number(get, 'max-snapshot-age-days', 7) * day,
      maxSnapshotBytes: number(get, 'max-snapshot-gb', 20) * 1024 ** 3,
      dryRun: flag(get, 'dry-run'),
    },
  };
}

/** `KEY=value` lines (a value may contain `=`); blank lines and # comments are skipped. */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new InputError('env', `line ${i + 1} is not KEY=value: ${JSON.stringify(line)}`);
    env[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return env;
}

function parseSteps(text: string): JobRequest['steps'] {
  let steps: unknown;
  try {
    steps = JSON.parse(text);
  } catch (err) {
    throw new InputError('steps', `expected a JSON list of {name, run, env, timeout}: ${(err as Error).message}`);
  }
  if (!Array.isArray(steps) || steps.length === 0) throw new InputError('steps', 'expected a non-empty JSON list');
  return steps as JobRequest['steps'];
}

/** The job's settings; in comment mode the command comes from the comment, so `run` may be empty. */
export function readSettings(get: (name: string) => string = (n) => core.getInput(n), { fromComment = false } = {}): Settings {
  const run = fromComment ? 'true' : get('run');
  const stepsText = fromComment ? '' : get('steps').trim();
  if (!run.trim() === !stepsText) throw new InputError('run', 'give either `run` (a script) or `steps` (a JSON list), not both and not neither');
  const timeoutText = get('timeout').trim();
  const timeout = timeoutText ? Number(timeoutText) : undefined;
  if (timeout !== undefined && !(timeout > 0)) throw new InputError('timeout', `expected seconds, a number above 0, got ${JSON.stringify(timeoutText)}`);
  const env = parseEnv(get('env'));
  const profile = get('profile').trim();
  const request: JobRequest = {
    ...(profile ? { profile } : {}),
    ...(stepsText ? { steps: parseSteps(stepsText) } : { run }),
    ...(Object.keys(env).length ? { env } : {}),
    ...(timeout ? { timeout } : {}),
    ...(flag(get, 'snapshot') ? { snapshot: true } : {}),
  };
  const workspace = get('workspace').trim();
  return {
    ...readHubSettings(get),
    request,
    secrets: Object.values(env).filter((v) => v.length >= 4),
    ...(workspace ? { workspace: { path: workspace, includeGit: flag(get, 'workspace-git') } } : {}),
  };
}

/** `a, b c`: the profiles named, each checked as a profile name. */
function profileList(get: (name: string) => string, name: string): string[] {
  const names = get(name)
    .split(/[\s,]+/)
    .filter(Boolean);
  const bad = names.find((n) => !/^[\w.-]+$/.test(n));
  if (bad) throw new InputError(name, `expected profile names separated by commas, got ${JSON.stringify(bad)}`);
  return names;
}

export function readCommentSettings(get: (name: string) => string = (n) => core.getInput(n)): CommentSettings {
  const settings = readSettings(get, { fromComment: true });
  const own = settings.request.profile;
  return {
    ...settings,
    githubToken: get('github-token').trim(),
    allowForks: flag(get, 'allow-forks'),
    allowedProfiles: [...new Set([...(own ? [own] : []), ...profileList(get, 'allowed-profiles')])],
  };
}
