// The audit log: one JSON line per mutating request and per refused one (401, 403,
// 404 on someone else's object, 429), written through the hub's logger, so an
// operator can answer "who did what, to what, and was it allowed".
import type { HubError } from '../platform/errors.js';
import type { Principal } from '../platform/principal.js';

export interface AuditEntry {
  time: string;
  /** The principal's id (token:… or github:…), or null when it could not be told. */
  principal: string | null;
  /** The token's name or the repository's. */
  name: string | null;
  method: string;
  route: string;
  /** The job, token or workspace the request was about, if any. */
  object: string | null;
  status: number;
  /** `ok`, or the error code. */
  outcome: string;
  /** A 404 that hid an object of someone else's. */
  foreign?: boolean;
  message?: string;
}

export type AuditLog = (entry: AuditEntry) => void;

export function auditLog(log: (line: string) => void): AuditLog {
  return (entry) => log(JSON.stringify({ audit: entry }));
}

const REFUSED = new Set([401, 403, 429]);

/** Whether a request is worth a line: it changed something, or it was refused. */
export function worthAuditing(method: string, status: number, err?: HubError): boolean {
  if (!['GET', 'HEAD', 'OPTIONS'].includes(method)) return true;
  return REFUSED.has(status) || (status === 404 && err?.audit?.foreign === true);
}

export function auditEntry(
  req: { method: string; route: string; object?: string | null },
  principal: Principal | undefined,
  status: number,
  err?: HubError,
  now = new Date(),
): AuditEntry {
  return {
    time: now.toISOString(),
    principal: principal?.id ?? null,
    name: principal?.label ?? null,
    method: req.method,
    route: req.route,
    object: req.object ?? null,
    status,
    outcome: err ? err.code : status < 400 ? 'ok' : `HTTP_${status}`,
    ...(err?.audit?.foreign ? { foreign: true } : {}),
    ...(err ? { message: err.message } : {}),
  };
}
