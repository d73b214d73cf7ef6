// `/agent run` in PR comments: the bundled action run as the runner runs it on an
// issue_comment event (payloads from @octokit/webhooks-examples), GitHub's REST
// API played by a local server that records every call, and a real hub running
// real containers. Tests assert who was allowed, which commit ran (the head when
// the comment was written, never one pushed after it), which profiles a comment may
// pick, and which reactions and comments were sent.
import webhooks from '@octokit/webhooks-examples' with { type: 'json' };
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runAction, type ActionOptions } from '../helpers/action.js';
import { startFakeGitHub, type FakeGitHub } from '../helpers/fake-github.js';
import { startTestHub, TOKEN, type TestHub } from '../helpers/hub.js';

const REPO = '/repos/Codertocat/Hello-World';
const SHA = 'c0ffee0000000000000000000000000000000001';
const NEWER_SHA = 'c0ffee0000000000000000000000000000000002';

type CommentPayload = {
  action: string;
  issue: { number: number; pull_request?: unknown };
  comment: { id: number; body: string; created_at: string; user: { login: string; type: string } };
};

/** The examples' issue_comment payloads, by action. */
function example(action: 'created' | 'edited' | 'deleted'): CommentPayload {
  const examples = (webhooks as unknown as Array<{ name: string; examples: CommentPayload[] }>).find((w) => w.name === 'issue_comment')!.examples;
  return structuredClone(examples.find((e) => e.action === action)!);
}

/** The test's "now", to the second, so that times set up in one test agree with each other. */
let now = 0;
/** A time as GitHub writes them (to the second), `s` seconds from the test's now. */
const at = (s: number) => new Date((now + s) * 1000).toISOString().replace('.000Z', 'Z');

/** A comment on PR #1, written a minute ago, as GitHub sends it: the issue carries a pull_request link. */
function prComment(body: string, opts: { action?: 'created' | 'edited' | 'deleted'; login?: string; type?: string } = {}): CommentPayload {
  const p = example(opts.action ?? 'created');
  p.issue.pull_request = { url: `https://api.github.com${REPO}/pulls/${p.issue.number}` };
  p.comment.body = body;
  p.comment.created_at = at(-60);
  if (opts.login) p.comment.user.login = opts.login;
  if (opts.type) p.comment.user.type = opts.type;
  return p;
}

/** The repository at a commit, as GitHub's archive endpoint serves it: one top folder. */
async function tarball(sha: string, files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  const top = `Codertocat-Hello-World-${sha.slice(0, 7)}`;
  pack.entry({ name: `${top}/`, type: 'directory' });
  for (const [name, body] of Object.entries(files)) pack.entry({ name: `${top}/${name}`, mode: 0o755 }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

let t: TestHub;
let gh: FakeGitHub;
let work: string;
beforeAll(async () => {
  t = await startTestHub();
  gh = await startFakeGitHub({
    permissions: { Codertocat: 'admin', maintainer: 'maintain', reader: 'read' },
    pulls: { 1: { sha: SHA, headRepo: 'Codertocat/Hello-World', baseRepo: 'Codertocat/Hello-World' } },
    tarballs: {
      [SHA]: await tarball(SHA, { 'commit.txt': `${SHA}\n`, 'check.sh': 'echo "checked $(cat commit.txt)"\n' }),
      [NEWER_SHA]: await tarball(NEWER_SHA, { 'commit.txt': `${NEWER_SHA}\n`, 'check.sh': 'echo "checked $(cat commit.txt)"\n' }),
    },
  });
  work = mkdtempSync(join(tmpdir(), 'da-comment-'));
});
afterAll(async () => {
  await t?.close();
  await gh?.close();
  rmSync(work, { recursive: true, force: true });
});
/** The feature branch: created, then pushed to SHA five minutes before the comment. */
function branchHistory(repo = 'Codertocat/Hello-World') {
  gh.model.activity = {
    [repo]: [
      {
        ref: 'refs/heads/feature',
        before: '0'.repeat(40),
        after: 'c0ffee0000000000000000000000000000000000',
        timestamp: at(-600),
        activity_type: 'branch_creation',
      },
      { ref: 'refs/heads/feature', before: 'c0ffee0000000000000000000000000000000000', after: SHA, timestamp: at(-360), activity_type: 'push' },
      { ref: 'refs/heads/main', before: 'a'.repeat(40), after: 'b'.repeat(40), timestamp: at(-10), activity_type: 'push' },
    ],
  };
}

/** Someone pushes NEWER_SHA to the PR `s` seconds from now (after the comment when s > -60). */
function pushNewer(s: number) {
  gh.model.activity['Codertocat/Hello-World']!.push({ ref: 'refs/heads/feature', before: SHA, after: NEWER_SHA, timestamp: at(s), activity_type: 'push' });
  gh.model.pulls[1]!.sha = NEWER_SHA;
}

beforeEach(() => {
  now = Math.floor(Date.now() / 1000);
  gh.calls.length = 0;
  gh.model.pulls[1] = { sha: SHA, headRepo: 'Codertocat/Hello-World', baseRepo: 'Codertocat/Hello-World' };
  branchHistory();
});

function onComment(payload: CommentPayload, inputs: Record<string, string> = {}, opts: Partial<ActionOptions> = {}) {
  return runAction({
    work,
    with: { 'hub-url': t.hub.url, token: TOKEN, ...inputs },
    event: { name: 'issue_comment', payload },
    env: { GITHUB_API_URL: gh.url },
    ...opts,
  });
}

const writes = () => gh.calls.filter((c) => c.method === 'POST');
const reactions = () => writes().flatMap((c) => (c.path.endsWith('/reactions') ? [(c.body as { content: string }).content] : []));
const replies = () => writes().flatMap((c) => (c.path.endsWith('/comments') && !c.path.includes('/comments/') ? [(c.body as { body: string }).body] : []));

describe('/agent run in a pull request comment', () => {
  it('runs exactly the head commit fixed when the comment was accepted, with 👀, 🚀 and a reply', async () => {
    const r = await onComment(
      prComment('/agent run ./check.sh'),
      {},
      {
        // A push to the PR while the job is queued must not change what runs.
        onOutput: (raw) => {
          if (raw.includes('accepted /agent run') && gh.model.pulls[1]!.sha === SHA) pushNewer(0);
        },
      },
    );
    expect(r.code).toBe(0);
    expect(r.outputs).toMatchObject({ sha: SHA, status: 'succeeded', 'exit-code': '0' });
    expect(r.log).toContain(`checked ${SHA}\n`);
    expect(gh.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      `GET ${REPO}/collaborators/Codertocat/permission`,
      `GET ${REPO}/pulls/1`,
      `GET ${REPO}/activity?ref=refs%2Fheads%2Ffeature&direction=desc&per_page=100`,
      `POST ${REPO}/issues/comments/492700400/reactions`,
      `GET ${REPO}/tarball/${SHA}`,
      `GET /codeload/Codertocat/Hello-World/legacy.tar.gz/${SHA}`,
      `POST ${REPO}/issues/comments/492700400/reactions`,
      `POST ${REPO}/issues/1/comments`,
    ]);
    expect(reactions()).toEqual(['eyes', 'rocket']);
    const [reply] = replies();
    expect(reply).toContain(`**/agent run succeeded** on \`${SHA.slice(0, 12)}\` (profile \`default\`): exit code 0`);
    expect(reply).toContain(`checked ${SHA}`);
    expect(reply).toContain('[Workflow run](https://github.com/Codertocat/Hello-World/actions/runs/4242)');
    expect(reply).toContain(`/v1/jobs/${r.outputs['job-id']}/events`);
  });

  it('runs the commit the comment saw when a newer one was pushed before the runner started, and says so', async () => {
    pushNewer(-20);
    const r = await onComment(prComment('/agent run ./check.sh'));
    expect(r.code).toBe(0);
    expect(r.outputs).toMatchObject({ sha: SHA, status: 'succeeded' });
    expect(r.log).toContain(`checked ${SHA}\n`);
    expect(gh.calls.some((c) => c.path.includes(NEWER_SHA))).toBe(false);
    expect(replies()[0]).toContain(`Commits pushed after the comment (the head is now \`${NEWER_SHA.slice(0, 12)}\`) did not run.`);
  });

  it('runs the newer commit when it was pushed before the comment was written', async () => {
    pushNewer(-120);
    const r = await onComment(prComment('/agent run ./check.sh'));
    expect(r.outputs).toMatchObject({ sha: NEWER_SHA, status: 'succeeded' });
    expect(r.log).toContain(`checked ${NEWER_SHA}\n`);
  });

  it.each([
    ['the head is not yet in the list of pushes', () => (gh.model.pulls[1]!.sha = NEWER_SHA), /is not yet in GitHub's list of its updates/],
    ["a push came in the comment's own second", () => pushNewer(-60), /updated in the same second as the comment/],
    ['GitHub lists no update of the branch', () => (gh.model.activity = {}), /GitHub lists no update of refs\/heads\/feature/],
  ])('refuses, saying why, when which commit was approved cannot be proven: %s', async (_what, arrange, why) => {
    arrange();
    const before = (await t.client.listJobs({ limit: 100 })).jobs.length;
    const r = await onComment(prComment('/agent run ./check.sh'));
    expect(r.code).toBe(0);
    expect(r.outputs.status).toBe('refused');
    expect(reactions()).toEqual(['-1']);
    expect(replies()[0]).toMatch(why);
    expect(gh.calls.some((c) => c.path.includes('/tarball/'))).toBe(false);
    expect((await t.client.listJobs({ limit: 100 })).jobs.length).toBe(before);
  });

  it('refuses a comment from days ago, as a re-run would bring it', async () => {
    const old = prComment('/agent run ./check.sh');
    old.comment.created_at = at(-3 * 86400);
    const r = await onComment(old);
    expect(r.outputs.status).toBe('refused');
    expect(replies()[0]).toContain('the comment is 72 hours old; only comments from the last 24 hours run');
  });

  it('lets a comment pick only the profiles the workflow allows', async () => {
    const denied = await onComment(prComment('/agent run --profile docker-host id'), { profile: 'default' });
    expect(denied.outputs.status).toBe('refused');
    expect(replies()[0]).toBe('👎 @Codertocat: --profile docker-host is not allowed by this workflow (allowed-profiles); it allows `default`.');
    gh.calls.length = 0;
    const listed = await onComment(prComment('/agent run --profile tester id'), { profile: 'default', 'allowed-profiles': 'builder, tester' });
    expect(listed.outputs.status).toBe('succeeded');
    expect(replies()[0]).toContain('(profile `tester`)');
    gh.calls.length = 0;
    const unlisted = await onComment(prComment('/agent run --profile deployer id'), { profile: 'default', 'allowed-profiles': 'builder, tester' });
    expect(replies()[0]).toContain('it allows `default`, `builder`, `tester`.');
    expect(unlisted.outputs.status).toBe('refused');
  });

  it("fails the step with the command's exit code, reacts 👎 and replies with the log's tail", async () => {
    const r = await onComment(prComment('/agent run --profile default\n```bash\necho "about to fail"\nexit 4\n```'), { profile: 'default' });
    expect(r.code).toBe(4);
    expect(r.outputs).toMatchObject({ status: 'failed', 'exit-code': '4' });
    expect(reactions()).toEqual(['eyes', '-1']);
    expect(replies()[0]).toMatch(/\*\*\/agent run failed\*\*[^\n]*exit code 4/);
    expect(replies()[0]).toContain('about to fail');
  });

  it("lets a maintainer run (the API's permission, not author_association) and refuses a reader", async () => {
    const ok = await onComment(prComment('/agent run true', { login: 'maintainer' }));
    expect(ok.outputs.status).toBe('succeeded');
    gh.calls.length = 0;
    const before = (await t.client.listJobs({ limit: 100 })).jobs.length;
    const denied = await onComment(prComment('/agent run echo pwned', { login: 'reader' }));
    expect(denied.code).toBe(0);
    expect(denied.outputs.status).toBe('refused');
    expect(gh.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      `GET ${REPO}/collaborators/reader/permission`,
      `POST ${REPO}/issues/comments/492700400/reactions`,
      `POST ${REPO}/issues/1/comments`,
    ]);
    expect(reactions()).toEqual(['-1']);
    expect(replies()[0]).toBe('👎 @reader: /agent run needs write permission on Codertocat/Hello-World; you have read.');
    expect((await t.client.listJobs({ limit: 100 })).jobs.length).toBe(before);
  });

  it('refuses a pull request from a fork unless the workflow allows forks', async () => {
    gh.model.pulls[1] = { sha: SHA, headRepo: 'mallory/Hello-World', baseRepo: 'Codertocat/Hello-World' };
    // A fork's branch is pushed to in the fork: its updates are read there.
    branchHistory('mallory/Hello-World');
    const r = await onComment(prComment('/agent run ./check.sh'));
    expect(r.outputs.status).toBe('refused');
    expect(gh.calls.some((c) => c.path.includes('/tarball/'))).toBe(false);
    expect(reactions()).toEqual(['-1']);
    expect(replies()[0]).toContain('#1 comes from a fork (mallory/Hello-World)');
    gh.calls.length = 0;
    const allowed = await onComment(prComment('/agent run ./check.sh'), { 'allow-forks': 'true' });
    expect(allowed.outputs).toMatchObject({ status: 'succeeded', sha: SHA });
    expect(reactions()).toEqual(['eyes', 'rocket']);
  });

  it.each([
    ['a bot', prComment('/agent run true', { login: 'dependabot[bot]', type: 'Bot' }), 'dependabot[bot] is a bot'],
    ['an edited comment', prComment('/agent run true', { action: 'edited' }), 'the comment was edited; only new comments run commands'],
    ['a deleted comment', prComment('/agent run true', { action: 'deleted' }), 'the comment was deleted'],
    [
      'a comment on a plain issue',
      { ...example('created'), comment: { ...example('created').comment, body: '/agent run true' } },
      '#1 is an issue, not a pull request',
    ],
    ['a comment that is no command', prComment('Looks good to me! /agent run later'), 'the comment is not an /agent run command'],
  ])('ignores %s without calling GitHub', async (_what, payload, why) => {
    const r = await onComment(payload);
    expect(r.code).toBe(0);
    expect(r.log).toContain(`docker-agent: nothing to do: ${why}`);
    expect(gh.calls).toEqual([]);
  });

  it("keeps the action's secrets out of the public reply", async () => {
    const r = await onComment(prComment('/agent run echo "key is $API_KEY"'), { env: 'API_KEY=hunter2-secret' });
    expect(r.outputs.status).toBe('succeeded');
    expect(replies()[0]).toContain('key is ***');
    expect(JSON.stringify(gh.calls)).not.toContain('hunter2-secret');
  });

  it('answers with 👎 and the reason when the accepted command cannot run', async () => {
    gh.model.pulls[1] = { sha: 'f'.repeat(40), headRepo: 'Codertocat/Hello-World', baseRepo: 'Codertocat/Hello-World' };
    gh.model.activity['Codertocat/Hello-World']!.push({
      ref: 'refs/heads/feature',
      before: SHA,
      after: 'f'.repeat(40),
      timestamp: at(-120),
      activity_type: 'force_push',
    });
    const r = await onComment(prComment('/agent run true'));
    expect(r.code).toBe(1);
    expect(reactions()).toEqual(['eyes', '-1']);
    expect(replies()[0]).toMatch(/^💥 @Codertocat: \/agent run could not run on `ffffffffffff`: .*Not Found/);
  });

  it('answers a malformed command from a writer with its usage', async () => {
    const r = await onComment(prComment('/agent run --image evil true'));
    expect(r.outputs.status).toBe('refused');
    expect(reactions()).toEqual(['-1']);
    expect(replies()[0]).toContain('unknown option --image; usage: `/agent run [--profile NAME] <command>`');
  });

  it('under act calls no GitHub API: it runs the local workspace and says so in the log', async () => {
    const dir = mkdtempSync(join(work, 'local-'));
    writeFileSync(join(dir, 'commit.txt'), 'local checkout\n');
    const r = await onComment(
      prComment('/agent run cat commit.txt'),
      { workspace: dir, 'github-token': '' },
      {
        env: { GITHUB_API_URL: gh.url, ACT: 'true', GITHUB_SHA: SHA },
      },
    );
    expect(r.code).toBe(0);
    expect(r.log).toContain('local checkout\n');
    const notices = r.commands.filter((c) => c.command === 'notice').map((c) => c.data);
    expect(notices).toContainEqual("act: no GitHub API here; not checking Codertocat's permission (a local run is its own user's)");
    expect(notices).toContainEqual('act: no GitHub API here; would react with rocket');
    expect(notices).toContainEqual(expect.stringMatching(/^act: no GitHub API here; would reply:\n/));
    expect(gh.calls).toEqual([]);
  });
});
