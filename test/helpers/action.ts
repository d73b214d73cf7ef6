// Runs the action the way GitHub's runner does: it loads action.yml, gives every
// input it declares as INPUT_<NAME> (the step's `with:` value, else the input's
// default, with `${{ github.token }}` evaluated), runs `runs.main` or `runs.post`
// (when `runs.post-if` holds) with the Node the test names, hands the event payload
// in GITHUB_EVENT_PATH and the file commands in GITHUB_OUTPUT / GITHUB_STATE /
// GITHUB_ENV / GITHUB_PATH / GITHUB_STEP_SUMMARY, and reads the step's output as
// the runner does: workflow commands take effect, the rest is the log.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoPath } from '../../hub/platform/paths.js';
import { runnerLog, type WorkflowCommand } from './workflow-commands.js';

export interface ActionManifest {
  name: string;
  inputs: Record<string, { description: string; required?: boolean; default?: string }>;
  outputs: Record<string, { description: string }>;
  runs: { using: string; main: string; post?: string; 'post-if'?: string };
}

/** action.yml as the runner reads it: YAML 1.2, strictly. */
export function loadManifest(): ActionManifest {
  return parse(readFileSync(repoPath('action.yml'), 'utf8'), { strict: true, uniqueKeys: true }) as ActionManifest;
}

export type NodeVersion = 'node20' | 'node24';

/** The Node binaries the bundle runs on: this machine's (20) and the one GitHub runs actions on (24, installed by setup). */
export function nodeBinary(version: NodeVersion): string {
  if (version === 'node20') return process.execPath;
  const node24 = repoPath('build', 'node24', 'node_modules', '.bin', 'node');
  if (!existsSync(node24)) throw new Error(`${node24} is missing: run \`node scripts/setup.mjs --for=test\`, which installs it`);
  return node24;
}

/** The runner's name for an input's variable: upper case, spaces to underscores, dashes kept. */
export const inputVariable = (name: string) => `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;

/** `${{ github.token }}` and the like, from the few context values a test gives; anything else is a mistake. */
function evaluate(text: string, context: Record<string, string>): string {
  return text.replace(/\$\{\{\s*([\w.-]+)\s*\}\}/g, (_m, name: string) => {
    if (!(name in context)) throw new Error(`action.yml uses \${{ ${name} }}, which the test runner does not know`);
    return context[name]!;
  });
}

/** Every declared input as the runner sets it; an input the step gives that action.yml does not declare is an error. */
export function inputEnv(manifest: ActionManifest, given: Record<string, string>, context: Record<string, string>): Record<string, string> {
  const undeclared = Object.keys(given).filter((k) => !(k in manifest.inputs));
  if (undeclared.length) throw new Error(`inputs not declared in action.yml: ${undeclared.join(', ')}`);
  const env: Record<string, string> = {};
  for (const [name, input] of Object.entries(manifest.inputs)) env[inputVariable(name)] = given[name] ?? evaluate(String(input.default ?? ''), context);
  return env;
}

export interface ActionRun {
  code: number | null;
  /** What the step wrote, as written. */
  raw: string;
  /** The log as the runner keeps it (see workflow-commands.ts). */
  log: string;
  /** The workflow commands that took effect. */
  commands: WorkflowCommand[];
  masks: string[];
  outputs: Record<string, string>;
  /** What the step saved for its post step (GITHUB_STATE). */
  state: Record<string, string>;
  summary: string;
  /** GITHUB_ENV and GITHUB_PATH as the step left them. */
  env: string;
  path: string;
}

export interface ActionOptions {
  /** Where the run's files go (a fresh folder in it per run). */
  work: string;
  /** The step's `with:`. */
  with: Record<string, string>;
  entry?: 'main' | 'post';
  node?: NodeVersion;
  /** What the main step saved (its run's `state`), for the post step. */
  state?: Record<string, string>;
  event?: { name: string; payload?: unknown };
  env?: Record<string, string>;
  onOutput?: (raw: string, child: ReturnType<typeof spawn>) => void;
}

/** The runner's file commands: `name<<DELIMITER\nvalue\nDELIMITER` entries. */
function fileCommands(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of readFileSync(file, 'utf8').matchAll(/^(.+?)<<(.+)\n([\s\S]*?)\n\2$/gm)) out[m[1]!] = m[3]!;
  return out;
}

export function runAction(o: ActionOptions): Promise<ActionRun> {
  const manifest = loadManifest();
  const entry = o.entry ?? 'main';
  const script = manifest.runs[entry];
  if (!script) throw new Error(`action.yml has no runs.${entry}`);
  if (entry === 'post' && manifest.runs['post-if'] !== 'always()') {
    throw new Error(`runs.post-if is ${JSON.stringify(manifest.runs['post-if'])}; the test runner knows only always()`);
  }
  const dir = mkdtempSync(join(o.work, 'run-'));
  const githubToken = 'ghs_workflow_token';
  const env: Record<string, string> = {
    PATH: process.env.PATH!,
    HOME: process.env.HOME!,
    RUNNER_TEMP: dir,
    GITHUB_EVENT_NAME: o.event?.name ?? 'push',
    GITHUB_REPOSITORY: 'Codertocat/Hello-World',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_RUN_ID: '4242',
    ...o.env,
    ...inputEnv(manifest, o.with, { 'github.token': githubToken }),
  };
  const files = {
    GITHUB_OUTPUT: 'output',
    GITHUB_STATE: 'state',
    GITHUB_ENV: 'env',
    GITHUB_PATH: 'path',
    GITHUB_STEP_SUMMARY: 'summary',
    GITHUB_EVENT_PATH: 'event.json',
  };
  for (const [k, f] of Object.entries(files)) {
    env[k] = join(dir, f);
    writeFileSync(env[k]!, '');
  }
  writeFileSync(env.GITHUB_EVENT_PATH!, JSON.stringify(o.event?.payload ?? {}));
  for (const [k, v] of Object.entries(o.state ?? {})) env[`STATE_${k}`] = v;
  const child = spawn(nodeBinary(o.node ?? 'node20'), [repoPath(script)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let raw = '';
  const streams = { stdout: '', stderr: '' };
  for (const name of ['stdout', 'stderr'] as const) {
    child[name].on('data', (d: Buffer) => {
      streams[name] += d.toString();
      raw += d.toString();
      o.onOutput?.(raw, child);
    });
  }
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      // The runner reads each stream line by line on its own.
      const out = runnerLog(streams.stdout);
      const err = runnerLog(streams.stderr);
      const commands = [...out.commands, ...err.commands];
      const outputs = { ...fileCommands(env.GITHUB_OUTPUT!) };
      for (const c of commands) if (c.command === 'set-output' && c.properties.name) outputs[c.properties.name] = c.data;
      const undeclared = Object.keys(outputs).filter((k) => !(k in manifest.outputs));
      if (undeclared.length) return reject(new Error(`the action set outputs action.yml does not declare: ${undeclared.join(', ')}`));
      resolve({
        code,
        raw,
        log: out.text + err.text,
        commands,
        masks: [...out.masks, ...err.masks],
        outputs,
        state: fileCommands(env.GITHUB_STATE!),
        summary: readFileSync(env.GITHUB_STEP_SUMMARY!, 'utf8'),
        env: readFileSync(env.GITHUB_ENV!, 'utf8'),
        path: readFileSync(env.GITHUB_PATH!, 'utf8'),
      });
    });
  });
}
