// Owners on a real hub: two API tokens and two repositories (OIDC, GitHub's token
// service played by the local stand-in) cannot see, list, stream, cancel, download
// or prune each other's jobs, snapshots or workspaces; admin sees all. Tokens end
// when revoked (their open streams too) or when they expire; OIDC entries bind the
// sub and the repository's id; per-principal limits; the audit log.
import { SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubClient, type JobView } from '../../client/index.js';
import { startFakeGitHub, type FakeGitHub } from '../helpers/fake-github.js';
import { collect, finalState, refusal, startTestHub, type TestHub } from '../helpers/hub.js';

let gh: FakeGitHub;
let t: TestHub;
const lines: string[] = [];
/** Added to the hub's clock: tokens expire by it, so a test moves time instead of waiting. */
let clockOffsetMs = 0;

let alice: HubClient;
let bob: HubClient;
let bobId: string;
let app: HubClient; // octo-org/app, id 101
let web: HubClient; // octo-org/web, id 102

async function oidcToken(claims: Record<string, unknown>): Promise<string> {
  gh.model.oidcClaims = claims;
  // The audience a hub expects by default: its own URL.
  const res = await fetch(`${gh.oidcEnv.ACTIONS_ID_TOKEN_REQUEST_URL}&audience=${encodeURIComponent(t.hub.url)}`, {
    headers: { authorization: `Bearer ${gh.oidcEnv.ACTIONS_ID_TOKEN_REQUEST_TOKEN}` },
  });
  return ((await res.json()) as { value: string }).value;
}

const repo = (name: string, id: number, rest = 'ref:refs/heads/main') =>
  oidcToken({ repository: name, repository_id: String(id), sub: `repo:${name}:${rest}`, ref: 'refs/heads/main' });

async function tokenClient(name: string, scopes: ('jobs' | 'privileged' | 'admin')[], expiresInDays?: number) {
  const created = await t.client.createToken({ name, scopes, ...(expiresInDays ? { expiresInDays } : {}) });
  return { id: created.id, client: new HubClient({ url: t.hub.url, token: created.token }), token: created.token };
}

function audits(): Record<string, unknown>[] {
  return lines.flatMap((l) => (l.startsWith('{"audit"') ? [JSON.parse(l).audit] : []));
}

/** Opens a job's event stream with a raw WebSocket; resolves with how it closed. */
function openStream(job: JobView, token: string): Promise<{ opened: Promise<void>; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(job.links.events, { headers: { authorization: `Bearer ${token}` } });
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_q, r) => reject(new Error(`stream refused: ${r.statusCode}`)));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return Promise.resolve({ opened, closed });
}

async function tarOf(files: Record<string, string>): Promise<Readable> {
  const pack = tar.pack();
  for (const [name, body] of Object.entries(files)) pack.entry({ name }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Readable.from([Buffer.concat(chunks)]);
}

beforeAll(async () => {
  gh = await startFakeGitHub();
  t = await startTestHub(
    {
      DOCKER_AGENT_ALLOW_PRIVILEGED: 'true',
      DOCKER_AGENT_OIDC_REPOSITORIES: 'octo-org/app,octo-org/web,octo-org/site:ref:refs/heads/main,octo-org/deploy:environment:prod+privileged',
      DOCKER_AGENT_OIDC_JWKS_URL: `${gh.url}/.well-known/jwks`,
      DOCKER_AGENT_OIDC_ISSUER: gh.url,
    },
    { log: (l) => lines.push(l), now: () => new Date(Date.now() + clockOffsetMs) },
  );
  alice = (await tokenClient('alice', ['jobs'])).client;
  const b = await tokenClient('bob', ['jobs']);
  bob = b.client;
  bobId = b.id;
  const appToken = await repo('octo-org/app', 101);
  const webToken = await repo('octo-org/web', 102);
  app = new HubClient({ url: t.hub.url, token: appToken });
  web = new HubClient({ url: t.hub.url, token: webToken });
});
afterAll(async () => {
  await t?.close();
  await gh?.close();
});

describe('owners', () => {
  it("two tokens and two repositories each see, list, stream, cancel and download only their own; anyone else's is a 404 like a missing id", async () => {
    const pairs: [HubClient, HubClient, string][] = [
      [alice, bob, 'tokens'],
      [app, web, 'repositories'],
    ];
    for (const [owner, other, what] of pairs) {
      const done = await owner.createJob({ run: 'echo mine > /tmp/mine', snapshot: true });
      expect(finalState(await collect(owner, done.id)), what).toBe('succeeded');
      const running = await owner.createJob({ run: 'sleep 60' });

      // What a missing id gets, for comparison: the same status, code and message shape.
      const missingId = randomUUID();
      const missing = await refusal(other.getJob(missingId));
      const foreign = await refusal(other.getJob(done.id));
      expect([foreign.status, foreign.code, foreign.message]).toEqual([missing.status, missing.code, missing.message.replace(missingId, done.id)]);
      expect(foreign).toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
      expect(foreign.details).toEqual({});

      expect((await other.listJobs()).jobs.map((j) => j.id)).not.toContain(done.id);
      expect((await owner.listJobs()).jobs.map((j) => j.id)).toEqual([running.id, done.id]);

      await expect(collect(other, done.id), what).rejects.toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
      expect(finalState(await collect(owner, done.id))).toBe('succeeded');

      await expect(other.downloadSnapshot(done.id)).rejects.toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
      const archive = await owner.downloadSnapshot(done.id);
      for await (const chunk of archive) {
        expect((chunk as Buffer).length).toBeGreaterThan(0);
        break;
      }
      archive.destroy();

      await expect(other.cancelJob(running.id)).rejects.toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
      expect((await owner.getJob(running.id)).state).not.toBe('cancelled');
      expect((await owner.cancelJob(running.id)).id).toBe(running.id);
      expect(finalState(await collect(owner, running.id))).toBe('cancelled');
    }
  });

  it('a job may start only from a workspace its own principal uploaded', async () => {
    const up = await alice.uploadWorkspace(await tarOf({ 'secret.txt': `alice ${randomUUID()}\n` }), 'application/x-tar');
    const missing = await refusal(bob.createJob({ run: 'true', workspace: 'f'.repeat(64) }));
    const foreign = await refusal(bob.createJob({ run: 'cat /workspace/secret.txt', workspace: up.id }));
    expect(foreign).toMatchObject({ status: missing.status, code: 'WORKSPACE_NOT_FOUND' });
    expect(foreign.message).toBe(missing.message.replace('f'.repeat(64), up.id));
    await expect(web.createJob({ run: 'true', workspace: up.id })).rejects.toMatchObject({ code: 'WORKSPACE_NOT_FOUND' });
    const mine = await alice.createJob({ run: 'cat /workspace/secret.txt', workspace: up.id });
    expect(finalState(await collect(alice, mine.id))).toBe('succeeded');
  });

  it("admin sees and manages everyone's jobs, and names their owners", async () => {
    const a = await alice.createJob({ run: 'true' });
    const w = await web.createJob({ run: 'true' });
    const listed = (await t.client.listJobs({ limit: 200 })).jobs;
    expect(listed.map((j) => j.id)).toEqual(expect.arrayContaining([a.id, w.id]));
    expect((await t.client.getJob(w.id)).owner).toBe('github:102');
    expect((await t.client.getJob(a.id)).owner).toMatch(/^token:/);
    expect(finalState(await collect(t.client, a.id))).toBe('succeeded');
    expect(finalState(await collect(t.client, w.id))).toBe('succeeded');
  });

  it('pruning is admin-only: a 403 naming the scope', async () => {
    for (const c of [alice, web]) {
      const err = await refusal(c.prune({ dryRun: true }));
      expect(err).toMatchObject({ status: 403, code: 'SCOPE_REQUIRED', details: { scope: 'admin' } });
      expect(err.message).toMatch(/pruning needs the "admin" scope/);
    }
    expect((await t.client.prune({ dryRun: true })).dryRun).toBe(true);
  });

  it('tokens are made, listed and revoked by admin only', async () => {
    await expect(alice.createToken({ name: 'mine', scopes: ['admin'] })).rejects.toMatchObject({ status: 403, code: 'SCOPE_REQUIRED' });
    await expect(alice.listTokens()).rejects.toMatchObject({ status: 403 });
    await expect(app.revokeToken(bobId)).rejects.toMatchObject({ status: 403 });
    const bad = await refusal(t.client.createToken({ name: '', scopes: ['root' as never] }));
    expect(bad).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    expect([...new Set((bad.details.issues as { path: string }[]).map((i) => i.path))].sort()).toEqual(['/name', '/scopes/0']);
    const listed = (await t.client.listTokens()).tokens;
    expect(listed.find((x) => x.id === bobId)).toMatchObject({ name: 'bob', scopes: ['jobs'], source: 'api', revokedAt: null });
    expect(JSON.stringify(listed)).not.toMatch(/dat_/);
    await expect(t.client.revokeToken(randomUUID())).rejects.toMatchObject({ status: 404, code: 'TOKEN_NOT_FOUND' });
  });
});

describe('token ends', () => {
  it('revoke takes effect at once: requests get 401 "token revoked" and open event streams are closed', async () => {
    const carol = await tokenClient('carol', ['jobs']);
    const job = await carol.client.createJob({ run: 'sleep 60' });
    const stream = await openStream(job, carol.token);
    await stream.opened;
    const revoked = await t.client.revokeToken(carol.id);
    expect(revoked.revokedAt).not.toBeNull();
    expect(await stream.closed).toEqual({ code: 4401, reason: 'token revoked' });
    const err = await refusal(carol.client.listJobs());
    expect(err).toMatchObject({ status: 401, code: 'UNAUTHORIZED', details: { reason: 'revoked' } });
    expect(err.message).toMatch(/^token revoked on .* \(revoked by DOCKER_AGENT_TOKEN\)/);
    await t.client.cancelJob(job.id);
  });

  it('an expired token gets 401 "token expired on …", and its open stream is closed', async () => {
    const dave = await tokenClient('dave', ['jobs'], 1);
    const job = await dave.client.createJob({ run: 'sleep 60' });
    const stream = await openStream(job, dave.token);
    await stream.opened;
    clockOffsetMs = 2 * 86_400_000;
    try {
      const closed = await stream.closed;
      expect(closed.code).toBe(4401);
      expect(closed.reason).toMatch(/^token expired on 20\d\d-/);
      const err = await refusal(dave.client.getJob(job.id));
      expect(err).toMatchObject({ status: 401, details: { reason: 'expired' } });
      expect(err.message).toMatch(/^token expired on 20\d\d-\d\d-\d\dT/);
    } finally {
      clockOffsetMs = 0;
    }
    expect((await dave.client.getJob(job.id)).id).toBe(job.id);
    await t.client.cancelJob(job.id);
  });
});

describe('OIDC token ends', () => {
  it("closes a stream opened with an OIDC token when the token's exp passes (the client reconnects with a fresh one)", async () => {
    const token = await repo('octo-org/app', 101);
    const job = await new HubClient({ url: t.hub.url, token }).createJob({ run: 'sleep 60' });
    const stream = await openStream(job, token);
    await stream.opened;
    // Past the fake service's 300 s lifetime.
    clockOffsetMs = 600_000;
    try {
      const closed = await stream.closed;
      expect(closed.code).toBe(4401);
      expect(closed.reason).toMatch(/^token expired on 20\d\d-/);
    } finally {
      clockOffsetMs = 0;
    }
    await t.client.cancelJob(job.id);
  });
});

describe('OIDC bound to what cannot be renamed', () => {
  it('admits a sub the entry allows and refuses one it does not, saying why', async () => {
    const main = new HubClient({ url: t.hub.url, token: await repo('octo-org/site', 201, 'ref:refs/heads/main') });
    expect((await main.listJobs()).jobs).toEqual([]);
    const pr = new HubClient({ url: t.hub.url, token: await repo('octo-org/site', 201, 'pull_request') });
    const err = await refusal(pr.listJobs());
    expect(err.status).toBe(401);
    expect(err.message).toMatch(
      /repository "octo-org\/site" is allowed only for some subjects, and this token's sub "repo:octo-org\/site:pull_request" is not one of them/,
    );
  });

  it('grants privileged only through an entry that says so', async () => {
    const usable = async (c: HubClient) =>
      (await (await c.raw('GET', '/v1/profiles')).json()).profiles.find((p: { name: string }) => p.name === 'docker-host').usable;
    const prod = new HubClient({ url: t.hub.url, token: await repo('octo-org/deploy', 301, 'environment:prod') });
    expect(await usable(prod)).toBe(true);
    expect(await usable(app)).toBe(false);
    const err = await refusal(app.createJob({ profile: 'docker-host', run: 'true' }));
    expect(err).toMatchObject({ status: 403, code: 'SCOPE_REQUIRED', details: { scope: 'privileged' } });
  });

  it('refuses a token whose repository name matches but whose id differs from the one first seen', async () => {
    const renamed = new HubClient({ url: t.hub.url, token: await repo('octo-org/app', 999) });
    const err = await refusal(renamed.listJobs());
    expect(err.status).toBe(401);
    expect(err.message).toMatch(/repository octo-org\/app has id 999, but this hub first saw that name with id 101; it was renamed or recreated/);
    // The repository it was stays admitted.
    expect((await app.listJobs()).jobs.length).toBeGreaterThan(0);
  });

  it('refuses an HS256 token and one without repository_id', async () => {
    const hs = await new SignJWT({ repository: 'octo-org/app', repository_id: '101', sub: 'repo:octo-org/app:ref:refs/heads/main' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(gh.url)
      .setAudience(t.hub.url)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('a shared secret anyone could guess'));
    const err = await refusal(new HubClient({ url: t.hub.url, token: hs }).listJobs());
    expect(err.status).toBe(401);
    expect(err.message).toMatch(/OIDC token refused: .*"alg"/);
    const noId = await oidcToken({ repository: 'octo-org/web', sub: 'repo:octo-org/web:ref:refs/heads/main' });
    const err2 = await refusal(new HubClient({ url: t.hub.url, token: noId }).listJobs());
    expect(err2.message).toMatch(/no repository_id claim/);
  });
});

describe('audit', () => {
  it('logs one line per mutating or refused request: time, principal, route, object, outcome', async () => {
    const job = await alice.createJob({ run: 'true' });
    await collect(alice, job.id);
    await bob.getJob(job.id).catch(() => {});
    await bob.cancelJob(job.id).catch(() => {});
    await new HubClient({ url: t.hub.url, token: 'not-a-token-0123456789' }).listJobs().catch(() => {});
    await collect(bob, job.id).catch(() => {});
    const mine = audits();
    const about = (pred: (a: Record<string, unknown>) => boolean) => mine.filter(pred);
    expect(about((a) => a.method === 'POST' && a.route === '/v1/jobs' && a.status === 201 && a.name === 'alice')).not.toEqual([]);
    expect(about((a) => a.route === '/v1/jobs/:id' && a.object === job.id && a.status === 404)).toEqual([
      expect.objectContaining({
        principal: `token:${bobId}`,
        name: 'bob',
        method: 'GET',
        outcome: 'JOB_NOT_FOUND',
        foreign: true,
        time: expect.stringMatching(/^20/),
      }),
    ]);
    expect(about((a) => a.route === '/v1/jobs/:id/cancel' && a.object === job.id)).toEqual([
      expect.objectContaining({ principal: `token:${bobId}`, status: 404, foreign: true }),
    ]);
    expect(about((a) => a.route === '/v1/jobs/:id/events' && a.object === job.id)).toEqual([
      expect.objectContaining({ principal: `token:${bobId}`, status: 404, foreign: true }),
    ]);
    expect(about((a) => a.status === 401 && a.principal === null && a.outcome === 'UNAUTHORIZED')).not.toEqual([]);
    expect(about((a) => a.status === 403 && a.route === '/v1/maintenance/prune')).not.toEqual([]);
    expect(about((a) => a.method === 'DELETE' && a.route === '/v1/tokens/:id' && a.outcome === 'ok')).not.toEqual([]);
    // Plain reads that were allowed are not logged.
    expect(about((a) => a.method === 'GET' && a.status === 200)).toEqual([]);
  });
});

describe('per-principal limits', () => {
  it('a principal over its queue limit gets 429 naming the limit, and over its running share waits while another still runs', async () => {
    const limited = await startTestHub({
      DOCKER_AGENT_MAX_JOBS: '2',
      DOCKER_AGENT_MAX_RUNNING_PER_PRINCIPAL: '1',
      DOCKER_AGENT_MAX_QUEUED_PER_PRINCIPAL: '1',
    });
    try {
      const mk = async (name: string) => new HubClient({ url: limited.hub.url, token: (await limited.client.createToken({ name, scopes: ['jobs'] })).token });
      const erin = await mk('erin');
      const frank = await mk('frank');
      const first = await erin.createJob({ run: 'sleep 60' });
      // Wait (on the event stream, not a sleep) until it holds erin's one running slot.
      for await (const e of erin.events(first.id)) if (e.type === 'status' && e.state === 'running') break;
      const second = await erin.createJob({ run: 'echo second' });
      const err = await refusal(erin.createJob({ run: 'echo third' }));
      expect(err).toMatchObject({ status: 429, code: 'LIMIT_REACHED', details: { limit: 'DOCKER_AGENT_MAX_QUEUED_PER_PRINCIPAL', max: 1 } });
      expect(err.message).toMatch(/token "erin" already has 1 queued jobs, the most this hub allows per principal \(DOCKER_AGENT_MAX_QUEUED_PER_PRINCIPAL=1\)/);
      // The hub's second slot is not erin's to take: frank's job runs at once while erin's second waits.
      const other = await frank.createJob({ run: 'echo frank' });
      expect(finalState(await collect(frank, other.id))).toBe('succeeded');
      expect((await erin.getJob(second.id)).state).toBe('queued');
      await erin.cancelJob(first.id);
      expect(finalState(await collect(erin, second.id))).toBe('succeeded');
    } finally {
      await limited.close();
    }
  });
});
