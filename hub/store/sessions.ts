// Dashboard sessions. Signing in with an API token opens a session that stands for
// that token: the browser holds only the session's secret (in an HttpOnly cookie),
// the database only its hash. A session ends on sign-out, at its end time, and as
// soon as its token is revoked or runs out (checked on every use, not copied).
import { randomBytes, randomUUID } from 'node:crypto';
import type { Db } from './db.js';
import { hashToken, newSecret } from './tokens.js';

export interface SessionRecord {
  id: string;
  tokenId: string;
  /** Sent back by the page on every state-changing request (X-CSRF-Token). */
  csrf: string;
  createdAt: string;
  expiresAt: string;
}

interface Row {
  id: string;
  token_id: string;
  csrf: string;
  created_at: string;
  expires_at: string;
}

const fromRow = (r: Row): SessionRecord => ({ id: r.id, tokenId: r.token_id, csrf: r.csrf, createdAt: r.created_at, expiresAt: r.expires_at });

export class SessionStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
    /** How long a session lasts. */
    private readonly ttlMs: number,
    /** Sessions one token may hold at once; the oldest go first (a caller cannot fill the table). */
    private readonly maxPerToken: number,
  ) {}

  /** Opens a session for a token; returns the secret the cookie carries. */
  open(tokenId: string): { secret: string; session: SessionRecord } {
    const now = this.now();
    const secret = newSecret('das');
    const session: SessionRecord = {
      id: randomUUID(),
      tokenId,
      csrf: randomBytes(24).toString('base64url'),
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + this.ttlMs).toISOString(),
    };
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(session.createdAt);
      this.db
        .prepare('INSERT INTO sessions (hash, id, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(hashToken(secret), session.id, tokenId, session.csrf, session.createdAt, session.expiresAt);
      this.db
        .prepare(
          'DELETE FROM sessions WHERE token_id = ? AND id NOT IN (SELECT id FROM sessions WHERE token_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?)',
        )
        .run(tokenId, tokenId, this.maxPerToken);
    })();
    return { secret, session };
  }

  /** The session a cookie's secret opens, unless it ended. */
  find(secret: string): SessionRecord | undefined {
    const row = this.db.prepare('SELECT * FROM sessions WHERE hash = ? AND expires_at > ?').get(hashToken(secret), this.now().toISOString()) as Row | undefined;
    return row && fromRow(row);
  }

  /** An open session by its id. */
  get(id: string): SessionRecord | undefined {
    const row = this.db.prepare('SELECT * FROM sessions WHERE id = ? AND expires_at > ?').get(id, this.now().toISOString()) as Row | undefined;
    return row && fromRow(row);
  }

  /** Whether a session (by id) is still open. */
  isOpen(id: string): boolean {
    return this.get(id) !== undefined;
  }

  close(id: string): void {
    this.db.prepare('DELETE FROM sessions WHERE id = ?').run(id);
  }

  closeForToken(tokenId: string): void {
    this.db.prepare('DELETE FROM sessions WHERE token_id = ?').run(tokenId);
  }
}
