// What the API's middleware hands the routes: the caller, as auth found it; and the
// one guard every route group puts first: the scope its routes need.
import type { MiddlewareHandler } from 'hono';
import { HubError } from '../platform/errors.js';
import { requireScope, type Principal, type Scope } from '../platform/principal.js';

export type HubEnv = { Variables: { principal: Principal } };

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
