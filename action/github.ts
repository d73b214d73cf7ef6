// The few GitHub REST calls the PR-comment mode makes, behind one interface: the
// real API (GITHUB_API_URL, the workflow's token), or under act, where there is
// no GitHub to call, a stand-in that says in the log what it would have done.
import * as core from '@actions/core';
import * as github from '@actions/github';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { approvedHead, type Approved, type RefUpdate } from './approved-head.js';

export type Reaction = 'eyes' | 'rocket' | '-1';

export interface PullRequestHead {
  sha: string;
  /** The branch of `headRepo` the PR's commits are pushed to. */
  ref: string;
  /** The repository the PR's commits come from; another one than the base's for a fork. */
  headRepo: string | null;
  baseRepo: string;
}

/** Pages of 100 updates read at most while looking for the comment's time. */
const MAX_UPDATE_PAGES = 10;

export interface GitHubApi {
  /** admin, maintain, write, triage, read or none. */
  permission(username: string): Promise<string>;
  pullRequest(number: number): Promise<PullRequestHead>;
  /** The commit that was the PR's head when a comment was written at `createdAt` (see approved-head.ts). */
  approvedHead(head: PullRequestHead, createdAt: string): Promise<Approved>;
  react(commentId: number, content: Reaction): Promise<void>;
  comment(issueNumber: number, body: string): Promise<void>;
  /** The repository's files at `sha` as a gzipped tar with one top folder. */
  tarball(sha: string): Promise<Readable>;
}

export function gitHubApi(token: string, repo: { owner: string; repo: string }): GitHubApi {
  // getOctokit takes GITHUB_API_URL as its base URL, as on GitHub Enterprise Server.
  const octokit = github.getOctokit(token);
  return {
    async permission(username) {
      try {
        const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({ ...repo, username });
        return data.permission;
      } catch (err) {
        // 404: not a collaborator at all.
        if ((err as { status?: number }).status === 404) return 'none';
        throw err;
      }
    },
    async pullRequest(pull_number) {
      const { data } = await octokit.rest.pulls.get({ ...repo, pull_number });
      return { sha: data.head.sha, ref: data.head.ref, headRepo: data.head.repo?.full_name ?? null, baseRepo: data.base.repo.full_name };
    },
    async approvedHead(head, createdAt) {
      const branch = `refs/heads/${head.ref}`;
      if (!head.headRepo) return { refuse: "the repository of the pull request's branch was deleted, so its updates cannot be read" };
      const [owner, name] = head.headRepo.split('/') as [string, string];
      const commentSecond = Math.floor(Date.parse(createdAt) / 1000);
      const updates: RefUpdate[] = [];
      // Stays true when the listing ends, or reaches an update older than the comment, within the page limit.
      let complete = true;
      try {
        let pages = 0;
        // Newest first; the first update older than the comment is the last one needed.
        const listing = octokit.paginate.iterator(octokit.rest.repos.listActivities, { owner, repo: name, ref: branch, direction: 'desc', per_page: 100 });
        for await (const page of listing) {
          updates.push(...page.data);
          if (page.data.some((u) => Math.floor(Date.parse(u.timestamp) / 1000) < commentSecond)) break;
          if (++pages >= MAX_UPDATE_PAGES) {
            complete = false;
            break;
          }
        }
      } catch (err) {
        return {
          refuse: `GitHub did not list the updates of ${head.headRepo}'s ${branch} (${(err as Error).message}), so which commit the comment approved cannot be proven`,
        };
      }
      return approvedHead({ head: head.sha, branch, createdAt, updates, complete });
    },
    async react(comment_id, content) {
      await octokit.rest.reactions.createForIssueComment({ ...repo, comment_id, content });
    },
    async comment(issue_number, body) {
      await octokit.rest.issues.createComment({ ...repo, issue_number, body });
    },
    async tarball(ref) {
      // Streamed, not parsed: a repository can be larger than the action's memory.
      const res = await octokit.request('GET /repos/{owner}/{repo}/tarball/{ref}', { ...repo, ref, request: { parseSuccessResponseBody: false } });
      return Readable.fromWeb(res.data as unknown as NodeReadableStream);
    },
  };
}

/** Under act: no GitHub to ask, so nothing is checked or posted, and the log says so. */
export function actStandIn(): GitHubApi {
  const note = (what: string) => core.notice(`act: no GitHub API here; ${what}`);
  return {
    async permission(username) {
      note(`not checking ${username}'s permission (a local run is its own user's)`);
      return 'admin';
    },
    async pullRequest() {
      note('not looking up the pull request; running the local workspace at GITHUB_SHA');
      const here = process.env.GITHUB_REPOSITORY ?? 'local';
      return { sha: process.env.GITHUB_SHA ?? 'local', ref: 'local', headRepo: here, baseRepo: here };
    },
    async approvedHead(head) {
      note('not proving which commit the comment approved; the local workspace runs');
      return { sha: head.sha };
    },
    async react(_id, content) {
      note(`would react with ${content}`);
    },
    async comment(_n, body) {
      note(`would reply:\n${body}`);
    },
    async tarball() {
      throw new Error('act: no GitHub API to download the pull request from; give `workspace` instead');
    },
  };
}
