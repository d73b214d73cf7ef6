// The action run as the runner runs it (action.yml's inputs and defaults as INPUT_*
// variables, runs.main / runs.post, GITHUB_OUTPUT, GITHUB_STATE, GITHUB_STEP_SUMMARY,
// workflow commands read from its output) against a real hub, on Node 20 and on
// Node 24: run and maintenance modes, workspaces, OIDC, and a job's output that tries
// to speak to the runner. PR comments are in action-comment.test.ts.
import { createReadStream, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as tar from 'tar-stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction, type ActionOptions, type NodeVersion } from '../helpers/action.js';
import { startFakeGitHub, type FakeGitHub } from '../helpers/fake-github.js';
import { collect, finalState, output, startTestHub, TOKEN, type TestHub } from '../helpers/hub.js';

let t: TestHub;
let gh: FakeGitHub;
let work: string;
beforeAll(async () => {
  gh = await startFakeGitHub();
  t = await startTestHub({
    DOCKER_AGENT_OIDC_REPOSITORIES: 'Codertocat/Hello-World, octo-org/*',
    DOCKER_AGENT_OIDC_JWKS_URL: `${gh.url}/.well-known/jwks`,
    DOCKER_AGENT_OIDC_ISSUER: gh.url,
  });
  work = mkdtempSync(join(tmpdir(), 'da-action-'));
});
afterAll(async () => {
  await t?.close();
  await gh?.close();
  rmSync(work, { recursive: true, force: true });
});

function action(entry: 'main' | 'post', inputs: Record<string, string>, opts: Omit<ActionOptions, 'work' | 'with' | 'entry'> = {}) {
  return runAction({ work, entry, with: { 'hub-url': t.hub.url, token: TOKEN, ...inputs }, ...opts });
}

describe.each<NodeVersion>(['node20', 'node24'])('the GitHub Action on %s', (node) => {
  const main = (inputs: Record<string, string>, opts: Omit<ActionOptions, 'work' | 'with' | 'entry'> = {}) => action('main', inputs, { node, ...opts });

  it('runs a passing job: live output in groups, outputs and a summary', async () => {
    const r = await main({
      steps: JSON.stringify([
        { name: 'greet', run: 'echo "hello $WHO and $SECRET_THING"' },
        { name: 'count', run: 'seq 1 3' },
      ]),
      env: 'WHO=world\nSECRET_THING=hunter22',
    });
    expect(r.code).toBe(0);
    // The token and every env value are masked, as action.yml says.
    expect(r.masks).toEqual([TOKEN, 'world', 'hunter22']);
    expect(r.log).toMatch(/##\[group\]greet\nhello \*\*\* and \*\*\*\ngreet: exit code 0 in [\d.]+ s\n##\[endgroup\]\n##\[group\]count\n1\n2\n3\n/);
    expect(r.outputs).toMatchObject({ status: 'succeeded', 'exit-code': '0' });
    expect(r.outputs['job-id']).toMatch(/^[0-9a-f-]{36}$/);
    // Seconds with one decimal: a warm job of two echoes can end within 50 ms, so "0.0" is a right answer.
    expect(r.outputs.duration).toMatch(/^\d+\.\d$/);
    expect(r.outputs['log-url']).toBe(`${t.hub.url.replace('http', 'ws')}/v1/jobs/${r.outputs['job-id']}/events`);
    expect(r.summary).toContain('docker-agent job succeeded');
    expect(r.summary).toMatch(/\| greet \| ✅ succeeded \| 0 \|/);
  });

  it("fails the step with the job's exit code and puts the failing step's tail in the summary", async () => {
    const r = await main({ run: 'echo before the fall; echo broken >&2; exit 3' });
    expect(r.code).toBe(3);
    expect(r.commands).toContainEqual({ command: 'error', properties: {}, data: 'docker-agent job failed with exit code 3' });
    expect(r.outputs).toMatchObject({ status: 'failed', 'exit-code': '3' });
    expect(r.summary).toMatch(/Last lines of run[\s\S]*before the fall\nbroken/);
  });

  it('cancels the job on the hub within two seconds of SIGTERM', async () => {
    let signalledAt = 0;
    const r = await main(
      { run: 'echo started; sleep 120' },
      {
        onOutput: (raw, child) => {
          if (!signalledAt && raw.includes('started\n')) {
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
    // The warning about the cancel is the action's own, so it takes effect although the job's output was stopped mid-stream.
    expect(r.log).toContain(`SIGTERM: cancelling job ${r.outputs['job-id']}`);
  });

  it('cancels from the post step a job the main step did not see end', async () => {
    // The main step saves the job's id as it starts, then is killed before the job ends.
    const started = await main({ run: 'echo started; sleep 120' }, { onOutput: (raw, child) => raw.includes('started\n') && child.kill('SIGKILL') });
    expect(started.state).toEqual({ 'job-id': expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const id = started.state['job-id']!;
    const r = await action('post', { run: 'unused' }, { node, state: started.state });
    expect(r.code).toBe(0);
    expect(r.log).toContain(`cancelled job ${id}`);
    expect(finalState(await collect(t.client, id))).toBe('cancelled');
  });

  it("keeps the job's output from speaking to the runner: its workflow commands are only text", async () => {
    const attempts = [
      '::error file=README.md,line=1::x',
      '::add-mask::injected-mask-value',
      '::set-output name=status::pwned',
      '::save-state name=job-id::stolen',
      '::set-env name=NODE_OPTIONS::--require=/tmp/evil.js',
      '::add-path::/tmp/evil',
      '::warning::from the job',
      '::endgroup::',
      '::group::fake group',
      '##[error]legacy form',
      'prefix ##[set-output name=exit-code;]0',
      '::stop-commands::guess',
      '::error::after a stop of its own',
      '::guess::',
    ];
    const script = [
      `printf '%s\n' ${attempts.map((a) => `'${a}'`).join(' ')}`,
      // The mask that did not take, and a line left open when the step ends.
      'echo "visible: injected-mask-value"',
      "printf '::error::no newline'",
    ].join('; ');
    const r = await main({
      steps: JSON.stringify([
        { name: 'evil\n::error::from the step name', run: script },
        { name: 'stderr', run: 'echo >&2 "::error::on stderr"' },
      ]),
      env: 'TOKEN_LIKE=s3cret-value',
    });
    expect(r.code).toBe(0);
    // Each attempt is shown as the text it is...
    for (const a of attempts) expect(r.log).toContain(`${a}\n`);
    expect(r.log).toContain('visible: injected-mask-value\n');
    expect(r.log).toContain('::error::on stderr\n');
    expect(r.log).toMatch(/\n::error::no newline\nevil\n::error::from the step name: exit code 0 in [\d.]+ s\n##\[endgroup\]\n/);
    // ...and none took effect: only the action's own commands did.
    expect(r.commands.map((c) => c.command)).toEqual(['add-mask', 'add-mask', 'group', 'endgroup', 'group', 'endgroup']);
    expect(r.commands[2]!.data).toBe('evil\n::error::from the step name');
    expect(r.masks).toEqual([TOKEN, 's3cret-value']);
    expect(r.outputs).toMatchObject({ status: 'succeeded', 'exit-code': '0' });
    expect(Object.keys(r.state)).toEqual(['job-id', 'finished']);
    expect(r.state['job-id']).toBe(r.outputs['job-id']);
    expect(r.env).toBe('');
    expect(r.path).toBe('');
  });

  it('names a bad input before calling the hub', async () => {
    const r = await main({ run: 'true', timeout: 'soon' });
    expect(r.code).toBe(1);
    expect(r.commands).toContainEqual(expect.objectContaining({ command: 'error', data: expect.stringContaining('input `timeout`: expected seconds') }));
  });
});

describe('the GitHub Action', () => {
  it('runs maintenance on a schedule event and reports what the hub removed', async () => {
    const old = await t.client.createJob({ run: 'true' });
    await collect(t.client, old.id);
    const r = await action(
      'main',
      { 'max-job-age-days': '0', 'keep-jobs': '0', 'max-image-age-days': '100000', 'max-image-gb': '1000000' },
      { event: { name: 'schedule' } },
    );
    expect(r.code).toBe(0);
    expect(r.log).toMatch(/docker-agent maintenance: removed \d+ jobs, 0 images, 0 containers, 0 snapshots/);
    expect(JSON.parse(r.outputs.removed!).jobs).toContain(old.id);
    expect(r.summary).toContain('docker-agent maintenance');
    await expect(t.client.getJob(old.id)).rejects.toMatchObject({ status: 404 });
  });

  it("uploads the workspace folder without .git, owned by the job's user, and with .git when asked", async () => {
    const dir = mkdtempSync(join(work, 'checkout-'));
    mkdirSync(join(dir, 'src'));
    mkdirSync(join(dir, '.git'));
    writeFileSync(join(dir, 'src', 'main.sh'), 'echo from the workspace\n', { mode: 0o755 });
    writeFileSync(join(dir, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    symlinkSync('src/main.sh', join(dir, 'entry'));
    const script = 'ls -A; ./entry; stat -c "%u %a" src/main.sh; echo more >> src/main.sh && echo writable';
    const r = await action('main', { run: script, workspace: dir });
    expect(r.code).toBe(0);
    expect(r.log).toMatch(/uploaded .* \(3 entries, \d+ bytes, without \.git\) as workspace [0-9a-f]{12}/);
    expect(r.log).toContain('entry\nsrc\nfrom the workspace\n1000 755\nwritable\n');
    const withGit = await action('main', { run: 'cat .git/HEAD', workspace: dir, 'workspace-git': 'true' });
    expect(withGit.log).toContain('ref: refs/heads/main');
  });

  it("signs in with a GitHub OIDC token when no token is given, for a repository on the hub's list", async () => {
    gh.model.oidcClaims = {
      repository: 'Codertocat/Hello-World',
      repository_id: '1296269',
      sub: 'repo:Codertocat/Hello-World:ref:refs/heads/main',
      ref: 'refs/heads/main',
      actor: 'Codertocat',
    };
    // Tokens about to expire: the action asks for a fresh one instead of being refused mid-job.
    gh.model.oidcTtl = 30;
    gh.calls.length = 0;
    const r = await action('main', { token: '', run: 'echo signed in' }, { env: gh.oidcEnv });
    gh.model.oidcTtl = 300;
    expect(r.code).toBe(0);
    // The audience is the hub's URL, which is what a hub expects when DOCKER_AGENT_OIDC_AUDIENCE is unset.
    expect(r.log).toContain(`signing in to the hub with a GitHub OIDC token for audience ${t.hub.url}`);
    expect(r.log).toContain('signed in\n');
    const requests = gh.calls.filter((c) => c.path === `/oidc/token?api-version=2.0&audience=${encodeURIComponent(t.hub.url)}`);
    expect(requests.length).toBeGreaterThan(1);
  });

  it('is refused by the hub with an OIDC token of another repository or audience', async () => {
    gh.model.oidcClaims = { repository: 'mallory/Hello-World' };
    const other = await action('main', { token: '', run: 'echo never' }, { env: gh.oidcEnv });
    expect(other.code).toBe(1);
    expect(other.log).toMatch(/OIDC token refused: repository "mallory\/Hello-World" is not allowed on this hub/);
    expect(other.log).not.toContain('never');
    gh.model.oidcClaims = { repository: 'octo-org/tools' };
    const audience = await action('main', { token: '', run: 'echo never', 'oidc-audience': 'someone-else' }, { env: gh.oidcEnv });
    expect(audience.code).toBe(1);
    expect(audience.log).toMatch(/OIDC token refused: unexpected "aud" claim value/);
  });

  it('asks for a token when it has neither a token nor an OIDC grant', async () => {
    const r = await action('main', { token: '', run: 'true' });
    expect(r.code).toBe(1);
    expect(r.log).toContain('##[error]input `token`: is required unless the workflow grants `permissions: id-token: write`');
  });

  it('downloads the snapshot it asked for where a later step can upload it as an artifact', async () => {
    const r = await action('main', { run: 'echo cached > result.txt', snapshot: 'true' });
    expect(r.code).toBe(0);
    const id = r.outputs['job-id']!;
    expect(r.outputs['snapshot-image']).toBe(`docker-agent/snapshot:${id}`);
    const path = r.outputs['snapshot-path']!;
    expect(path).toMatch(new RegExp(`/docker-agent-snapshot-${id}\\.tar$`));
    expect(r.log).toMatch(/snapshot docker-agent\/snapshot:\S+ saved to \S+ \([\d.]+ MB; docker load -i loads it\)/);
    const names: string[] = [];
    const extract = tar.extract();
    createReadStream(path).pipe(extract);
    for await (const entry of extract) {
      names.push(entry.header.name);
      entry.resume();
    }
    expect(names).toContain('manifest.json');
    rmSync(path);
  });
});
