// The page's client of the hub: the shared one (client/http.ts) with no token, so the
// browser's session cookie goes instead, and the session's CSRF token on anything
// that changes something.
import { HubApiError, HubHttp, type SessionView } from '../client/http.js';

let csrf: string | null = null;

export const hub = new HubHttp({ url: '', csrf: () => csrf });

export { HubApiError };

/** Who is signed in, or null when nobody is (or the session ended). */
export async function currentSession(): Promise<SessionView | null> {
  try {
    const s = await hub.session();
    csrf = s.csrf;
    return s;
  } catch (err) {
    if (err instanceof HubApiError && err.status === 401) return null;
    throw err;
  }
}

export async function signIn(token: string): Promise<SessionView> {
  const s = await hub.signIn(token);
  csrf = s.csrf;
  return s;
}

export async function signOut(): Promise<void> {
  await hub.signOut();
  csrf = null;
}

/** Whether a job or agent is there for the caller (404 for someone else's, as for a missing one). */
export async function exists(read: Promise<unknown>): Promise<boolean> {
  try {
    await read;
    return true;
  } catch (err) {
    if (err instanceof HubApiError && err.status === 404) return false;
    throw err;
  }
}
