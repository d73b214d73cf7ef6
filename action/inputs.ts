// Turns the action's raw inputs into one typed settings object, checking each as
// it goes, so a bad input is named before anything is sent to the hub.
import * as core from '@actions/core';
import type { JobRequest } from '../schemas/types.gen.js';

export class InputError extends Error {
  constructor(input: string, message: string) {
    super(`input \`${input}\`: ${message}`);
    this.name = 'InputError';
  }
}

export interface Settings {
  hubUrl: string;
  token: string;
  request: JobRequest;
  /** Values to hide in the log besides the token. */
  secrets: string[];
}

export interface MaintenanceSettings {
  hubUrl: string;
  token: string;
  prune: { jobsOlderThan: number; keepJobs: number; imagesOlderThan: number; dryRun: boolean };
}

/** `run` a job, or `maintenance` (chosen by itself on `schedule` events). */
export function readMode(get: (name: string) => string = (n) => core.getInput(n), event = process.env.GITHUB_EVENT_NAME): 'run' | 'maintenance' {
  const mode = get('mode').trim() || (event === 'schedule' ? 'maintenance' : 'run');
  if (mode !== 'run' && mode !== 'maintenance') throw new InputError('mode', `expected run or maintenance, got ${JSON.stringify(mode)}`);
  return mode;
}

function hub(get: (name: string) => string): { hubUrl: string; token: string } {
  const hubUrl = get('hub-url').trim();
  if (!/^https?:\/\//.test(hubUrl)) throw new InputError('hub-url', `expected an http(s) URL of the hub, got ${JSON.stringify(hubUrl)}`);
  const token = get('token').trim();
  if (!token) throw new InputError('token', 'is required (the hub\'s API token, e.g. from a secret)');
  return { hubUrl, token };
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
    ...hub(get),
    prune: {
      jobsOlderThan: number(get, 'max-job-age-days', 30) * day,
      keepJobs: Math.floor(number(get, 'keep-jobs', 100)),
      imagesOlderThan: number(get, 'max-image-age-days', 7) * day,
      dryRun: get('dry-run').trim() === 'true',
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

export function readSettings(get: (name: string) => string = (n) => core.getInput(n)): Settings {
  const { hubUrl, token } = hub(get);
  const run = get('run');
  const stepsText = get('steps').trim();
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
  };
  return { hubUrl, token, request, secrets: Object.values(env).filter((v) => v.length >= 4) };
}
