// Which commit a `/agent run` comment approved: the pull request's head when the
// comment was written, not when the runner got to it. Someone who pushes between
// the comment and the run must not get their new commit run on the commenter's
// word. GitHub's repository activity (every update of a branch, with its time and
// the commits before and after) says what the head was at any moment: the head at
// the comment is the `before` of the first update after it, or, when there is none,
// the head now. Where that cannot be proven, the answer is a reason to refuse.

/** One update of the PR's head branch, as GitHub's repository activity lists it. */
export interface RefUpdate {
  before: string;
  after: string;
  /** ISO time of the update, to the second. */
  timestamp: string;
  activity_type: string;
}

export type Approved = { sha: string; newer?: string } | { refuse: string };

/** Comments older than this are not run: a re-run days later is not what was approved then. */
export const MAX_COMMENT_AGE_MS = 24 * 3600_000;

const NO_COMMIT = /^0+$/;

/**
 * @param head the PR's head commit as read before `updates`
 * @param updates the head branch's updates, newest first, down to (and including)
 *   the first one older than the comment, or all there are
 * @param complete false when the listing stopped before reaching the comment's time
 */
export function approvedHead(o: { head: string; branch: string; createdAt: string; updates: RefUpdate[]; complete: boolean; now?: number }): Approved {
  const created = Date.parse(o.createdAt);
  const now = o.now ?? Date.now();
  if (!(created > 0)) return { refuse: `the comment has no creation time (${JSON.stringify(o.createdAt)}), so which commit it approved cannot be told` };
  if (now - created > MAX_COMMENT_AGE_MS) {
    return {
      refuse: `the comment is ${Math.floor((now - created) / 3600_000)} hours old; only comments from the last 24 hours run. Write a new comment to run the current head`,
    };
  }
  if (!o.complete) return { refuse: `${o.branch} was updated too often since the comment to find the commit it approved. Write a new comment` };
  if (o.updates.length === 0) {
    return {
      refuse: `GitHub lists no update of ${o.branch}, so which commit was its head when the comment was written cannot be proven. Push to the branch or write a new comment`,
    };
  }
  if (o.updates[0]!.after !== o.head) {
    // The head just read is newer than the listing (or was set some other way): nothing proves when it came.
    return {
      refuse: `the head of ${o.branch} (${o.head.slice(0, 12)}) is not yet in GitHub's list of its updates, so when it was pushed cannot be proven. Try again in a minute`,
    };
  }
  // Both times are to the second: an update in the comment's own second may have come before or after it.
  const second = (ms: number) => Math.floor(ms / 1000);
  const at = (u: RefUpdate) => second(Date.parse(u.timestamp));
  const tie = o.updates.find((u) => at(u) === second(created));
  if (tie)
    return {
      refuse: `${o.branch} was updated in the same second as the comment (to ${tie.after.slice(0, 12)}), so which commit the comment approved cannot be told. Write a new comment`,
    };
  const after = o.updates.filter((u) => at(u) > second(created));
  if (after.length === 0) return { sha: o.head };
  const first = after.at(-1)!;
  if (NO_COMMIT.test(first.before)) return { refuse: `${o.branch} did not exist when the comment was written` };
  return { sha: first.before, newer: o.head };
}
