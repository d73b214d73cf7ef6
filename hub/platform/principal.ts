// Who is calling, and what they may do. Every job, workspace upload and snapshot
// carries its maker's `id` as its owner; a principal sees only what it owns,
// except admin, who sees all. Anything else's is answered as if it did not exist.
import { HubError } from './errors.js';

export const SCOPES = ['jobs', 'admin', 'privileged', 'metrics'] as const;
export type Scope = (typeof SCOPES)[number];

export const SCOPE_MEANING: Record<Scope, string> = {
  jobs: 'submit jobs and upload workspaces, and see, stream, cancel and download its own',
  admin: "everything: every principal's jobs, tokens, maintenance",
  privileged: 'run privileged profiles (docker-host), where the hub allows them',
  metrics: "read the hub's metrics",
};

export interface Principal {
  /**
   * The owner recorded on what it makes: `token:<token id>`, or for OIDC the
   * repository and the subject of the entry that admitted it:
   * `github:<repository_id>` (an entry without a subject) or
   * `github:<repository_id>:<subject>` (oidc-entries.ts, owningEntries).
   */
  id: string;
  kind: 'token' | 'oidc';
  /** A name for logs and messages: the token's name or the repository's. */
  label: string;
  scopes: ReadonlySet<Scope>;
  /** Tokens only. */
  tokenId?: string;
  expiresAt?: string;
  /** Set when the caller is a dashboard session (opened with the token above). */
  sessionId?: string;
  /** OIDC only. */
  repository?: string;
  repositoryId?: string;
  sub?: string;
  /** The admitting entry's subject pattern; absent for an entry without one. */
  subject?: string;
  ref?: string;
  actor?: string;
}

export function isAdmin(p: Principal): boolean {
  return p.scopes.has('admin');
}

/** Admin has every scope. */
export function hasScope(p: Principal, scope: Scope): boolean {
  return p.scopes.has(scope) || isAdmin(p);
}

/** 403 naming the scope and what it is for, unless the principal has it. */
export function requireScope(p: Principal, scope: Scope, what: string): void {
  if (hasScope(p, scope)) return;
  throw new HubError('SCOPE_REQUIRED', `${what} needs the "${scope}" scope, which ${describe(p)} lacks (it has: ${[...p.scopes].join(', ') || 'none'})`, {
    scope,
  });
}

/** Whether `p` may see an object owned by `owner` (null: made before owners existed, admin only). */
export function canSee(p: Principal, owner: string | null | undefined): boolean {
  return isAdmin(p) || (owner != null && owner === p.id);
}

export function describe(p: Principal): string {
  if (p.kind === 'token') return `token ${JSON.stringify(p.label)}`;
  return `repository ${p.repository} (id ${p.repositoryId})${p.subject === undefined ? '' : ` admitted as :${p.subject}`}`;
}
