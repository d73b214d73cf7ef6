// Runs the bundled action in dist/ exactly as the runner does: inputs as INPUT_*
// variables, the event payload in GITHUB_EVENT_PATH, file commands in
// GITHUB_OUTPUT / GITHUB_STATE / GITHUB_STEP_SUMMARY, and one node process per step.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoPath } from '../../hub/paths.js';

export interface ActionRun {
  code: number | null;
  log: string;
  outputs: Record<string, string>;
  summary: string;
}

export interface ActionOptions {
  /** Where the run's files go (a fresh folder in it per run). */
  work: string;
  inputs: Record<string, string>;
  entry?: 'main' | 'post';
  /** STATE_job-id, as saved by the main step. */
  state?: string;
  event?: { name: string; payload?: unknown };
  env?: Record<string, string>;
  onOutput?: (log: string, child: ReturnType<typeof spawn>) => void;
}

/** Reads the runner's file commands: `name<<DELIMITER\nvalue\nDELIMITER` entries. */
function fileCommands(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^(.+?)<<(.+)\n([\s\S]*?)\n\2$/gm)) out[m[1]!] = m[3]!;
  return out;
}

export function runAction(o: ActionOptions): Promise<ActionRun> {
  const dir = mkdtempSync(join(o.work, 'run-'));
  const env: Record<string, string> = {
    PATH: process.env.PATH!,
    HOME: process.env.HOME!,
    RUNNER_TEMP: dir,
    GITHUB_EVENT_NAME: o.event?.name ?? 'push',
    GITHUB_REPOSITORY: 'Codertocat/Hello-World',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_RUN_ID: '4242',
    ...o.env,
  };
  for (const [k, f] of Object.entries({ GITHUB_OUTPUT: 'output', GITHUB_STATE: 'state', GITHUB_STEP_SUMMARY: 'summary', GITHUB_EVENT_PATH: 'event.json' })) {
    env[k] = join(dir, f);
    writeFileSync(env[k]!, '');
  }
  writeFileSync(env.GITHUB_EVENT_PATH!, JSON.stringify(o.event?.payload ?? {}));
  if (o.state) env['STATE_job-id'] = o.state;
  for (const [k, v] of Object.entries(o.inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
  const child = spawn(process.execPath, [repoPath('dist', `${o.entry ?? 'main'}.js`)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const onData = (d: Buffer) => {
    log += d.toString();
    o.onOutput?.(log, child);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return new Promise((resolve) => {
    child.on('close', (code) =>
      resolve({ code, log, outputs: fileCommands(env.GITHUB_OUTPUT!), summary: readFileSync(env.GITHUB_STEP_SUMMARY!, 'utf8') }),
    );
  });
}
