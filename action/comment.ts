// ChatOps: `/agent run [--profile P] <command>` in a pull request's comments.
// Who may run is asked of GitHub (the commenter's permission on the repository,
// not the comment's author_association); the PR's head commit is fixed when the
// comment is accepted, and exactly that commit's files are the job's workspace.
import type { JobRequest, JobView } from '../client/index.js';
import { fence, ICON, seconds } from './summary.js';

export interface CommentCommand {
  profile?: string;
  command: string;
}

export type Parsed = CommentCommand | { usage: string } | null;

export const USAGE = '`/agent run [--profile NAME] <command>`, the command on the same line or in a code block below it';

/** The command of a comment, a usage error, or null for a comment that is not for us. */
export function parseCommand(text: string): Parsed {
  // Comments written in GitHub's web editor come with CRLF line ends.
  const body = text.replace(/\r\n?/g, '\n');
  const m = /^\s*\/agent[ \t]+run\b([^\n]*)(?:\n([\s\S]*))?$/.exec(body);
  if (!m) return null;
  const words = m[1]!
    .trim()
    .split(/[ \t]+/)
    .filter(Boolean);
  let profile: string | undefined;
  while (words[0]?.startsWith('--')) {
    const word = words.shift()!;
    const [name, inline] = word.split('=', 2) as [string, string?];
    if (name !== '--profile') return { usage: `unknown option ${name}; usage: ${USAGE}` };
    profile = inline ?? words.shift();
    if (!profile || !/^[\w.-]+$/.test(profile)) return { usage: `--profile needs a profile name; usage: ${USAGE}` };
  }
  const rest = (m[2] ?? '').trim();
  const block = /^(`{3,})[^\n]*\n([\s\S]*?)\n\1\s*$/.exec(rest)?.[2];
  const command = [words.join(' '), block ?? rest].filter(Boolean).join('\n').trim();
  if (!command) return { usage: `no command to run; usage: ${USAGE}` };
  return { ...(profile ? { profile } : {}), command };
}

/** What the issue_comment payload says, as far as this mode needs it. */
export interface CommentEvent {
  action: string;
  issue: { number: number; pull_request?: unknown };
  comment: { id: number; body: string; created_at: string; user: { login: string; type: string } };
}

/** Why a comment event is not acted on, or undefined when it is a command to consider. */
export function ignoreReason(event: CommentEvent): string | undefined {
  if (event.action !== 'created') return `the comment was ${event.action}; only new comments run commands`;
  if (!event.issue.pull_request) return `#${event.issue.number} is an issue, not a pull request`;
  const { login, type } = event.comment.user;
  if (type === 'Bot' || login.endsWith('[bot]')) return `${login} is a bot`;
  return undefined;
}

export const WRITE = ['admin', 'maintain', 'write'];

/** Why the comment's --profile may not run here, or undefined when it may (the workflow's own profile always may). */
export function refusedProfile(cmd: CommentCommand, allowed: string[]): string | undefined {
  if (!cmd.profile || allowed.includes(cmd.profile)) return undefined;
  const choices = allowed.length ? `it allows ${allowed.map((p) => `\`${p}\``).join(', ')}` : "it allows only the hub's default profile (no --profile)";
  return `--profile ${cmd.profile} is not allowed by this workflow (allowed-profiles); ${choices}.`;
}

/** Each secret replaced by *** (the workflow log masks them; a PR comment would not). */
export function masked(text: string, secrets: string[]): string {
  return secrets.filter(Boolean).reduce((t, s) => t.split(s).join('***'), text);
}

/** The reply posted when the job ends; `secrets` never reach it. */
export function resultReply(o: {
  job: JobView;
  sha: string;
  command: string;
  tail: string;
  logUrl: string;
  runUrl?: string;
  note?: string;
  secrets: string[];
}): string {
  const { job } = o;
  const lines = [
    `${ICON[job.state] ?? ''} **/agent run ${job.state}** on \`${o.sha.slice(0, 12)}\` (profile \`${job.profile}\`): exit code ${job.exitCode ?? '–'}, ${seconds(job)} s${job.reason ? `. ${job.reason}` : ''}.`,
    '',
    fence(o.command),
  ];
  if (o.note) lines.push('', o.note);
  if (o.tail.trim()) lines.push('', '<details open><summary>Last lines of the log</summary>', '', fence(o.tail), '', '</details>');
  lines.push('', [o.runUrl ? `[Workflow run](${o.runUrl})` : '', `Job \`${job.id}\`: [log](${o.logUrl})`].filter(Boolean).join(' · '));
  return masked(lines.join('\n'), o.secrets);
}

export function commentRequest(base: JobRequest, cmd: CommentCommand, sha: string, pr: number, workspace?: string): JobRequest {
  const { run: _run, steps: _steps, ...rest } = base;
  return {
    ...rest,
    ...(cmd.profile ? { profile: cmd.profile } : {}),
    run: cmd.command,
    env: { ...base.env, DOCKER_AGENT_PR: String(pr), DOCKER_AGENT_SHA: sha },
    ...(workspace ? { workspace } : {}),
  };
}
