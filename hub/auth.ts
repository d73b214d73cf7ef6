// Who may call the API: an API token stored (hashed) in the hub's database, or,
// when the hub is configured for it, a GitHub Actions OIDC ID token from a
// repository on the allow-list. Both arrive as `Authorization: Bearer <token>`.
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { HubError } from './errors.js';
import type { TokenStore } from './store/tokens.js';

/** The token of an `Authorization: Bearer <token>` header. */
export function parseBearer(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
}

export interface OidcSettings {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** `owner/name` or `owner/*`. */
  repositories: string[];
}

export type Principal = { kind: 'token' } | { kind: 'oidc'; repository: string; ref?: string; actor?: string };

const JWT = /^[\w-]+\.[\w-]+\.[\w-]+$/;

/** `owner/*` allows every repository of the owner; GitHub's names are case-insensitive. */
export function repositoryAllowed(repository: string, allowed: string[]): boolean {
  const repo = repository.toLowerCase();
  return allowed.some((a) => {
    const rule = a.trim().toLowerCase();
    return rule === repo || (rule.endsWith('/*') && repo.startsWith(rule.slice(0, -1)));
  });
}

export class Authenticator {
  private readonly jwks?: JWTVerifyGetKey;

  constructor(
    private readonly tokens: TokenStore,
    private readonly oidc?: OidcSettings,
  ) {
    // Keys are fetched on first use and cached; an unknown `kid` refetches them.
    if (oidc) this.jwks = createRemoteJWKSet(new URL(oidc.jwksUrl));
  }

  /** The caller, or UNAUTHORIZED with the reason a token was refused. */
  async check(header: string | undefined): Promise<Principal> {
    const token = parseBearer(header);
    if (!token) throw new HubError('UNAUTHORIZED', 'missing token: send Authorization: Bearer <token>');
    if (this.tokens.verify(token)) return { kind: 'token' };
    if (this.oidc && JWT.test(token)) return this.checkOidc(token, this.oidc);
    throw new HubError('UNAUTHORIZED', 'wrong token: send Authorization: Bearer <token> with an API token of this hub');
  }

  private async checkOidc(token: string, oidc: OidcSettings): Promise<Principal> {
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(token, this.jwks!, { issuer: oidc.issuer, audience: oidc.audience }));
    } catch (err) {
      throw new HubError('UNAUTHORIZED', `OIDC token refused: ${(err as Error).message}`);
    }
    const repository = typeof claims.repository === 'string' ? claims.repository : '';
    if (!repositoryAllowed(repository, oidc.repositories)) {
      throw new HubError(
        'UNAUTHORIZED',
        `OIDC token refused: repository ${JSON.stringify(repository)} is not allowed on this hub (DOCKER_AGENT_OIDC_REPOSITORIES)`,
      );
    }
    return {
      kind: 'oidc',
      repository,
      ...(typeof claims.ref === 'string' ? { ref: claims.ref } : {}),
      ...(typeof claims.actor === 'string' ? { actor: claims.actor } : {}),
    };
  }
}
