// Who may call the API: an API token stored (hashed) in the hub's database, or,
// when the hub is configured for it, a GitHub Actions OIDC ID token from a
// repository on the allow-list. Both arrive as `Authorization: Bearer <token>`;
// either way the answer is a Principal, whose id owns what it makes.
import { timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { parse as parseCookies } from 'hono/utils/cookie';
import { HubError } from '../platform/errors.js';
import { admittingEntries, entryNames, oidcOwnerId, owningEntries, parseOidcOwner, type OidcEntry } from '../platform/oidc-entries.js';
import { hasScope, type Principal, type Scope } from '../platform/principal.js';
import { ownerKey, type OidcRepositories } from '../store/oidc-repositories.js';
import type { TokenRecord, TokenStore, Verdict } from '../store/tokens.js';
import type { SessionStore } from '../store/sessions.js';

/** The dashboard's session cookie (HttpOnly, SameSite=Strict). */
export const SESSION_COOKIE = 'docker_agent_session';

/** What a request presents: a bearer token, or a session cookie with what guards it. */
export interface Credentials {
  method: string;
  authorization?: string;
  cookie?: string;
  origin?: string;
  host?: string;
  /** X-CSRF-Token: the session's, sent by the dashboard's own page. */
  csrf?: string;
  /** Sec-Fetch-Site: what the browser says of the request's initiator. */
  fetchSite?: string;
}

/** Credentials from a request's headers (Hono's `c.req.header` or Node's `req.headers`). */
export function credentialsOf(method: string, header: (name: string) => string | string[] | undefined): Credentials {
  const one = (name: string) => {
    const v = header(name);
    return Array.isArray(v) ? v[0] : v;
  };
  return {
    method,
    authorization: one('authorization'),
    cookie: one('cookie'),
    origin: one('origin'),
    host: one('host'),
    csrf: one('x-csrf-token'),
    fetchSite: one('sec-fetch-site'),
  };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function sameSecret(a: string | undefined, b: string): boolean {
  if (!a) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether a browser's Origin header names this hub (the Host it was asked on). */
export function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (!origin || !host) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** The session secret a Cookie header carries (the first of its name), if any. */
export function sessionSecretOf(cookie: string | undefined): string | undefined {
  return parseCookies(cookie ?? '', SESSION_COOKIE)[SESSION_COOKIE];
}

/** The token of an `Authorization: Bearer <token>` header. */
export function parseBearer(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
}

export interface OidcSettings {
  jwksUrl: string;
  issuer: string;
  /** What `aud` must be: DOCKER_AGENT_OIDC_AUDIENCE, else the hub's public URL (known once it listens). */
  audience: () => string;
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
    private readonly sessions?: SessionStore,
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
    if (verdict.why === 'unknown' && this.oidc && JWT.test(token)) return this.checkOidc(token, this.oidc);
    throw refusal(verdict, 'ask an admin for a new one');
  }

  /**
   * The caller of a request: its bearer token when it sends one, else its dashboard
   * session. A session's request must come from the hub's own pages: a browser's
   * Origin, when sent, names this hub, and anything but a read carries the session's
   * CSRF token (SameSite=Strict already keeps the cookie off other sites' requests).
   */
  async checkRequest(r: Credentials): Promise<Principal> {
    const secret = r.authorization || !this.sessions ? undefined : sessionSecretOf(r.cookie);
    if (!secret) return this.check(r.authorization);
    // A second cookie of the name was planted by another page of the site (a sibling port or subdomain): trust neither.
    if ((r.cookie ?? '').split(';').filter((c) => c.trim().startsWith(`${SESSION_COOKIE}=`)).length > 1) {
      throw new HubError(
        'UNAUTHORIZED',
        `more than one ${SESSION_COOKIE} cookie was sent (another page of this site set one): clear this site's cookies and sign in again`,
      );
    }
    // SameSite=Strict lets a sibling port or subdomain through (same site, not same origin); the browser says which it was.
    if (r.fetchSite !== undefined && !['same-origin', 'none'].includes(r.fetchSite)) {
      throw new HubError('CROSS_SITE', `refused: a ${r.fetchSite} request may not use this hub's dashboard session`);
    }
    const session = this.sessions!.find(secret);
    if (!session)
      throw new HubError('UNAUTHORIZED', 'your dashboard session has ended (signed out, timed out or its token revoked): sign in again', {
        reason: 'session ended',
      });
    const verdict = this.tokens.checkId(session.tokenId);
    if (!verdict.ok) {
      this.sessions!.close(session.id);
      throw refusal(verdict, 'sign in again with a working token');
    }
    if (r.origin !== undefined && !sameOrigin(r.origin, r.host)) {
      throw new HubError('CROSS_SITE', `refused: a request from ${r.origin} may not use this hub's dashboard session`);
    }
    if (!SAFE_METHODS.has(r.method.toUpperCase()) && !sameSecret(r.csrf, session.csrf)) {
      throw new HubError('CROSS_SITE', 'refused: a request made with the dashboard session needs its X-CSRF-Token header (reload the page)');
    }
    return { ...tokenPrincipal(verdict.token), sessionId: session.id };
  }

  /** A token for a dashboard sign-in: API tokens only (an OIDC token lives minutes, a session hours). */
  signIn(token: string): TokenRecord {
    const verdict = this.tokens.check(token);
    if (verdict.ok) return verdict.token;
    if (verdict.why === 'unknown') throw new HubError('UNAUTHORIZED', 'wrong token: sign in with an API token of this hub (docker-agent-hub token create)');
    throw refusal(verdict, 'ask an admin for a new one');
  }

  /** Whether a principal checked earlier still may act (for long-lived streams): a reason when not. */
  stillValid(p: Principal): string | undefined {
    if (p.sessionId && !this.sessions?.isOpen(p.sessionId)) return 'signed out';
    // An OIDC token lives minutes: its streams end with it (clients reconnect with a fresh one).
    if (!p.tokenId) return p.expiresAt && p.expiresAt <= this.tokens.nowIso() ? `token expired on ${p.expiresAt}` : undefined;
    const verdict = this.tokens.checkId(p.tokenId);
    if (verdict.ok) return undefined;
    return verdict.why === 'expired' ? `token expired on ${verdict.token!.expiresAt}` : 'token revoked';
  }

  /**
   * Whether what `owner` queued may still use a privileged profile, by the tokens and
   * entries as they are now: a token's scopes, or an OIDC owner's entry (the hub may
   * have restarted with its `+privileged` gone, or without the entry).
   */
  mayRunPrivileged(owner: string): boolean {
    if (owner.startsWith('token:')) {
      const verdict = this.tokens.checkId(owner.slice('token:'.length));
      return verdict.ok && hasScope(tokenPrincipal(verdict.token), 'privileged');
    }
    const o = parseOidcOwner(owner);
    if (!o || !this.oidc || !this.repositories) return false;
    const names = this.repositories.namesOf(o.repositoryId);
    return this.oidc.entries.some((e) => e.privileged && e.subject === o.subject && names.some((n) => entryNames(e, n)));
  }

  private async checkOidc(token: string, oidc: OidcSettings): Promise<Principal> {
    let claims;
    try {
      // RS256 only, as GitHub signs: no HMAC keys guessed from a public JWK, no `none`. A token without `exp` would never end.
      ({ payload: claims } = await jwtVerify(token, this.jwks!, {
        issuer: oidc.issuer,
        audience: oidc.audience(),
        algorithms: ['RS256'],
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw new HubError('UNAUTHORIZED', `OIDC token refused: ${(err as Error).message}`);
    }
    const str = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
    const repository = str(claims.repository);
    const repositoryId = str(claims.repository_id);
    const sub = str(claims.sub);
    let entries = admittingEntries(oidc.entries, repository, sub);
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
    entries = this.pinnedOwner(entries, repository, str(claims.repository_owner_id));
    // The principal is the repository and the entry that admitted it: a pull request's run is not its production deploy.
    const owning = owningEntries(entries);
    const subject = owning[0]!.subject;
    const scopes: Scope[] = ['jobs', ...(owning.some((e) => e.privileged) ? (['privileged'] as const) : [])];
    return {
      id: oidcOwnerId(repositoryId, subject),
      kind: 'oidc',
      label: subject === undefined ? repository : `${repository}:${subject}`,
      scopes: new Set(scopes),
      repository,
      repositoryId,
      sub,
      ...(subject !== undefined ? { subject } : {}),
      ...(typeof claims.exp === 'number' ? { expiresAt: new Date(claims.exp * 1000).toISOString() } : {}),
      ...(typeof claims.ref === 'string' ? { ref: claims.ref } : {}),
      ...(typeof claims.actor === 'string' ? { actor: claims.actor } : {}),
    };
  }

  /**
   * `OWNER/*` entries admit by the owner's name, which a new account can take after
   * a rename or deletion: they admit only tokens whose repository_owner_id is the
   * one this hub first saw for that name. Entries that name the repository are bound
   * by the repository's own pinned id instead.
   */
  private pinnedOwner(entries: OidcEntry[], repository: string, ownerId: string): OidcEntry[] {
    if (!entries.some((e) => e.name === '*')) return entries;
    const owner = repository.split('/')[0]!;
    let why: string;
    if (!/^\d+$/.test(ownerId)) why = `it has no repository_owner_id claim, and ${owner}/* admits by the owner's id`;
    else {
      const first = this.repositories?.pinOwner(owner, ownerId);
      if (!first || first === ownerId) return entries;
      why =
        `its owner ${owner} has id ${ownerId}, but this hub first saw that name with id ${first}; the name changed hands, so it is not the owner that was allowed ` +
        `(an operator can forget the old id with \`docker-agent-hub oidc forget ${ownerKey(owner)}\`)`;
    }
    const named = entries.filter((e) => e.name !== '*');
    if (named.length) return named;
    throw new HubError('UNAUTHORIZED', `OIDC token refused: ${why}`);
  }
}

/** 401 for a token that does not work, saying why and what to do. */
function refusal(verdict: Exclude<Verdict, { ok: true }>, todo: string): HubError {
  if (verdict.why === 'expired') return new HubError('UNAUTHORIZED', `token expired on ${verdict.token!.expiresAt}: ${todo}`, { reason: 'expired' });
  if (verdict.why === 'revoked') {
    const why = verdict.token!.revokedWhy ? ` (${verdict.token!.revokedWhy})` : '';
    return new HubError('UNAUTHORIZED', `token revoked on ${verdict.token!.revokedAt}${why}: ${todo}`, { reason: 'revoked' });
  }
  return new HubError('UNAUTHORIZED', 'wrong token: send Authorization: Bearer <token> with an API token of this hub');
}
