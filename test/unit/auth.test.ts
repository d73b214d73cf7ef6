// Who may do what, without a hub: OIDC allow-list entries, scopes, token ends,
// DOCKER_AGENT_TOKEN rotation in the store, and the migration of an old hub.db.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tokenPrincipal } from '../../hub/auth/authenticator.js';
import { auditEntry, worthAuditing } from '../../hub/auth/audit.js';
import { loadConfig } from '../../hub/platform/config.js';
import { HubError } from '../../hub/platform/errors.js';
import { admittingEntries, entryAdmits, parseOidcEntry, type OidcEntry } from '../../hub/platform/oidc-entries.js';
import { canSee, hasScope, requireScope, type Principal } from '../../hub/platform/principal.js';
import { openDb } from '../../hub/store/db.js';
import { JobStore } from '../../hub/store/jobs.js';
import { hashToken, TokenStore } from '../../hub/store/tokens.js';
import { createToken, revokeToken } from '../../hub/auth/tokens.js';
import { validateTokenRequest } from '../../hub/platform/validation.js';

const entry = (text: string) => parseOidcEntry(text) as OidcEntry;

describe('OIDC allow-list entries', () => {
  it('parse OWNER/NAME, OWNER/*, a subject and +privileged', () => {
    expect(entry('my-org/app')).toMatchObject({ owner: 'my-org', name: 'app', privileged: false });
    expect(entry('my-org/app').subject).toBeUndefined();
    expect(entry('my-org/app:ref:refs/heads/main')).toMatchObject({ name: 'app', subject: 'ref:refs/heads/main', privileged: false });
    expect(entry('my-org/*:environment:prod+privileged')).toMatchObject({ name: '*', subject: 'environment:prod', privileged: true });
    expect(entry('my-org/infra+privileged')).toMatchObject({ name: 'infra', privileged: true });
    expect(parseOidcEntry('app')).toMatch(/expected OWNER\/NAME or OWNER\/\*/);
    expect(parseOidcEntry('my-org/app:')).toMatch(/expected/);
  });

  it('match the repository case-insensitively and the sub exactly, with * for any run of characters', () => {
    const sub = (repo: string, rest: string) => `repo:${repo}:${rest}`;
    expect(entryAdmits(entry('My-Org/App'), 'my-org/app', sub('my-org/app', 'pull_request'))).toBe(true);
    expect(entryAdmits(entry('my-org/*'), 'my-org/anything', '')).toBe(true);
    expect(entryAdmits(entry('my-org/*'), 'other/anything', '')).toBe(false);
    expect(entryAdmits(entry('my-org/*'), 'my-org-evil/x', '')).toBe(false);
    const main = entry('my-org/app:ref:refs/heads/main');
    expect(entryAdmits(main, 'my-org/app', sub('my-org/app', 'ref:refs/heads/main'))).toBe(true);
    expect(entryAdmits(main, 'my-org/app', sub('my-org/app', 'ref:refs/heads/main2'))).toBe(false);
    expect(entryAdmits(main, 'my-org/app', sub('my-org/app', 'pull_request'))).toBe(false);
    // The sub must be of the same repository, not one that only shares a prefix.
    expect(entryAdmits(main, 'my-org/app', sub('my-org/app2', 'ref:refs/heads/main'))).toBe(false);
    const prod = entry('my-org/*:environment:prod');
    expect(entryAdmits(prod, 'my-org/web', sub('my-org/web', 'environment:prod'))).toBe(true);
    expect(entryAdmits(prod, 'my-org/web', sub('my-org/web', 'environment:prod-2'))).toBe(false);
    const tags = entry('my-org/app:ref:refs/tags/v*');
    expect(entryAdmits(tags, 'my-org/app', sub('my-org/app', 'ref:refs/tags/v1.2.3'))).toBe(true);
    expect(entryAdmits(tags, 'my-org/app', sub('my-org/app', 'ref:refs/heads/v1'))).toBe(false);
    // Regex characters in a subject are literal.
    expect(entryAdmits(entry('my-org/app:ref:refs/heads/a.b'), 'my-org/app', sub('my-org/app', 'ref:refs/heads/aXb'))).toBe(false);
  });

  it('grant privileged only through an entry that admits the token and says so', () => {
    const entries = ['my-org/app', 'my-org/app:environment:prod+privileged'].map(entry);
    expect(admittingEntries(entries, 'my-org/app', 'repo:my-org/app:environment:prod').some((e) => e.privileged)).toBe(true);
    expect(admittingEntries(entries, 'my-org/app', 'repo:my-org/app:ref:refs/heads/main').some((e) => e.privileged)).toBe(false);
  });

  it('are checked by the config, each bad one named', () => {
    expect(loadConfig([], { DOCKER_AGENT_OIDC_REPOSITORIES: 'a/b, c/*:environment:prod+privileged' }).oidcRepositories.map((e) => e.text)).toEqual([
      'a/b',
      'c/*:environment:prod+privileged',
    ]);
    expect(() => loadConfig([], { DOCKER_AGENT_OIDC_REPOSITORIES: 'a/b,nope' })).toThrow(/DOCKER_AGENT_OIDC_REPOSITORIES=.*"nope": expected OWNER\/NAME/);
  });
});

describe('per-principal limits in the config', () => {
  it('default to 50 queued and three quarters of max-jobs running, and can be set', () => {
    expect(loadConfig([], {})).toMatchObject({ maxQueuedPerPrincipal: 50, maxRunningPerPrincipal: 6 });
    expect(loadConfig([], { DOCKER_AGENT_MAX_JOBS: '1' }).maxRunningPerPrincipal).toBe(1);
    expect(loadConfig(['--max-running-per-principal', '3'], { DOCKER_AGENT_MAX_QUEUED_PER_PRINCIPAL: '7' })).toMatchObject({
      maxQueuedPerPrincipal: 7,
      maxRunningPerPrincipal: 3,
    });
    expect(() => loadConfig([], { DOCKER_AGENT_MAX_QUEUED_PER_PRINCIPAL: '0' })).toThrow(/DOCKER_AGENT_MAX_QUEUED_PER_PRINCIPAL/);
  });
});

describe('scopes', () => {
  const p = (scopes: string[], id = 'token:a'): Principal => ({ id, kind: 'token', label: 'ci', scopes: new Set(scopes as never[]) });

  it('admin has every scope and sees everything; others see only their own', () => {
    expect(hasScope(p(['admin']), 'privileged')).toBe(true);
    expect(hasScope(p(['jobs']), 'privileged')).toBe(false);
    expect(canSee(p(['admin']), 'token:b')).toBe(true);
    expect(canSee(p(['admin']), null)).toBe(true);
    expect(canSee(p(['jobs']), 'token:a')).toBe(true);
    expect(canSee(p(['jobs']), 'token:b')).toBe(false);
    // Rows from before owners were recorded are admin-only.
    expect(canSee(p(['jobs']), null)).toBe(false);
  });

  it('a missing scope is a 403 that names it', () => {
    try {
      requireScope(p(['jobs']), 'admin', 'pruning');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(HubError);
      expect((err as HubError).status).toBe(403);
      expect((err as HubError).toJSON()).toEqual({
        error: { code: 'SCOPE_REQUIRED', scope: 'admin', message: 'pruning needs the "admin" scope, which token "ci" lacks (it has: jobs)' },
      });
    }
  });

  it('token requests: name, scopes and expiresInDays within limits, bad paths named', () => {
    expect(validateTokenRequest({ name: 'ci', scopes: ['jobs', 'privileged'], expiresInDays: 0.5 }).ok).toBe(true);
    const bad = validateTokenRequest({ name: 'x'.repeat(65), scopes: ['root'], expiresInDays: 0, extra: 1 });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.issues.map((i) => i.path).sort()).toEqual(['/expiresInDays', '/extra', '/name', '/scopes/0']);
    expect(validateTokenRequest({ name: 'ci', scopes: [] }).ok).toBe(false);
    expect(validateTokenRequest({ name: 'ci', scopes: ['jobs', 'jobs'] }).ok).toBe(false);
  });
});

describe('the audit decision', () => {
  it('logs what changes something and what was refused, not plain reads', () => {
    expect(worthAuditing('POST', 201)).toBe(true);
    expect(worthAuditing('DELETE', 200)).toBe(true);
    expect(worthAuditing('GET', 200)).toBe(false);
    expect(worthAuditing('GET', 401)).toBe(true);
    expect(worthAuditing('GET', 429)).toBe(true);
    expect(worthAuditing('GET', 404, new HubError('JOB_NOT_FOUND', 'no job'))).toBe(false);
    const foreign = new HubError('JOB_NOT_FOUND', 'no job with id j', undefined, { foreign: true });
    expect(worthAuditing('GET', 404, foreign)).toBe(true);
    const principal: Principal = { id: 'token:b', kind: 'token', label: 'b', scopes: new Set(['jobs']) };
    expect(auditEntry({ method: 'GET', route: '/v1/jobs/:id', object: 'j' }, principal, 404, foreign, new Date(0))).toEqual({
      time: '1970-01-01T00:00:00.000Z',
      principal: 'token:b',
      name: 'b',
      method: 'GET',
      route: '/v1/jobs/:id',
      object: 'j',
      status: 404,
      outcome: 'JOB_NOT_FOUND',
      foreign: true,
      message: 'no job with id j',
    });
    // The hidden owner never reaches the client.
    expect(JSON.stringify(foreign.toJSON())).not.toContain('foreign');
  });
});

describe('tokens in the store', () => {
  let dir: string;
  let now: Date;
  let db: ReturnType<typeof openDb>;
  let tokens: TokenStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'da-unit-'));
    db = openDb(join(dir, 'hub.db'));
    now = new Date('2030-01-01T00:00:00Z');
    tokens = new TokenStore(db, () => now);
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('end when they expire, by the clock they are checked with', () => {
    const t = createToken(tokens, { name: 'short', scopes: ['jobs'], expiresInDays: 0.5 }, 'api');
    expect(t.expiresAt).toBe('2030-01-01T12:00:00.000Z');
    expect(t.token).toMatch(/^dat_/);
    expect(tokens.check(t.token).ok).toBe(true);
    now = new Date('2030-01-01T12:00:00Z');
    expect(tokens.check(t.token)).toMatchObject({ ok: false, why: 'expired' });
    expect(tokens.countActive()).toBe(0);
  });

  it('end at once when revoked, and say so; an unknown id is a 404', () => {
    const t = createToken(tokens, { name: 'ci', scopes: ['jobs'] }, 'cli');
    expect(tokenPrincipal(tokens.get(t.id)!)).toMatchObject({ id: `token:${t.id}`, kind: 'token', label: 'ci', tokenId: t.id });
    revokeToken(tokens, t.id, 'revoked on the command line');
    expect(tokens.check(t.token)).toMatchObject({ ok: false, why: 'revoked', token: { revokedWhy: 'revoked on the command line' } });
    expect(() => revokeToken(tokens, 'nope', 'x')).toThrow(expect.objectContaining({ code: 'TOKEN_NOT_FOUND' }));
  });

  it('DOCKER_AGENT_TOKEN works only while it is set: a new value ends the old one', () => {
    tokens.add({ name: 'DOCKER_AGENT_TOKEN', token: 'first-value-0123456789', scopes: ['admin'], source: 'env' });
    expect(tokens.revokeOtherEnvTokens('first-value-0123456789')).toEqual([]);
    expect(tokens.revokeOtherEnvTokens('second-value-0123456789')).toHaveLength(1);
    expect(tokens.check('first-value-0123456789')).toMatchObject({ ok: false, why: 'revoked' });
    tokens.add({ name: 'DOCKER_AGENT_TOKEN', token: 'second-value-0123456789', scopes: ['admin'], source: 'env' });
    expect(tokens.revokeOtherEnvTokens(undefined)).toHaveLength(1);
    expect(tokens.countActive('admin')).toBe(0);
  });
});

describe('an old hub.db', () => {
  it('is migrated: its tokens become admin tokens, the env one is marked, its jobs have no owner', () => {
    const dir = mkdtempSync(join(tmpdir(), 'da-unit-'));
    try {
      const file = join(dir, 'hub.db');
      // The schema as it was before owners (user_version 2).
      const old = new Database(file);
      old.exec(`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL, profile TEXT NOT NULL, spec TEXT NOT NULL, steps TEXT NOT NULL,
          created_at TEXT NOT NULL, started_at TEXT, ended_at TEXT, exit_code INTEGER, reason TEXT, image TEXT, container_id TEXT,
          agent_token_hash TEXT, session_hash TEXT, agent_seq INTEGER NOT NULL DEFAULT 0, last_seq INTEGER NOT NULL DEFAULT 0,
          deadline_at INTEGER, health TEXT, snapshot TEXT);
        CREATE TABLE events (job_id TEXT NOT NULL, seq INTEGER NOT NULL, time TEXT NOT NULL, type TEXT NOT NULL, payload TEXT NOT NULL, data BLOB,
          PRIMARY KEY (job_id, seq)) WITHOUT ROWID;
        CREATE TABLE tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
        PRAGMA user_version = 2;`);
      old
        .prepare(
          `INSERT INTO jobs (id, state, profile, spec, steps, created_at) VALUES ('old', 'succeeded', 'default', '{"steps":[],"env":{},"timeout":1,"keep":false}', '[]', '2029-01-01')`,
        )
        .run();
      old
        .prepare(`INSERT INTO tokens VALUES ('t1', 'DOCKER_AGENT_TOKEN', ?, '2029-01-01'), ('t2', 'first start', ?, '2029-01-01')`)
        .run(hashToken('old-env-token-0123456789'), hashToken('old-first-token-0123456789'));
      old.close();

      const db = openDb(file);
      const tokens = new TokenStore(db);
      expect(tokens.check('old-first-token-0123456789')).toMatchObject({ ok: true, token: { scopes: ['admin'], source: 'first-start' } });
      expect(tokens.check('old-env-token-0123456789')).toMatchObject({ ok: true, token: { source: 'env' } });
      expect(tokens.revokeOtherEnvTokens('a-new-env-token-0123456789')).toEqual(['t1']);
      expect(new JobStore(db).get('old')!.owner).toBeNull();
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
