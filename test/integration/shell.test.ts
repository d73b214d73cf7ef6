// `docker-agent shell my-agent` typed into a real terminal (tmux) against a real
// hub and a named agent's real container: the remote shell answers, its window
// follows the terminal's, Ctrl-C stops the remote process and not the CLI, and its
// exit code is the CLI's. Then the shell route's edges (a running job's container
// too) through the shared client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubApiError, HubClient, type JobView } from '../../client/index.js';
import { repoPath } from '../../hub/platform/paths.js';
import { CLI_BIN } from '../helpers/cli.js';
import { collect, settledAgent, startTestHub, TOKEN, type TestHub } from '../helpers/hub.js';
import { openTerminal, type Terminal } from '../helpers/terminal.js';

let t: TestHub;
let job: JobView;
let term: Terminal | undefined;

/** A job that runs until cancelled, once its container runs. */
async function runningJob(client: HubClient): Promise<JobView> {
  const created = await client.createJob({ run: 'echo ready; sleep 600' });
  for await (const e of client.events(created.id)) if (e.type === 'stdout') break;
  return client.getJob(created.id);
}

beforeAll(async () => {
  t = await startTestHub();
  job = await runningJob(t.client);
  await t.client.createAgent({ name: 'shell-host' });
  if ((await settledAgent(t.client, 'shell-host')) !== 'running') throw new Error('the agent did not start');
});
afterAll(async () => {
  term?.close();
  await t?.close();
});

describe('docker-agent shell in a real terminal', () => {
  it("runs commands, follows the window size, passes Ctrl-C on and exits with the shell's code", async () => {
    term = openTerminal({ cols: 120, rows: 40, cwd: repoPath(), env: { DOCKER_AGENT_URL: t.hub.url, DOCKER_AGENT_TOKEN: TOKEN } });
    await term.waitFor(/outer\$\s*$/m);
    term.type(`node ${CLI_BIN} shell shell-host; echo "cli-exit=$?"`);
    await term.waitFor(/agent@[0-9a-f]+:\/workspace\$\s*$/m);

    term.type('echo $((6*7))');
    await term.waitFor(/^42$/m);

    term.type('stty size');
    await term.waitFor(/^40 120$/m);
    term.resize(100, 30);
    // The new size travels tmux → CLI (SIGWINCH) → hub → engine; ask until the remote terminal has it.
    for (let tries = 0; ; tries++) {
      term.type('stty size');
      const shown = await term.waitFor(/^30 100$/m, 2000).catch((err: Error) => err);
      if (typeof shown === 'string') break;
      if (tries === 5) throw shown;
    }

    // Ctrl-C reaches the remote sleep (the CLI itself is in raw mode and stays).
    term.type('sleep 100');
    await term.waitFor(/\$ sleep 100\n/);
    const interrupted = Date.now();
    term.key('C-c');
    await term.waitFor(/\^C\n.*\$\s*$/);
    term.type('echo "sleep-status=$?"');
    await term.waitFor(/^sleep-status=130$/m);
    expect(Date.now() - interrupted).toBeLessThan(10_000);

    term.type('exit 3');
    await term.waitFor(/^cli-exit=3$/m);
  });
});

describe('the shell route', () => {
  it("gives the shell's exit code to the client, and what was typed before the shell was up", async () => {
    let out = '';
    const shell = await t.client.shell({ job: job.id }, { cols: 80, rows: 24 }, (d) => (out += d.toString()));
    shell.write('echo typed-early; exit 7\n');
    expect(await shell.exited).toBe(7);
    expect(out).toContain('typed-early');
  });

  it("refuses a job that does not run, and someone else's job as if it did not exist", async () => {
    const ended = await t.client.createJob({ run: 'true' });
    await collect(t.client, ended.id);
    const notRunning = await t.client.shell({ job: ended.id }, { cols: 80, rows: 24 }, () => {}).catch((e: unknown) => e);
    expect(notRunning).toBeInstanceOf(HubApiError);
    expect(notRunning).toMatchObject({ status: 409, code: 'NOT_RUNNING' });

    const other = await t.client.createToken({ name: 'someone else', scopes: ['jobs'] });
    const stranger = new HubClient({ url: t.hub.url, token: other.token });
    const foreign = await stranger.shell({ job: job.id }, { cols: 80, rows: 24 }, () => {}).catch((e: unknown) => e);
    expect(foreign).toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
  });

  it('refuses a window size no screen has', async () => {
    const err = await t.client.shell({ job: job.id }, { cols: 0, rows: 100000 }, () => {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    expect((err as Error).message).toMatch(/whole numbers from 1 to 1000/);
  });
});
