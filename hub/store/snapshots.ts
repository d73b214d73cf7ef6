// Snapshots' rows: which image, whose, of what. The image itself lives on the engine.
import type { Db } from './db.js';

export interface Snapshot {
  id: string;
  owner: string | null;
  /** `agent NAME` or `job ID`. */
  source: string;
  image: string;
  bytes: number;
  createdAt: string;
}

interface Row {
  id: string;
  owner: string | null;
  source: string;
  image: string;
  bytes: number;
  created_at: string;
}

const fromRow = (r: Row): Snapshot => ({ id: r.id, owner: r.owner, source: r.source, image: r.image, bytes: r.bytes, createdAt: r.created_at });

export class SnapshotStore {
  constructor(private readonly db: Db) {}

  add(s: Omit<Snapshot, 'createdAt'>): Snapshot {
    const createdAt = new Date().toISOString();
    this.db
      .prepare('INSERT INTO snapshots (id, owner, source, image, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(s.id, s.owner, s.source, s.image, s.bytes, createdAt);
    return { ...s, createdAt };
  }

  get(id: string): Snapshot | undefined {
    const row = this.db.prepare('SELECT * FROM snapshots WHERE id = ?').get(id) as Row | undefined;
    return row && fromRow(row);
  }

  /** Every snapshot, or one owner's, newest first. */
  list(owner?: string): Snapshot[] {
    const rows = (
      owner === undefined
        ? this.db.prepare('SELECT * FROM snapshots ORDER BY created_at DESC').all()
        : this.db.prepare('SELECT * FROM snapshots WHERE owner = ? ORDER BY created_at DESC').all(owner)
    ) as Row[];
    return rows.map(fromRow);
  }

  remove(id: string): void {
    this.db.prepare('DELETE FROM snapshots WHERE id = ?').run(id);
  }

  removeByImage(image: string): void {
    this.db.prepare('DELETE FROM snapshots WHERE image = ?').run(image);
  }
}
