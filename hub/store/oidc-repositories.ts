// The repository id each OIDC repository name had when the hub first admitted it.
// Names can change hands (a rename, a delete and re-create); ids cannot, so a
// token whose name matches but whose id differs is not the repository allowed.
import type { Db } from './db.js';

export class OidcRepositories {
  constructor(private readonly db: Db) {}

  /** Remembers `id` for `name` if it is new; returns the id first seen for it. */
  pin(name: string, id: string): string {
    const key = name.toLowerCase();
    this.db.prepare('INSERT OR IGNORE INTO oidc_repositories (name, repository_id, first_seen) VALUES (?, ?, ?)').run(key, id, new Date().toISOString());
    return (this.db.prepare('SELECT repository_id FROM oidc_repositories WHERE name = ?').get(key) as { repository_id: string }).repository_id;
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
