// The OIDC allow-list (DOCKER_AGENT_OIDC_REPOSITORIES): which GitHub repositories
// may sign in, from which branches, environments or pull requests, and which of
// them may run privileged profiles. An entry is
//
//   OWNER/NAME[:SUBJECT][+privileged]      NAME may be `*` (every repository of OWNER)
//
// SUBJECT is the rest of GitHub's `sub` claim after `repo:OWNER/NAME:` — for example
// `ref:refs/heads/main`, `environment:prod`, `pull_request` — and may use `*` for
// any run of characters (`ref:refs/tags/*`). Without SUBJECT any workflow run of
// the repository is admitted. `+privileged` lets the runs it admits use privileged
// profiles (when the hub allows them at all).

export interface OidcEntry {
  owner: string;
  /** `*` for every repository of the owner. */
  name: string;
  subject?: string;
  privileged: boolean;
  /** As written, for messages. */
  text: string;
}

const ENTRY = /^([\w.-]+)\/([\w.-]+|\*)(?::(\S+?))?(\+privileged)?$/;

/** An entry, or an error message that says what was expected. */
export function parseOidcEntry(text: string): OidcEntry | string {
  const m = ENTRY.exec(text.trim());
  if (!m) return `${JSON.stringify(text)}: expected OWNER/NAME or OWNER/* with an optional :SUBJECT (e.g. :ref:refs/heads/main) and +privileged`;
  return { owner: m[1]!, name: m[2]!, ...(m[3] ? { subject: m[3] } : {}), privileged: Boolean(m[4]), text: text.trim() };
}

/** `*` matches any run of characters; everything else literally. */
function glob(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}

/** Whether the entry admits this repository (GitHub's names are case-insensitive) and `sub`. */
export function entryAdmits(entry: OidcEntry, repository: string, sub: string): boolean {
  const [owner, name] = repository.toLowerCase().split('/');
  if (owner !== entry.owner.toLowerCase() || !name) return false;
  if (entry.name !== '*' && entry.name.toLowerCase() !== name) return false;
  if (entry.subject === undefined) return true;
  // GitHub's default sub format: repo:OWNER/NAME:<context>.
  const prefix = `repo:${repository.toLowerCase()}:`;
  if (!sub.toLowerCase().startsWith(prefix)) return false;
  return glob(entry.subject).test(sub.slice(prefix.length));
}

/** The entries that admit this token; empty when none does. */
export function admittingEntries(entries: OidcEntry[], repository: string, sub: string): OidcEntry[] {
  return entries.filter((e) => entryAdmits(e, repository, sub));
}

/**
 * How specific an entry's subject is: no subject admits every run (least), then the
 * more literal characters a pattern has, the fewer runs it can admit.
 */
function specificity(e: OidcEntry): number {
  return e.subject === undefined ? -1 : e.subject.replace(/\*/g, '').length;
}

/**
 * Of the entries that admit a token, those that own what it makes: the ones with the
 * most specific subject (ties: the subject first in code-point order, so neither the
 * order the operator wrote the entries in nor a restart changes the answer). Several
 * entries with that same subject (`OWNER/NAME:S` and `OWNER/*:S`) are one owner.
 */
export function owningEntries(admitting: OidcEntry[]): OidcEntry[] {
  if (!admitting.length) return [];
  const codeOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const best = [...admitting].sort((a, b) => specificity(b) - specificity(a) || codeOrder(a.subject ?? '', b.subject ?? ''))[0]!;
  return admitting.filter((e) => e.subject === best.subject);
}

/**
 * The owner id of what a repository's runs make through entries with `subject`:
 * `github:<repository_id>` for an entry without a subject (every run of the
 * repository is one owner, as before entries had owners), else
 * `github:<repository_id>:<subject>` as written in the entry.
 */
export function oidcOwnerId(repositoryId: string, subject: string | undefined): string {
  return subject === undefined ? `github:${repositoryId}` : `github:${repositoryId}:${subject}`;
}

/** The repository id and subject of an OIDC owner id; undefined for other owners. */
export function parseOidcOwner(owner: string): { repositoryId: string; subject?: string } | undefined {
  const m = /^github:(\d+)(?::(.+))?$/.exec(owner);
  if (!m) return undefined;
  return { repositoryId: m[1]!, ...(m[2] !== undefined ? { subject: m[2] } : {}) };
}

/** Whether the entry names this repository (whatever the subject). */
export function entryNames(entry: OidcEntry, repository: string): boolean {
  return entryAdmits({ ...entry, subject: undefined }, repository, '');
}
