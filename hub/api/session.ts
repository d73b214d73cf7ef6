// /v1/session: the dashboard's sign-in. POST trades an API token for a session
// cookie (HttpOnly, SameSite=Strict: the page's scripts never see it, other sites'
// requests never carry it); GET says who is signed in and hands the page its CSRF
// token; DELETE signs out, which also ends the session's open streams.
import { Hono } from 'hono';
import { deleteCookie, setCookie } from 'hono/cookie';
import type { SessionView } from '../../schemas/types.gen.js';
import { sameOrigin, SESSION_COOKIE, sessionSecretOf, tokenPrincipal, type Authenticator } from '../auth/authenticator.js';
import { HubError, validationError } from '../platform/errors.js';
import type { Principal } from '../platform/principal.js';
import type { SessionStore } from '../store/sessions.js';
import { validateSignIn } from '../platform/validation.js';
import { readJson } from './body.js';
import type { HubEnv } from './env.js';

export interface SessionDeps {
  auth: Authenticator;
  sessions: SessionStore;
  /** Whether the hub is reached over https (the cookie is then Secure). */
  secure: () => boolean;
  /** The session ended: end its streams. */
  onSignOut: (sessionId: string) => void;
}

function view(p: Principal, session?: { csrf: string; expiresAt: string }): SessionView {
  return {
    principal: { id: p.id, kind: p.kind, label: p.label, scopes: [...p.scopes] },
    csrf: session?.csrf ?? null,
    expiresAt: session?.expiresAt ?? null,
  };
}

/** Signing in needs no token in a header (the token is the body); the rest of /v1 is checked before. */
export function signInRoute(deps: SessionDeps) {
  const app = new Hono<HubEnv>();
  app.post('/', async (c) => {
    // A page of another site must not sign a browser in to this hub (login CSRF).
    const origin = c.req.header('origin');
    if (origin !== undefined && !sameOrigin(origin, c.req.header('host'))) {
      throw new HubError('CROSS_SITE', `refused: a sign-in from ${origin} is not from this hub's own page`);
    }
    const parsed = validateSignIn(await readJson(c));
    if (!parsed.ok) throw validationError('sign-in', parsed.issues);
    const token = deps.auth.signIn(parsed.value.token);
    // The browser's earlier session (if any) ends: one browser, one session.
    const earlier = sessionSecretOf(c.req.header('cookie'));
    const before = earlier ? deps.sessions.find(earlier) : undefined;
    if (before) {
      deps.sessions.close(before.id);
      deps.onSignOut(before.id);
    }
    const { secret, session } = deps.sessions.open(token.id);
    setCookie(c, SESSION_COOKIE, secret, {
      httpOnly: true,
      sameSite: 'Strict',
      path: '/',
      secure: deps.secure(),
      expires: new Date(session.expiresAt),
    });
    const principal = { ...tokenPrincipal(token), sessionId: session.id };
    c.set('principal', principal);
    return c.json(view(principal, session), 201);
  });
  return app;
}

export function sessionRoutes(deps: SessionDeps) {
  const app = new Hono<HubEnv>();
  app.get('/', (c) => {
    const p = c.get('principal');
    return c.json(view(p, p.sessionId ? deps.sessions.get(p.sessionId) : undefined));
  });
  app.delete('/', (c) => {
    const p = c.get('principal');
    if (p.sessionId) {
      deps.sessions.close(p.sessionId);
      deps.onSignOut(p.sessionId);
    }
    deleteCookie(c, SESSION_COOKIE, { path: '/', secure: deps.secure() });
    return c.body(null, 204);
  });
  return app;
}
