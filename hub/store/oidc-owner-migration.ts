// Rows an OIDC principal made before owners named the admitting entry carry
// `github:<repository_id>`. They are handed on once, with the entries configured at
// the first start after the upgrade (docs/security.md, "Owners"):
// - a repository that has an entry without a subject keeps them: that entry's owner
//   id is still `github:<repository_id>`;
// - else they go to the most trusted entry that names the repository (privileged
//   first, then the most specific subject, then code-point order), so no less
//   trusted workflow (a pull request's) gains a privileged run's jobs, agents,
//   snapshots or uploads; a less trusted one loses its old rows (admin still sees them);
// - a repository no entry names keeps them, reachable by admin only.
import { entryNames, oidcOwnerId, owningEntries, type OidcEntry } from '../platform/oidc-entries.js';
import type { Db } from './db.js';
import { OidcRepositories } from './oidc-repositories.js';

const MARK = 'oidc_owners_by_entry';
const TABLES = ['jobs', 'agents', 'snapshots'] as const;

/** Where `github:<id>` rows go: a new owner id, or undefined to leave them. */
export function heirOf(entries: OidcEntry[], names: string[]): string | undefined {
  const naming = entries.filter((e) => names.some((n) => entryNames(e, n)));
  if (!naming.length || naming.some((e) => e.subject === undefined)) return undefined;
  const trusted = naming.some((e) => e.privileged) ? naming.filter((e) => e.privileged) : naming;
  return owningEntries(trusted)[0]!.subject;
}

/** Hands `github:<id>` rows on, once (when db.ts marked them and the hub has OIDC entries); what moved, for the log. */
export function migrateOidcOwners(db: Db, entries: OidcEntry[]): { from: string; to: string }[] {
  if (!entries.length || !db.prepare('SELECT 1 FROM meta WHERE key = ?').get(MARK)) return [];
  const repositories = new OidcRepositories(db);
  const moved: { from: string; to: string }[] = [];
  db.transaction(() => {
    const owners = new Set<string>();
    for (const t of [...TABLES, 'workspace_owners']) {
      for (const { owner } of db.prepare(`SELECT DISTINCT owner FROM ${t} WHERE owner LIKE 'github:%'`).all() as { owner: string }[]) {
        const old = /^github:(\d+)$/.exec(owner);
        if (old) owners.add(old[1]!);
      }
    }
    for (const id of owners) {
      const subject = heirOf(entries, repositories.namesOf(id));
      if (subject === undefined) continue;
      const from = oidcOwnerId(id, undefined);
      const to = oidcOwnerId(id, subject);
      for (const t of TABLES) db.prepare(`UPDATE ${t} SET owner = ? WHERE owner = ?`).run(to, from);
      db.prepare(
        'INSERT OR IGNORE INTO workspace_owners (workspace_id, owner, created_at, bytes) SELECT workspace_id, ?, created_at, bytes FROM workspace_owners WHERE owner = ?',
      ).run(to, from);
      db.prepare('DELETE FROM workspace_owners WHERE owner = ?').run(from);
      moved.push({ from, to });
    }
    db.prepare('DELETE FROM meta WHERE key = ?').run(MARK);
  })();
  return moved;
}
