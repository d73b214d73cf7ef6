// The `docker-agent` command run from its bin against a real hub and real
// containers: output as the command printed it, exit codes that mean something,
// --json for scripts, and a login kept in a file only its user can read.
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startTestHub, TOKEN, type TestHub } from '../helpers/hub.js';

let t: TestHub;
let home: string;
let env: Record<string, string>;
beforeAll(async () => {
  t = await startTestHub();
  home = mkdtempSync(join(tmpdir(), 'da-cli-'));
  env = { DOCKER_AGENT_URL: t.hub.url, DOCKER_AGENT_TOKEN: TOKEN, XDG_CONFIG_HOME: home };
});
afterAll(async () => {
  await t?.close();
  rmSync(home, { recursive: true, force: true });
});

describe('docker-agent run', () => {
  it("streams the output to stdout and stderr and exits with the command's code", async () => {
    const r = await runCli(['run', 'echo out; echo err >&2; exit 3'], { env });
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toContain('err\n');
    expect(r.stderr).toMatch(/job \S+ failed \(exit code 3\)/);
    expect(r.code).toBe(3);
  });

  it.each([
    ['a command that succeeds', ['true'], 0],
    ['a command that is not found', ['no-such-command'], 127],
    ['a command that cannot run', ['/etc/hostname'], 126],
    ['a job past its time limit', ['--timeout', '1', 'sleep 30'], 124],
  ])('exits as docker run does for %s', async (_what, args, code) => {
    expect((await runCli(['run', ...args], { env })).code).toBe(code);
  });

  it('passes env and profile, and prints the ended job as JSON for scripts', async () => {
    const r = await runCli(['run', '--json', '-e', 'WHO=you', '--profile', 'default', 'echo hello $WHO'], { env });
    expect(r.code).toBe(0);
    const job = JSON.parse(r.stdout);
    expect(job).toMatchObject({ state: 'succeeded', profile: 'default', exitCode: 0 });
  });

  it('exits 125 when the hub cannot be reached, and 2 for a usage mistake', async () => {
    const down = await runCli(['run', 'true'], { env: { ...env, DOCKER_AGENT_URL: 'http://127.0.0.1:9' } });
    expect(down.code).toBe(125);
    expect(down.stderr).toContain('cannot reach the hub at http://127.0.0.1:9');
    const usage = await runCli(['run', '--timeout', 'soon', 'true'], { env });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("option '-t, --timeout <seconds>' argument 'soon' is invalid");
    expect((await runCli(['run', '-e', 'NOEQUALS', 'true'], { env })).code).toBe(2);
  });

  it("exits 1 with the hub's reason when the hub refuses the request", async () => {
    const r = await runCli(['run', '--profile', 'no-such-profile', 'true'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no-such-profile.*PROFILE_NOT_FOUND/);
  });
});

describe('docker-agent jobs, cancel and login', () => {
  it('lists jobs as a table for people and as JSON for scripts, and cancels one', async () => {
    const started = await runCli(['run', '--detach', 'sleep 60'], { env });
    const id = started.stdout.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const table = await runCli(['jobs', '--limit', '50'], { env });
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+STATE\s+PROFILE\s+EXIT\s+CREATED$/);
    expect(table.stdout).toContain(id);
    // No colour into a pipe.
    expect(table.stdout).not.toContain('\x1b[');
    const cancelled = await runCli(['cancel', '--json', id], { env });
    expect(JSON.parse(cancelled.stdout)).toMatchObject({ id, state: 'cancelled' });
    const listed = JSON.parse((await runCli(['jobs', '--json', '--state', 'cancelled'], { env })).stdout) as Array<{ id: string }>;
    expect(listed.map((j) => j.id)).toContain(id);
  });

  it('checks a login against the hub and keeps it in a file only the user can read', async () => {
    const { DOCKER_AGENT_URL: _u, DOCKER_AGENT_TOKEN: _t, ...bare } = env;
    const wrong = await runCli(['login', '--url', t.hub.url, '--token', 'not-the-token'], { env: bare });
    expect(wrong.code).toBe(1);
    const ok = await runCli(['login', '--url', t.hub.url, '--token', TOKEN], { env: bare });
    expect(ok.code).toBe(0);
    const file = join(home, 'docker-agent', 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ url: t.hub.url, token: TOKEN });
    expect((await runCli(['run', 'echo from the saved login'], { env: bare })).stdout).toBe('from the saved login\n');
    const none = await runCli(['jobs'], { env: { XDG_CONFIG_HOME: join(home, 'elsewhere') } });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('run `docker-agent login --token <token>` or set DOCKER_AGENT_TOKEN');
  });

  it('has help with an example on every command', async () => {
    for (const command of ['run', 'jobs', 'cancel', 'login']) {
      const r = await runCli([command, '--help'], { env });
      expect(r.code).toBe(0);
      expect(r.stdout, command).toMatch(/Examples?:\n {2}docker-agent /);
    }
  });
});
