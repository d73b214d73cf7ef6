// Named agents through the `docker-agent` command, run from its bin against a real
// hub and real containers: the Quick Start as the README gives it, files that
// outlive stop/start and not destroy, exit codes, stdin, JSON tasks, logs, and
// two principals who cannot see each other's agents. The shell is typed into a
// real terminal in shell.test.ts; a hub restart with agents is in restart.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubClient } from '../../client/index.js';
import { CLI_BIN, runCli } from '../helpers/cli.js';
import { docker, startTestHub, TOKEN, type TestHub } from '../helpers/hub.js';
import { openTerminal } from '../helpers/terminal.js';
import { repoPath } from '../../hub/platform/paths.js';

let t: TestHub;
let home: string;
let env: Record<string, string>;
const cli = (...args: string[]) => runCli(args, { env });

beforeAll(async () => {
  t = await startTestHub();
  home = mkdtempSync(join(tmpdir(), 'da-agents-'));
  env = { DOCKER_AGENT_URL: t.hub.url, DOCKER_AGENT_TOKEN: TOKEN, XDG_CONFIG_HOME: home };
});
afterAll(async () => {
  await t?.close();
  rmSync(home, { recursive: true, force: true });
});

describe('the Quick Start, as written', () => {
  it('creates, lists, runs commands and tasks, follows logs, stops, starts and destroys an agent', async () => {
    const created = await cli('create', 'my-builder', '--profile', 'builder');
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^agent my-builder running \(profile builder, \/workspace on volume docker-agent-[0-9a-f-]+\)\n$/);

    const list = await cli('list');
    expect(list.stdout).toMatch(/^NAME\s+STATE\s+PROFILE\s+CPU\s+MEMORY\s+JOB\s+LAST ACTIVITY\nmy-builder\s+running\s+builder\s/);
    const status = await cli('status', 'my-builder');
    expect(status.stdout).toMatch(/state\s+running/);
    expect(status.stdout).toMatch(/image\s+docker-agent\/builder:/);

    const npm = await cli('exec', 'my-builder', 'npm --version');
    expect(npm.code).toBe(0);
    expect(npm.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);

    const task = await cli('task', 'my-builder', '{"type":"exec","command":"pwd"}');
    expect(task).toMatchObject({ code: 0, stdout: '/workspace\n' });

    // The newest events only, then what comes while following.
    const tail = await cli('logs', 'my-builder', '--tail', '5', '--json');
    const events = tail.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; data?: string });
    expect(events).toHaveLength(5);
    expect(events.map((e) => e.data).join('')).toContain('/workspace\n');
    // Following: once the newest event is shown the follower is connected; a job's output then reaches it live.
    const marker = `followed-${Date.now()}`;
    let sent: Promise<unknown> | undefined;
    const followed = await runCli(['logs', 'my-builder', '--follow', '--tail', '1', '--json'], {
      env,
      onStdout: (out, child) => {
        if (!sent && out.includes('\n')) sent = cli('exec', 'my-builder', `echo ${marker}`);
        if (out.includes(marker) && !child.killed) child.kill('SIGINT');
      },
    });
    await sent;
    expect(followed.code).toBe(0);
    expect(followed.stdout).toContain(`"data":"${marker}\\n"`);

    expect((await cli('stop', 'my-builder')).stdout).toBe('agent my-builder stopped\n');
    expect((await cli('start', 'my-builder')).stdout).toBe('agent my-builder running\n');

    expect((await cli('destroy', 'my-builder')).stdout).toBe('agent my-builder destroyed\n');
    const gone = await cli('status', 'my-builder');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('no agent named my-builder (AGENT_NOT_FOUND)');
  });
});

describe('agents', () => {
  it('keep /workspace across stop and start, lose the rest, and lose it all when destroyed', async () => {
    expect((await cli('create', 'keeper')).code).toBe(0);
    const volume = (await t.client.getAgent('keeper')).volume;
    await cli('exec', 'keeper', 'echo mine > /workspace/kept.txt; echo temp > /tmp/lost.txt');
    await cli('stop', 'keeper');
    await cli('start', 'keeper');
    const after = await cli('exec', 'keeper', 'cat /workspace/kept.txt; test ! -e /tmp/lost.txt && echo tmp-gone');
    expect(after.stdout).toBe('mine\ntmp-gone\n');
    await cli('destroy', 'keeper');
    await expect(docker.getVolume(volume).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect((await cli('create', 'keeper')).code).toBe(0);
    expect((await cli('exec', 'keeper', 'ls -A /workspace | wc -l')).stdout).toBe('0\n');
    await cli('destroy', 'keeper');
  });

  it("exit with the command's code: 0, 3, 126, 127, and 125 when the hub is down; -i passes stdin", async () => {
    expect((await cli('create', 'codes')).code).toBe(0);
    expect((await cli('exec', 'codes', 'true')).code).toBe(0);
    expect((await cli('exec', 'codes', 'exit 3')).code).toBe(3);
    expect((await cli('exec', 'codes', '/etc/hostname')).code).toBe(126);
    expect((await cli('exec', 'codes', 'no-such-command')).code).toBe(127);
    const down = await runCli(['exec', 'codes', 'true'], { env: { ...env, DOCKER_AGENT_URL: 'http://127.0.0.1:9' } });
    expect(down.code).toBe(125);
    const upper = await runCli(['exec', '-i', 'codes', 'tr a-z A-Z'], { env, input: 'shout this\n' });
    expect(upper).toMatchObject({ code: 0, stdout: 'SHOUT THIS\n' });
    const badTask = await cli('task', 'codes', '{"type":"exec"}');
    expect(badTask.code).toBe(1);
    expect(badTask.stderr).toContain('/task/command: is required');
    expect((await cli('task', 'codes', 'not json')).code).toBe(2);
    await cli('destroy', 'codes');
  });

  it('run their jobs one at a time in the order they came', async () => {
    await cli('create', 'serial');
    const a = await t.client.createJob({ agent: 'serial', run: 'sleep 1; date +%s%N > /workspace/first' });
    const b = await t.client.createJob({ agent: 'serial', run: 'date +%s%N > /workspace/second; cat /workspace/first >/dev/null && echo after-first' });
    const done = await runCli(
      ['exec', 'serial', 'test /workspace/first -ot /workspace/second -o "$(cat /workspace/first)" -lt "$(cat /workspace/second)" && echo ordered'],
      { env },
    );
    expect(done.stdout).toBe('ordered\n');
    expect((await t.client.getJob(a.id)).state).toBe('succeeded');
    expect((await t.client.getJob(b.id)).state).toBe('succeeded');
    await cli('destroy', 'serial');
  });

  it('are listed as JSON, named as DNS labels, unique, and each principal sees only its own', async () => {
    await cli('create', 'ours');
    const listed = JSON.parse((await cli('list', '--json')).stdout) as Array<{ name: string; state: string }>;
    expect(listed).toContainEqual(expect.objectContaining({ name: 'ours', state: 'running' }));
    expect((await cli('create', 'ours')).stderr).toContain('an agent named ours exists already');
    const bad = await cli('create', 'Not_A_Label');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('/name');

    const other = await t.client.createToken({ name: 'a stranger', scopes: ['jobs'] });
    const stranger = { ...env, DOCKER_AGENT_TOKEN: other.token };
    expect(JSON.parse((await runCli(['list', '--json'], { env: stranger })).stdout)).toEqual([]);
    const theirs = await runCli(['exec', 'ours', 'true'], { env: stranger });
    expect(theirs.code).toBe(1);
    expect(theirs.stderr).toContain('no agent named ours');
    expect((await runCli(['destroy', 'ours'], { env: stranger })).code).toBe(1);
    expect((await runCli(['logs', 'ours'], { env: stranger })).stderr).toContain('no agent named ours');
    const strangerClient = new HubClient({ url: t.hub.url, token: other.token });
    await expect(strangerClient.shell({ agent: 'ours' }, { cols: 80, rows: 24 }, () => {})).rejects.toMatchObject({ status: 404 });
    await cli('destroy', 'ours');
  });

  it('open a shell in a real terminal', async () => {
    await cli('create', 'shelled');
    const term = openTerminal({ cols: 100, rows: 30, cwd: repoPath(), env });
    try {
      await term.waitFor(/outer\$\s*$/m);
      term.type(`node ${CLI_BIN} shell shelled; echo "cli-exit=$?"`);
      await term.waitFor(/agent@[0-9a-f]+:\/workspace\$\s*$/m);
      term.type('echo $((6*7))');
      await term.waitFor(/^42$/m);
      term.type('exit 5');
      await term.waitFor(/^cli-exit=5$/m);
    } finally {
      term.close();
    }
    await cli('destroy', 'shelled');
  });

  it('are snapshotted with their /workspace and restored into a new agent and into a job', async () => {
    await cli('create', 'original');
    await cli('exec', 'original', 'echo from-the-workspace > /workspace/w.txt; mkdir -p ~/.cache && echo from-home > ~/.cache/h.txt');
    const taken = await cli('snapshot', 'original', '--json');
    expect(taken.code).toBe(0);
    const snap = JSON.parse(taken.stdout) as { id: string; source: string; bytes: number };
    expect(snap.source).toBe('agent original');
    const listed = JSON.parse((await cli('snapshots', '--json')).stdout) as Array<{ id: string }>;
    expect(listed.map((s) => s.id)).toContain(snap.id);

    expect((await cli('create', 'restored', '--from', snap.id)).code).toBe(0);
    const inAgent = await cli('exec', 'restored', 'cat /workspace/w.txt ~/.cache/h.txt; stat -c %u /workspace/w.txt');
    expect(inAgent.stdout).toBe('from-the-workspace\nfrom-home\n1000\n');
    const inJob = await cli('run', '--from', snap.id, 'cat /workspace/w.txt');
    expect(inJob).toMatchObject({ code: 0, stdout: 'from-the-workspace\n' });

    // Someone else's snapshot is as missing as one that never was.
    const other = await t.client.createToken({ name: 'snapshot stranger', scopes: ['jobs'] });
    const stranger = { ...env, DOCKER_AGENT_TOKEN: other.token };
    expect(JSON.parse((await runCli(['snapshots', '--json'], { env: stranger })).stdout)).toEqual([]);
    const theirs = await runCli(['run', '--from', snap.id, 'true'], { env: stranger });
    expect(theirs.code).toBe(1);
    expect(theirs.stderr).toContain(`no snapshot ${snap.id}`);

    // In use by the restored agent's container: it says so, and goes once that is gone.
    await expect(t.client.deleteSnapshot(snap.id)).rejects.toMatchObject({ status: 409, code: 'IN_USE' });
    await cli('destroy', 'original');
    await cli('destroy', 'restored');
    await t.client.deleteSnapshot(snap.id);
    expect((await t.client.listSnapshots()).map((s) => s.id)).not.toContain(snap.id);
  });

  it('stop themselves after idleTimeout without a task or a shell, keeping the volume', async () => {
    const created = await t.client.createAgent({ name: 'idler', idleTimeout: 1 });
    expect(created.state).toBe('starting');
    const stop = new AbortController();
    for await (const e of t.client.agentLogs('idler', { follow: true, signal: stop.signal })) {
      if (e.type === 'agent' && e.state === 'stopped') break;
    }
    stop.abort();
    const idle = await t.client.getAgent('idler');
    expect(idle).toMatchObject({ state: 'stopped', reason: 'idle for 1 s (idleTimeout)' });
    expect((await docker.getVolume(idle.volume).inspect()).Name).toBe(idle.volume);
    await t.client.destroyAgent('idler');
  });
});
