// The bundled action in dist/, run exactly as the runner runs it (INPUT_* variables,
// GITHUB_OUTPUT, GITHUB_STATE, GITHUB_STEP_SUMMARY) against a real hub.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoPath } from '../../hub/paths.js';
import { collect, finalState, output, startTestHub, TOKEN, type TestHub } from '../helpers/hub.js';

let t: TestHub;
let work: string;
beforeAll(async () => {
  t = await startTestHub();
  work = mkdtempSync(join(tmpdir(), 'da-action-'));
});
afterAll(async () => {
  await t?.close();
  rmSync(work, { recursive: true, force: true });
});

interface ActionRun {
  code: number | null;
  log: string;
  outputs: Record<string, string>;
  summary: string;
}

/** Reads the runner's file commands: `name<<DELIMITER\nvalue\nDELIMITER` entries. */
function fileCommands(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^(.+?)<<(.+)\n([\s\S]*?)\n\2$/gm)) out[m[1]!] = m[3]!;
  return out;
}

function runAction(
  entry: 'main' | 'post',
  inputs: Record<string, string>,
  opts: { state?: string; env?: Record<string, string>; onOutput?: (log: string, child: ReturnType<typeof spawn>) => void } = {},
): Promise<ActionRun> {
  const dir = mkdtempSync(join(work, 'run-'));
  const files = { GITHUB_OUTPUT: 'output', GITHUB_STATE: 'state', GITHUB_STEP_SUMMARY: 'summary' };
  const env: Record<string, string> = { PATH: process.env.PATH!, HOME: process.env.HOME!, GITHUB_EVENT_NAME: 'push', ...opts.env };
  for (const [k, f] of Object.entries(files)) {
    env[k] = join(dir, f);
    writeFileSync(env[k]!, '');
  }
  if (opts.state) env['STATE_job-id'] = opts.state;
  for (const [k, v] of Object.entries({ 'hub-url': t.hub.url, token: TOKEN, ...inputs })) env[`INPUT_${k.toUpperCase()}`] = v;
  const child = spawn(process.execPath, [repoPath('dist', `${entry}.js`)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const onData = (d: Buffer) => {
    log += d.toString();
    opts.onOutput?.(log, child);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return new Promise((resolve) => {
    child.on('close', (code) =>
      resolve({ code, log, outputs: fileCommands(env.GITHUB_OUTPUT!), summary: readFileSync(env.GITHUB_STEP_SUMMARY!, 'utf8') }),
    );
  });
}

describe('the GitHub Action', () => {
  it('runs a passing job: live output in groups, outputs and a summary', async () => {
    const r = await runAction('main', {
      steps: JSON.stringify([
        { name: 'greet', run: 'echo "hello $WHO"' },
        { name: 'count', run: 'seq 1 3' },
      ]),
      env: 'WHO=world\nSECRET_THING=hunter22',
    });
    expect(r.code).toBe(0);
    expect(r.log).toContain('::add-mask::hunter22');
    expect(r.log).toMatch(/::group::greet\nhello world\ngreet: exit code 0 in [\d.]+ s\n::endgroup::\n::group::count\n1\n2\n3\n/);
    expect(r.outputs).toMatchObject({ status: 'succeeded', 'exit-code': '0' });
    expect(r.outputs['job-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(r.outputs.duration)).toBeGreaterThan(0);
    expect(r.outputs['log-url']).toBe(`${t.hub.url.replace('http', 'ws')}/v1/jobs/${r.outputs['job-id']}/events`);
    expect(r.summary).toContain('docker-agent job succeeded');
    expect(r.summary).toMatch(/\| greet \| ✅ succeeded \| 0 \|/);
  });

  it('fails the step with the job\'s exit code and puts the failing step\'s tail in the summary', async () => {
    const r = await runAction('main', { run: 'echo before the fall; echo broken >&2; exit 3' });
    expect(r.code).toBe(3);
    expect(r.log).toContain('::error::docker-agent job failed with exit code 3');
    expect(r.outputs).toMatchObject({ status: 'failed', 'exit-code': '3' });
    expect(r.summary).toMatch(/Last lines of run[\s\S]*before the fall\nbroken/);
  });

  it('cancels the job on the hub within two seconds of SIGTERM', async () => {
    let signalledAt = 0;
    const r = await runAction(
      'main',
      { run: 'echo started; sleep 120' },
      {
        onOutput: (log, child) => {
          if (!signalledAt && log.includes('started\n')) {
            signalledAt = Date.now();
            child.kill('SIGTERM');
          }
        },
      },
    );
    // The action exits once the hub has taken the cancel request.
    expect(Date.now() - signalledAt).toBeLessThan(2000);
    expect(r.code).not.toBe(0);
    const events = await collect(t.client, r.outputs['job-id']!);
    expect(finalState(events)).toBe('cancelled');
    expect(output(events)).toBe('started\n');
  });

  it('cancels from the post step a job the main step did not see end', async () => {
    const job = await t.client.createJob({ run: 'sleep 120' });
    const r = await runAction('post', { run: 'unused' }, { state: job.id });
    expect(r.code).toBe(0);
    expect(r.log).toContain(`cancelled job ${job.id}`);
    expect(finalState(await collect(t.client, job.id))).toBe('cancelled');
  });

  it('names a bad input before calling the hub', async () => {
    const r = await runAction('main', { run: 'true', timeout: 'soon' });
    expect(r.code).toBe(1);
    expect(r.log).toContain('::error::input `timeout`: expected seconds');
  });

  it('runs maintenance on a schedule event and reports what the hub removed', async () => {
    const old = await t.client.createJob({ run: 'true' });
    await collect(t.client, old.id);
    const r = await runAction('main', { 'max-job-age-days': '0', 'keep-jobs': '0', 'max-image-age-days': '100000' }, { env: { GITHUB_EVENT_NAME: 'schedule' } });
    expect(r.code).toBe(0);
    expect(r.log).toMatch(/docker-agent maintenance: removed \d+ jobs, 0 images, 0 containers, 0 snapshots/);
    expect(JSON.parse(r.outputs.removed!).jobs).toContain(old.id);
    expect(r.summary).toContain('docker-agent maintenance');
    await expect(t.client.getJob(old.id)).rejects.toMatchObject({ status: 404 });
  });
});
