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
