// API tokens, stored only as SHA-256 hashes: they are long random strings, so a
// fast hash is enough and a stolen database file gives no usable token.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from './db.js';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(24).toString('base64url')}`;
}

export class TokenStore {
  constructor(private readonly db: Db) {}

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM tokens').get() as { n: number }).n;
  }

  /** Adds a token (idempotent: the same token twice is stored once). */
  add(name: string, token: string): void {
    this.db
      .prepare('INSERT OR IGNORE INTO tokens (id, name, hash, created_at) VALUES (?, ?, ?, ?)')
      .run(randomUUID(), name, hashToken(token), new Date().toISOString());
  }

  verify(token: string): boolean {
    return this.db.prepare('SELECT 1 FROM tokens WHERE hash = ?').get(hashToken(token)) !== undefined;
  }
}
