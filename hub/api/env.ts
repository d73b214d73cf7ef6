// What the API's middleware hands the routes: the caller, as auth found it; and the
// one guard every route group puts first: the scope its routes need.
import type { MiddlewareHandler } from 'hono';
import { requireScope, type Principal, type Scope } from '../principal.js';

export type HubEnv = { Variables: { principal: Principal } };

/** Refuses (403, naming the scope) a caller without `scope` before any route of the group runs. */
export function needsScope(scope: Scope, what: string): MiddlewareHandler<HubEnv> {
  return async (c, next) => {
    requireScope(c.get('principal'), scope, what);
    await next();
  };
}
