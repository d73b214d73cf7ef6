// API tokens, stored only as SHA-256 hashes: they are long random strings, so a
// fast hash is enough and a stolen database file gives no usable token. A token
// has a name, scopes, maybe an end (expires_at), and once revoked stays revoked
// (the row is kept so its holder learns why it stopped working).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Scope } from '../platform/principal.js';
import type { Db } from './db.js';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(24).toString('base64url')}`;
}

/** Where a token came from: DOCKER_AGENT_TOKEN, the first start, the API or the command line. */
export type TokenSource = 'env' | 'first-start' | 'api' | 'cli';

export interface TokenRecord {
  id: string;
  name: string;
  scopes: Scope[];
  source: TokenSource;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  revokedWhy: string | null;
}

interface Row {
  id: string;
  name: string;
  scopes: string;
  source: TokenSource;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  revoked_why: string | null;
}

function fromRow(r: Row): TokenRecord {
  return {
    id: r.id,
    name: r.name,
    scopes: JSON.parse(r.scopes),
    source: r.source,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    revokedWhy: r.revoked_why,
  };
}

export type Verdict = { ok: true; token: TokenRecord } | { ok: false; token?: TokenRecord; why: 'unknown' | 'expired' | 'revoked' };

export class TokenStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {}

  nowIso(): string {
    return this.now().toISOString();
  }

  /** Tokens that work now (not revoked, not expired), or those of them with `scope`. */
  countActive(scope?: Scope): number {
    const rows = this.db
      .prepare('SELECT scopes FROM tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)')
      .all(this.now().toISOString()) as { scopes: string }[];
    return scope ? rows.filter((r) => (JSON.parse(r.scopes) as Scope[]).includes(scope)).length : rows.length;
  }

  /** Stores a new token; the same secret twice is stored once (the first record wins). */
  add(t: { name: string; token: string; scopes: Scope[]; source: TokenSource; expiresAt?: string | null }): TokenRecord {
    this.db
      .prepare('INSERT OR IGNORE INTO tokens (id, name, hash, created_at, scopes, source, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(randomUUID(), t.name, hashToken(t.token), this.now().toISOString(), JSON.stringify(t.scopes), t.source, t.expiresAt ?? null);
    return fromRow(this.db.prepare('SELECT * FROM tokens WHERE hash = ?').get(hashToken(t.token)) as Row);
  }

  /** What a presented secret is: a working token, or why it is not one. */
  check(token: string): Verdict {
    return this.verdict(this.db.prepare('SELECT * FROM tokens WHERE hash = ?').get(hashToken(token)) as Row | undefined);
  }

  /** The same, for the token with this id (a session's). */
  checkId(id: string): Verdict {
    return this.verdict(this.db.prepare('SELECT * FROM tokens WHERE id = ?').get(id) as Row | undefined);
  }

  private verdict(row: Row | undefined): Verdict {
    if (!row) return { ok: false, why: 'unknown' };
    const rec = fromRow(row);
    if (rec.revokedAt) return { ok: false, token: rec, why: 'revoked' };
    if (rec.expiresAt && rec.expiresAt <= this.now().toISOString()) return { ok: false, token: rec, why: 'expired' };
    return { ok: true, token: rec };
  }

  get(id: string): TokenRecord | undefined {
    const row = this.db.prepare('SELECT * FROM tokens WHERE id = ?').get(id) as Row | undefined;
    return row && fromRow(row);
  }

  /** Every token, newest first (no secrets: only hashes are stored). */
  list(): TokenRecord[] {
    return (this.db.prepare('SELECT * FROM tokens ORDER BY created_at DESC, rowid DESC').all() as Row[]).map(fromRow);
  }

  /** Ends a token now; true when it was working until this call. */
  revoke(id: string, why: string): boolean {
    return (
      this.db.prepare('UPDATE tokens SET revoked_at = ?, revoked_why = ? WHERE id = ? AND revoked_at IS NULL').run(this.now().toISOString(), why, id).changes >
      0
    );
  }

  /** Revokes the DOCKER_AGENT_TOKEN records other than `keepHash` (that variable changed or was unset). */
  revokeOtherEnvTokens(keep: string | undefined): string[] {
    const rows = this.db
      .prepare(`SELECT id FROM tokens WHERE source = 'env' AND revoked_at IS NULL AND hash IS NOT ?`)
      .all(keep === undefined ? null : hashToken(keep)) as { id: string }[];
    for (const r of rows) this.revoke(r.id, 'DOCKER_AGENT_TOKEN was changed or unset');
    return rows.map((r) => r.id);
  }
}
