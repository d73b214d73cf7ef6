// Who may call the API: an API token stored (hashed) in the hub's database, or,
// when the hub is configured for it, a GitHub Actions OIDC ID token from a
// repository on the allow-list. Both arrive as `Authorization: Bearer <token>`;
// either way the answer is a Principal, whose id owns what it makes.
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { HubError } from './errors.js';
import { admittingEntries, type OidcEntry } from './oidc-entries.js';
import type { Principal, Scope } from './principal.js';
import type { OidcRepositories } from './store/oidc-repositories.js';
import type { TokenRecord, TokenStore } from './store/tokens.js';

/** The token of an `Authorization: Bearer <token>` header. */
export function parseBearer(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
}

export interface OidcSettings {
  jwksUrl: string;
  issuer: string;
  audience: string;
  entries: OidcEntry[];
}

const JWT = /^[\w-]+\.[\w-]+\.[\w-]+$/;

export function tokenPrincipal(t: TokenRecord): Principal {
  return {
    id: `token:${t.id}`,
    kind: 'token',
    label: t.name,
    scopes: new Set(t.scopes),
    tokenId: t.id,
    ...(t.expiresAt ? { expiresAt: t.expiresAt } : {}),
  };
}

export class Authenticator {
  private readonly jwks?: JWTVerifyGetKey;

  constructor(
    private readonly tokens: TokenStore,
    private readonly oidc?: OidcSettings,
    private readonly repositories?: OidcRepositories,
  ) {
    // Keys are fetched on first use and cached; an unknown `kid` refetches them.
    if (oidc) this.jwks = createRemoteJWKSet(new URL(oidc.jwksUrl));
  }

  /** The caller, or UNAUTHORIZED with the reason a token was refused. */
  async check(header: string | undefined): Promise<Principal> {
    const token = parseBearer(header);
    if (!token) throw new HubError('UNAUTHORIZED', 'missing token: send Authorization: Bearer <token>');
    const verdict = this.tokens.check(token);
    if (verdict.ok) return tokenPrincipal(verdict.token);
    if (verdict.why === 'expired') {
      throw new HubError('UNAUTHORIZED', `token expired on ${verdict.token!.expiresAt}: ask an admin for a new one`, { reason: 'expired' });
    }
    if (verdict.why === 'revoked') {
      const why = verdict.token!.revokedWhy ? ` (${verdict.token!.revokedWhy})` : '';
      throw new HubError('UNAUTHORIZED', `token revoked on ${verdict.token!.revokedAt}${why}: ask an admin for a new one`, { reason: 'revoked' });
    }
    if (this.oidc && JWT.test(token)) return this.checkOidc(token, this.oidc);
    throw new HubError('UNAUTHORIZED', 'wrong token: send Authorization: Bearer <token> with an API token of this hub');
  }

  /** Whether a principal checked earlier still may act (for long-lived streams): a reason when not. */
  stillValid(p: Principal): string | undefined {
    if (!p.tokenId) return undefined;
    const t = this.tokens.get(p.tokenId);
    if (!t || t.revokedAt) return 'token revoked';
    if (t.expiresAt && t.expiresAt <= this.tokens.nowIso()) return `token expired on ${t.expiresAt}`;
    return undefined;
  }

  private async checkOidc(token: string, oidc: OidcSettings): Promise<Principal> {
    let claims;
    try {
      // RS256 only, as GitHub signs: no HMAC keys guessed from a public JWK, no `none`.
      ({ payload: claims } = await jwtVerify(token, this.jwks!, { issuer: oidc.issuer, audience: oidc.audience, algorithms: ['RS256'] }));
    } catch (err) {
      throw new HubError('UNAUTHORIZED', `OIDC token refused: ${(err as Error).message}`);
    }
    const str = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
    const repository = str(claims.repository);
    const repositoryId = str(claims.repository_id);
    const sub = str(claims.sub);
    const entries = admittingEntries(oidc.entries, repository, sub);
    if (!entries.length) {
      const named = oidc.entries.some((e) => admittingEntries([{ ...e, subject: undefined }], repository, sub).length);
      throw new HubError(
        'UNAUTHORIZED',
        named
          ? `OIDC token refused: repository ${JSON.stringify(repository)} is allowed only for some subjects, and this token's sub ${JSON.stringify(sub)} is not one of them (DOCKER_AGENT_OIDC_REPOSITORIES)`
          : `OIDC token refused: repository ${JSON.stringify(repository)} is not allowed on this hub (DOCKER_AGENT_OIDC_REPOSITORIES)`,
      );
    }
    if (!/^\d+$/.test(repositoryId)) {
      throw new HubError('UNAUTHORIZED', 'OIDC token refused: it has no repository_id claim, and ownership is by repository id');
    }
    // A name can be taken over (renamed, or deleted and created again); an id cannot.
    const first = this.repositories?.pin(repository, repositoryId);
    if (first && first !== repositoryId) {
      throw new HubError(
        'UNAUTHORIZED',
        `OIDC token refused: repository ${repository} has id ${repositoryId}, but this hub first saw that name with id ${first}; ` +
          'it was renamed or recreated, so it is not the repository that was allowed (an operator can forget the old id with `docker-agent-hub oidc forget`)',
      );
    }
    const scopes: Scope[] = ['jobs', ...(entries.some((e) => e.privileged) ? (['privileged'] as const) : [])];
    return {
      id: `github:${repositoryId}`,
      kind: 'oidc',
      label: repository,
      scopes: new Set(scopes),
      repository,
      repositoryId,
      sub,
      ...(typeof claims.ref === 'string' ? { ref: claims.ref } : {}),
      ...(typeof claims.actor === 'string' ? { actor: claims.actor } : {}),
    };
  }
}
