// Errors as typed values: a stable code, the HTTP status it maps to (once, here),
// a message that says what to do, and optional details for machines.

export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'INVALID_JSON'
  | 'BODY_TOO_LARGE'
  | 'UNAUTHORIZED'
  | 'SCOPE_REQUIRED'
  | 'CROSS_SITE'
  | 'LIMIT_REACHED'
  | 'TOKEN_NOT_FOUND'
  | 'NOT_FOUND'
  | 'JOB_NOT_FOUND'
  | 'JOB_ENDED'
  | 'NOT_RUNNING'
  | 'AGENT_EXISTS'
  | 'IN_USE'
  | 'AGENT_NOT_FOUND'
  | 'SHELL_LIMIT'
  | 'WORKSPACE_NOT_FOUND'
  | 'PROFILE_NOT_FOUND'
  | 'PROFILE_NOT_ALLOWED'
  | 'PROFILE_INVALID'
  | 'CONFIG_INVALID'
  | 'ENGINE_UNAVAILABLE'
  | 'NETWORK_UNAVAILABLE'
  | 'IMAGE_BUILD_FAILED'
  | 'AGENT_LOST'
  | 'NODE_LOST'
  | 'SNAPSHOT_FAILED'
  | 'ARCHIVE_LIMIT'
  | 'OUTPUT_LIMIT'
  | 'SNAPSHOT_TOO_LARGE'
  | 'DISK_LIMIT'
  | 'DISK_LOW'
  | 'DISK_FULL'
  | 'INTERNAL';

const STATUS: Record<ErrorCode, number> = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  BODY_TOO_LARGE: 413,
  UNAUTHORIZED: 401,
  SCOPE_REQUIRED: 403,
  CROSS_SITE: 403,
  LIMIT_REACHED: 429,
  TOKEN_NOT_FOUND: 404,
  NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  JOB_ENDED: 409,
  NOT_RUNNING: 409,
  AGENT_EXISTS: 409,
  IN_USE: 409,
  AGENT_NOT_FOUND: 404,
  SHELL_LIMIT: 429,
  WORKSPACE_NOT_FOUND: 400,
  PROFILE_NOT_FOUND: 400,
  PROFILE_NOT_ALLOWED: 403,
  PROFILE_INVALID: 400,
  CONFIG_INVALID: 500,
  ENGINE_UNAVAILABLE: 503,
  NETWORK_UNAVAILABLE: 503,
  IMAGE_BUILD_FAILED: 500,
  AGENT_LOST: 500,
  NODE_LOST: 500,
  SNAPSHOT_FAILED: 500,
  ARCHIVE_LIMIT: 400,
  OUTPUT_LIMIT: 413,
  SNAPSHOT_TOO_LARGE: 413,
  DISK_LIMIT: 413,
  DISK_LOW: 503,
  DISK_FULL: 503,
  INTERNAL: 500,
};

export interface Issue {
  /** JSON pointer (or config name) of the bad value; '' for the whole input. */
  path: string;
  message: string;
}

export class HubError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    /** For the audit log only, never sent: e.g. that a 404 hid someone else's object. */
    readonly audit?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'HubError';
  }

  get status(): number {
    return STATUS[this.code];
  }

  toJSON() {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

export function validationError(what: string, issues: Issue[]): HubError {
  const list = issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
  return new HubError('VALIDATION_FAILED', `${what} is invalid: ${list}`, { issues });
}

/**
 * A store write that failed because the disk is full (or failing), as the
 * HubError a caller gets: SQLite says SQLITE_FULL or SQLITE_IOERR_*, and the
 * hub goes on serving what needs no writes. Undefined for any other failure.
 */
export function diskFailure(err: unknown): HubError | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !/^SQLITE_(FULL|IOERR)/.test(code)) return undefined;
  return new HubError(
    'DISK_FULL',
    `the hub's disk is full or failing (${code}: ${(err as Error).message}); nothing new is stored until the operator frees space in the hub's data folder (DOCKER_AGENT_DATA_DIR)`,
  );
}
