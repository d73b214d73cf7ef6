// What the API's middleware hands the routes: the caller, as auth found it; and the
// one guard every route group puts first: the scope its routes need.
import type { Env, Hono, MiddlewareHandler } from 'hono';
import { diskFailure, HubError } from '../platform/errors.js';
import { requireScope, type Principal, type Scope } from '../platform/principal.js';

export type HubEnv = { Variables: { principal: Principal } };

/**
 * How every HTTP endpoint of the hub answers what went wrong: a HubError as its
 * status and `{error}` body, a full disk as a logged 503, anything else as a logged 500,
 * an unknown route as 404.
 */
export function answerErrors<E extends Env>(app: Hono<E>, where = ''): void {
  app.onError((err, c) => {
    // A store that cannot write (a full disk) is a 503 that says so, and the hub goes on answering what needs no writes.
    const e = err instanceof HubError ? err : (diskFailure(err) ?? new HubError('INTERNAL', `internal error: ${err.message}`));
    if (e.code === 'INTERNAL' || e.code === 'DISK_FULL') console.error(err);
    return c.json(e.toJSON(), e.status as 400);
  });
  app.notFound((c) => c.json(new HubError('NOT_FOUND', `no route ${c.req.method} ${c.req.path}${where}`).toJSON(), 404));
}

/** `?full=1`: a snapshot download with its base's layers too (a whole `docker save`). */
export function fullParam(raw: string | undefined): boolean {
  if (raw === undefined || raw === '0' || raw === 'false') return false;
  if (raw === '1' || raw === 'true') return true;
  throw new HubError('VALIDATION_FAILED', `full=${raw}: expected 1 or 0`, { issues: [{ path: 'full', message: 'expected 1 or 0' }] });
}

/** Refuses (403, naming the scope) a caller without `scope` before any route of the group runs. */
export function needsScope(scope: Scope, what: string): MiddlewareHandler<HubEnv> {
  return async (c, next) => {
    requireScope(c.get('principal'), scope, what);
    await next();
  };
}
