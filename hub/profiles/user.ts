// A profile's `user` as the numbers runc will use. The schema only checks the
// shape; runc reads "00" and "000:1000" as uid 0, so root is recognised here by
// value, not by spelling. Names ("root", "nobody") are refused rather than
// resolved: the image's /etc/passwd decides what a name means, the profile's
// reader could not see it.
import type { Issue } from '../platform/errors.js';

export const DEFAULT_USER = { uid: 1000, gid: 1000 } as const;

/** Linux ids are unsigned 32-bit; (uid_t)-1 means "no change" and is refused too. */
const MAX_ID = 2 ** 32 - 2;

export interface UserIds {
  uid: number;
  gid: number;
}

/** The ids of a `uid[:gid]` string (gid defaults to uid), or why it has none. */
export function parseUser(user: string): UserIds | { problem: string } {
  const m = /^([0-9]+)(?::([0-9]+))?$/.exec(user);
  if (!m) return { problem: `must be uid[:gid] as numbers, e.g. "1000:1000"; names such as ${JSON.stringify(user)} are not resolved` };
  const uid = Number(m[1]);
  const gid = m[2] === undefined ? uid : Number(m[2]);
  if (uid > MAX_ID || gid > MAX_ID) return { problem: `ids must be at most ${MAX_ID}` };
  return { uid, gid };
}

/** Problems with a profile's `user`: not numbers, or root in a profile that is not privileged. */
export function userIssues(profile: { user?: string; privileged?: boolean }): Issue[] {
  if (profile.user === undefined) return [];
  const ids = parseUser(profile.user);
  if ('problem' in ids) return [{ path: '/user', message: ids.problem }];
  if (ids.uid === 0 && !profile.privileged) {
    return [{ path: '/user', message: `${JSON.stringify(profile.user)} is uid 0 (root), which needs privileged: true` }];
  }
  return [];
}

/** The ids a validated profile's steps run as. */
export function userIds(profile: { user?: string }): UserIds {
  const ids = profile.user === undefined ? DEFAULT_USER : parseUser(profile.user);
  if ('problem' in ids) throw new Error(`profile user ${profile.user}: ${ids.problem}`);
  return ids;
}
