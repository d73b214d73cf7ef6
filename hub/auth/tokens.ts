// Making and ending API tokens, the same from the API (POST/DELETE /v1/tokens) and
// from the hub's command line (docker-agent-hub token …).
import type { CreatedToken, TokenRequest, TokenView } from '../../schemas/types.gen.js';
import { HubError } from '../platform/errors.js';
import { newSecret, type TokenRecord, type TokenSource, type TokenStore } from '../store/tokens.js';

/** Tokens that work at once, at most: each is a row checked on every request. */
export const MAX_ACTIVE_TOKENS = 1000;

export function tokenView(t: TokenRecord): TokenView {
  return { id: t.id, name: t.name, scopes: t.scopes, source: t.source, createdAt: t.createdAt, expiresAt: t.expiresAt, revokedAt: t.revokedAt };
}

export function createToken(store: TokenStore, req: TokenRequest, source: TokenSource): CreatedToken {
  if (store.countActive() >= MAX_ACTIVE_TOKENS) {
    throw new HubError('LIMIT_REACHED', `this hub already has ${MAX_ACTIVE_TOKENS} working tokens, the most it keeps: revoke some first`, {
      limit: 'MAX_ACTIVE_TOKENS',
      max: MAX_ACTIVE_TOKENS,
    });
  }
  const token = newSecret('dat');
  const expiresAt = req.expiresInDays === undefined ? null : new Date(Date.parse(store.nowIso()) + req.expiresInDays * 86_400_000).toISOString();
  const rec = store.add({ name: req.name, token, scopes: req.scopes, source, expiresAt });
  return { id: rec.id, name: rec.name, token, scopes: rec.scopes, expiresAt: rec.expiresAt };
}

/** Ends a token at once; revoking one already revoked changes nothing. */
export function revokeToken(store: TokenStore, id: string, why: string): TokenRecord {
  if (!store.get(id)) throw new HubError('TOKEN_NOT_FOUND', `no token with id ${id}; GET /v1/tokens (or docker-agent-hub token list) lists them`);
  store.revoke(id, why);
  return store.get(id)!;
}
