// The page's side of the API: same-origin fetches that carry the session cookie (the
// browser adds it; scripts never see it) and, on anything that changes something, the
// session's CSRF token. Errors come back in the hub's error shape, as HubCallError.
import type { SessionView } from '../schemas/types.gen.js';

export class HubCallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrf: string | null = null;

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  if (res.status === 204) return undefined as T;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = (data as { error?: { code?: string; message?: string } }).error;
    throw new HubCallError(res.status, err?.code ?? 'HTTP', err?.message ?? `${method} ${path}: HTTP ${res.status}`);
  }
  return data as T;
}

/** Who is signed in, or null when nobody is (or the session ended). */
export async function currentSession(): Promise<SessionView | null> {
  try {
    const s = await call<SessionView>('GET', '/v1/session');
    csrf = s.csrf;
    return s;
  } catch (err) {
    if (err instanceof HubCallError && err.status === 401) return null;
    throw err;
  }
}

export async function signIn(token: string): Promise<SessionView> {
  const s = await call<SessionView>('POST', '/v1/session', { token });
  csrf = s.csrf;
  return s;
}

export async function signOut(): Promise<void> {
  await call('DELETE', '/v1/session');
  csrf = null;
}

export const post = <T>(path: string, body?: unknown) => call<T>('POST', path, body);
export const del = <T>(path: string) => call<T>('DELETE', path);
