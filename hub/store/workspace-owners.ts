// Who uploaded which workspace. Uploads are stored once by content hash, so one
// stored archive can have several owners: each principal that sent that content.
import type { Db } from './db.js';

export class WorkspaceOwners {
  constructor(private readonly db: Db) {}

  /** Each owner of an upload keeps all its `bytes` (storage-budget.ts), though the archive is stored once. */
  add(workspaceId: string, owner: string, bytes: number): void {
    this.db
      .prepare('INSERT OR IGNORE INTO workspace_owners (workspace_id, owner, created_at, bytes) VALUES (?, ?, ?, ?)')
      .run(workspaceId, owner, new Date().toISOString(), bytes);
  }

  owns(workspaceId: string, owner: string): boolean {
    return this.db.prepare('SELECT 1 FROM workspace_owners WHERE workspace_id = ? AND owner = ?').get(workspaceId, owner) !== undefined;
  }

  /** Whether anyone uploaded it (for the audit log: a refused id that exists is someone else's). */
  known(workspaceId: string): boolean {
    return this.db.prepare('SELECT 1 FROM workspace_owners WHERE workspace_id = ?').get(workspaceId) !== undefined;
  }

  /** After the archives were pruned. */
  forget(workspaceIds: string[]): void {
    const del = this.db.prepare('DELETE FROM workspace_owners WHERE workspace_id = ?');
    this.db.transaction(() => workspaceIds.forEach((id) => del.run(id)))();
  }
}
