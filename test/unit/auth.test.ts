// Who may do what, without a hub: OIDC allow-list entries, scopes, token ends,
// DOCKER_AGENT_TOKEN rotation in the store, and the migration of an old hub.db.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Authenticator, tokenPrincipal } from '../../hub/auth/authenticator.js';
import { OidcRepositories } from '../../hub/store/oidc-repositories.js';
import { migrateOidcOwners } from '../../hub/store/oidc-owner-migration.js';
import { auditEntry, worthAuditing } from '../../hub/auth/audit.js';
import { loadConfig } from '../../hub/platform/config.js';
import { HubError } from '../../hub/platform/errors.js';
import { admittingEntries, entryAdmits, oidcOwnerId, owningEntries, parseOidcEntry, type OidcEntry } from '../../hub/platform/oidc-entries.js';
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

  it('own by the most specific admitting subject, whatever the order they are written in', () => {
    const texts = ['my-org/app', 'my-org/*:ref:refs/heads/*', 'my-org/app:ref:refs/heads/main', 'my-org/*:ref:refs/heads/main+privileged'];
    const owner = (list: string[], sub: string) => {
      const owning = owningEntries(admittingEntries(list.map(entry), 'my-org/app', `repo:my-org/app:${sub}`));
      return { id: oidcOwnerId('7', owning[0]?.subject), privileged: owning.some((e) => e.privileged) };
    };
    for (const list of [texts, [...texts].reverse(), [texts[2]!, texts[0]!, texts[3]!, texts[1]!]]) {
      // OWNER/NAME:S and OWNER/*:S are one owner; its +privileged counts.
      expect(owner(list, 'ref:refs/heads/main')).toEqual({ id: 'github:7:ref:refs/heads/main', privileged: true });
      expect(owner(list, 'ref:refs/heads/dev')).toEqual({ id: 'github:7:ref:refs/heads/*', privileged: false });
      // An entry without a subject keeps every other run of the repository one owner, as before.
      expect(owner(list, 'pull_request')).toEqual({ id: 'github:7', privileged: false });
    }
    // Equally specific subjects: code-point order decides, not the order written.
    const tie = ['o/r:environment:a*', 'o/r:environment:*b'];
    for (const list of [tie, [...tie].reverse()]) {
      expect(owningEntries(admittingEntries(list.map(entry), 'o/r', 'repo:o/r:environment:ab'))[0]!.subject).toBe('environment:*b');
    }
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

describe('OIDC principals, with tokens signed by a local key', () => {
  let server: Server;
  let jwksUrl = '';
  let key: CryptoKey;
  let db: ReturnType<typeof openDb>;
  const ISSUER = 'https://issuer.test';
  const HUB = 'http://hub.test:9091';
  beforeEach(async () => {
    const pair = await generateKeyPair('RS256');
    key = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
    db = openDb(':memory:');
  });
  afterEach(async () => {
    db.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const authOf = (entries: string[], audience = () => HUB) =>
    new Authenticator(new TokenStore(db), { jwksUrl, issuer: ISSUER, audience, entries: entries.map(entry) }, new OidcRepositories(db));
  const sign = (claims: Record<string, unknown>, opts: { aud?: string; exp?: boolean } = {}) => {
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(opts.aud ?? HUB)
      .setIssuedAt();
    return (opts.exp === false ? jwt : jwt.setExpirationTime('5m')).sign(key);
  };
  const run = (repository: string, id: string, rest: string, more: Record<string, unknown> = {}) =>
    sign({ repository, repository_id: id, repository_owner_id: '900', sub: `repo:${repository}:${rest}`, ...more });
  const refusedWith = async (p: Promise<unknown>) =>
    (
      (await p.then(
        () => undefined,
        (e: unknown) => e,
      )) as HubError
    ).message;

  it("a pull request's token and a prod token of one repository are two principals; an entry without a subject is one for every run", async () => {
    const auth = authOf(['acme/app:pull_request', 'acme/app:environment:prod+privileged', 'acme/tools']);
    const pr = await auth.check(`Bearer ${await run('acme/app', '11', 'pull_request')}`);
    const prod = await auth.check(`Bearer ${await run('acme/app', '11', 'environment:prod')}`);
    expect(pr).toMatchObject({ id: 'github:11:pull_request', label: 'acme/app:pull_request', kind: 'oidc', subject: 'pull_request' });
    expect([...pr.scopes]).toEqual(['jobs']);
    expect(prod).toMatchObject({ id: 'github:11:environment:prod', label: 'acme/app:environment:prod' });
    expect([...prod.scopes]).toEqual(['jobs', 'privileged']);
    expect(canSee(pr, prod.id)).toBe(false);
    expect(canSee(prod, pr.id)).toBe(false);
    const main = await auth.check(`Bearer ${await run('acme/tools', '12', 'ref:refs/heads/main')}`);
    const other = await auth.check(`Bearer ${await run('acme/tools', '12', 'pull_request')}`);
    expect([main.id, other.id]).toEqual(['github:12', 'github:12']);
    // What is queued is judged again at its start, by the entries as they are then.
    expect(auth.mayRunPrivileged(prod.id)).toBe(true);
    expect(auth.mayRunPrivileged(pr.id)).toBe(false);
    expect(authOf(['acme/app:pull_request', 'acme/app:environment:prod']).mayRunPrivileged(prod.id)).toBe(false);
  });

  it('requires exp, and an audience of this hub (its URL unless DOCKER_AGENT_OIDC_AUDIENCE says otherwise)', async () => {
    const auth = authOf(['acme/app']);
    const claims = { repository: 'acme/app', repository_id: '11', sub: 'repo:acme/app:ref:refs/heads/main' };
    expect(await refusedWith(auth.check(`Bearer ${await sign(claims, { exp: false })}`))).toMatch(/OIDC token refused: .*"exp" claim/);
    expect(await refusedWith(auth.check(`Bearer ${await sign(claims, { aud: 'docker-agent' })}`))).toMatch(/OIDC token refused: unexpected "aud" claim value/);
    expect((await auth.check(`Bearer ${await sign(claims)}`)).id).toBe('github:11');
    const named = authOf(['acme/app'], () => 'my-audience');
    expect((await named.check(`Bearer ${await sign(claims, { aud: 'my-audience' })}`)).id).toBe('github:11');
    // The hub's default, as the settings give it.
    expect(loadConfig([], {}).oidcAudience).toBeUndefined();
    expect(loadConfig([], { DOCKER_AGENT_OIDC_AUDIENCE: 'x' }).oidcAudience).toBe('x');
  });

  it("pins the owner's id for OWNER/* entries: a name that changed hands is refused, saying how to forget it", async () => {
    const auth = authOf(['acme/*']);
    expect((await auth.check(`Bearer ${await run('acme/one', '21', 'pull_request')}`)).id).toBe('github:21');
    // A new repository under the same owner name, but another account.
    const err = await refusedWith(auth.check(`Bearer ${await run('acme/two', '22', 'pull_request', { repository_owner_id: '901' })}`));
    expect(err).toMatch(/its owner acme has id 901, but this hub first saw that name with id 900; the name changed hands/);
    expect(err).toContain('docker-agent-hub oidc forget acme/*');
    expect(await refusedWith(auth.check(`Bearer ${await run('acme/two', '22', 'x', { repository_owner_id: undefined })}`))).toMatch(
      /no repository_owner_id claim/,
    );
    // An entry that names the repository is bound by the repository's own id instead.
    const both = authOf(['acme/*', 'acme/three']);
    expect((await both.check(`Bearer ${await run('acme/three', '23', 'x', { repository_owner_id: '901' })}`)).id).toBe('github:23');
    expect(new OidcRepositories(db).forget('acme/*')).toBe(true);
    expect((await auth.check(`Bearer ${await run('acme/two', '22', 'pull_request', { repository_owner_id: '901' })}`)).id).toBe('github:22');
  });
});

describe('OIDC rows from before owners named the entry', () => {
  /** A hub.db at user_version 5 (before entries owned rows), with a repository's rows of github:<id>. */
  function oldDb(file: string, repositoryId: string, name: string): void {
    const db = openDb(file);
    db.pragma('user_version = 5');
    db.prepare(`INSERT INTO jobs (id, owner, state, profile, spec, steps, created_at) VALUES (?, ?, 'succeeded', 'default', '{}', '[]', '2029-01-01')`).run(
      `job-${repositoryId}`,
      `github:${repositoryId}`,
    );
    db.prepare(`INSERT INTO snapshots (id, owner, source, image, bytes, created_at) VALUES (?, ?, 'job', 'img', 1, '2029-01-01')`).run(
      `snap-${repositoryId}`,
      `github:${repositoryId}`,
    );
    db.prepare(`INSERT INTO workspace_owners (workspace_id, owner, created_at) VALUES (?, ?, '2029-01-01')`).run(
      `ws-${repositoryId}`,
      `github:${repositoryId}`,
    );
    db.prepare(`INSERT INTO oidc_repositories VALUES (?, ?, '2029-01-01')`).run(name, repositoryId);
    db.prepare(`DELETE FROM meta WHERE key = 'oidc_owners_by_entry'`).run();
    // Without what later migrations added, as a hub.db of that version was.
    db.exec(
      'DROP INDEX jobs_owner_bytes; ALTER TABLE jobs DROP COLUMN stored_bytes; ALTER TABLE workspace_owners DROP COLUMN bytes; ALTER TABLE jobs DROP COLUMN node; ALTER TABLE agents DROP COLUMN node;',
    );
    db.close();
  }
  const owners = (db: ReturnType<typeof openDb>, id: string) => [
    (db.prepare('SELECT owner FROM jobs WHERE id = ?').get(`job-${id}`) as { owner: string }).owner,
    (db.prepare('SELECT owner FROM snapshots WHERE id = ?').get(`snap-${id}`) as { owner: string }).owner,
    (db.prepare('SELECT owner FROM workspace_owners WHERE workspace_id = ?').all(`ws-${id}`) as { owner: string }[]).map((r) => r.owner).join(','),
  ];

  it("go to the repository's entry without a subject, else to its most trusted entry, once; a pull request's entry gets none of them", () => {
    const dir = mkdtempSync(join(tmpdir(), 'da-unit-'));
    try {
      const file = join(dir, 'hub.db');
      oldDb(file, '31', 'acme/app');
      const db = openDb(file);
      new JobStore(db);
      for (const [id, name] of [
        ['32', 'acme/tools'],
        ['33', 'other/gone'],
      ] as const) {
        db.prepare(`INSERT INTO jobs (id, owner, state, profile, spec, steps, created_at) VALUES (?, ?, 'succeeded', 'default', '{}', '[]', '2029-01-01')`).run(
          `job-${id}`,
          `github:${id}`,
        );
        db.prepare(`INSERT INTO snapshots (id, owner, source, image, bytes, created_at) VALUES (?, ?, 'job', 'img', 1, '2029-01-01')`).run(
          `snap-${id}`,
          `github:${id}`,
        );
        db.prepare(`INSERT INTO workspace_owners (workspace_id, owner, created_at) VALUES (?, ?, '2029-01-01')`).run(`ws-${id}`, `github:${id}`);
        db.prepare(`INSERT INTO oidc_repositories VALUES (?, ?, '2029-01-01')`).run(name, id);
      }
      const entries = [
        'acme/app:pull_request',
        'acme/*:environment:prod+privileged',
        'acme/app:ref:refs/heads/main',
        'acme/tools',
        'acme/tools:pull_request',
      ].map(entry);
      expect(migrateOidcOwners(db, entries)).toEqual([{ from: 'github:31', to: 'github:31:environment:prod' }]);
      expect(owners(db, '31')).toEqual(['github:31:environment:prod', 'github:31:environment:prod', 'github:31:environment:prod']);
      // acme/tools has an entry without a subject, whose owner id is still github:32; other/gone is named by no entry (admin only).
      expect(owners(db, '32')).toEqual(['github:32', 'github:32', 'github:32']);
      expect(owners(db, '33')).toEqual(['github:33', 'github:33', 'github:33']);
      // Once: rows made later as github:<id> (an entry without a subject added since) stay where they are.
      db.prepare(`UPDATE jobs SET owner = 'github:31' WHERE id = 'job-31'`).run();
      expect(migrateOidcOwners(db, entries)).toEqual([]);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('wait for a start with OIDC entries, and are reached by the principal of that entry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'da-unit-'));
    try {
      const file = join(dir, 'hub.db');
      oldDb(file, '41', 'acme/site');
      let db = openDb(file);
      expect(migrateOidcOwners(db, [])).toEqual([]);
      db.close();
      db = openDb(file);
      expect(migrateOidcOwners(db, ['acme/site:ref:refs/heads/main', 'acme/site:pull_request'].map(entry))).toEqual([
        // Equally trusted: the more specific subject.
        { from: 'github:41', to: 'github:41:ref:refs/heads/main' },
      ]);
      expect(new JobStore(db).get('job-41')!.owner).toBe('github:41:ref:refs/heads/main');
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
