// The repository id each OIDC repository name had when the hub first admitted it.
// Names can change hands (a rename, a delete and re-create); ids cannot, so a
// token whose name matches but whose id differs is not the repository allowed.
// An `OWNER/*` entry admits by the owner's name, which can change hands too: the
// owner's id is kept under the name `owner/*` (no repository can be called `*`).
import type { Db } from './db.js';

export class OidcRepositories {
  constructor(private readonly db: Db) {}

  /** Remembers `id` for `name` if it is new; returns the id first seen for it. */
  pin(name: string, id: string): string {
    const key = name.toLowerCase();
    this.db.prepare('INSERT OR IGNORE INTO oidc_repositories (name, repository_id, first_seen) VALUES (?, ?, ?)').run(key, id, new Date().toISOString());
    return (this.db.prepare('SELECT repository_id FROM oidc_repositories WHERE name = ?').get(key) as { repository_id: string }).repository_id;
  }

  /** Remembers `id` for the owner (user or organisation) `owner` if it is new; returns the id first seen for it. */
  pinOwner(owner: string, id: string): string {
    return this.pin(ownerKey(owner), id);
  }

  /** The repository names pinned to `id` (owners' names left out). */
  namesOf(id: string): string[] {
    return (this.db.prepare(`SELECT name FROM oidc_repositories WHERE repository_id = ? AND name NOT LIKE '%/*'`).all(id) as { name: string }[]).map(
      (r) => r.name,
    );
  }

  list(): { name: string; repositoryId: string; firstSeen: string }[] {
    return (this.db.prepare('SELECT * FROM oidc_repositories ORDER BY name').all() as { name: string; repository_id: string; first_seen: string }[]).map(
      (r) => ({
        name: r.name,
        repositoryId: r.repository_id,
        firstSeen: r.first_seen,
      }),
    );
  }

  /** Forgets a name's id, so the next token of that name pins a new one. */
  forget(name: string): boolean {
    return this.db.prepare('DELETE FROM oidc_repositories WHERE name = ?').run(name.toLowerCase()).changes > 0;
  }
}

/** The name an owner's id is kept under: what `docker-agent-hub oidc forget` takes for it. */
export function ownerKey(owner: string): string {
  return `${owner.toLowerCase()}/*`;
}
