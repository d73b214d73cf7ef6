// Owners that match what admitted them, on a real hub and the real engine: a pull
// request's OIDC token and a prod token of one repository (GitHub's token service
// played by the local stand-in) are two owners; a shell in a privileged container
// needs the "privileged" scope when it opens, even for the owner; a queued privileged
// job is judged again when its turn comes, after the hub restarted with less.
import { rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubClient, type JobView } from '../../client/index.js';
import { startHub, type RunningHub } from '../../hub/server.js';
import { startFakeGitHub, type FakeGitHub } from '../helpers/fake-github.js';
import {
  collect,
  finalState,
  output,
  refusal,
  removeContainers,
  settledAgent,
  startTestHub,
  tempDataDir,
  testConfig,
  TOKEN,
  type TestHub,
} from '../helpers/hub.js';

let gh: FakeGitHub;
let t: TestHub;
const profilesDir = mkdtempSync(join(tmpdir(), 'da-oidc-profiles-'));
const ENTRIES = 'octo-org/app:pull_request,octo-org/app:environment:prod+privileged,octo-org/tools';

async function oidcToken(hubUrl: string, repository: string, id: number, rest: string): Promise<string> {
  gh.model.oidcClaims = { repository, repository_id: String(id), repository_owner_id: '900', sub: `repo:${repository}:${rest}` };
  const res = await fetch(`${gh.oidcEnv.ACTIONS_ID_TOKEN_REQUEST_URL}&audience=${encodeURIComponent(hubUrl)}`, {
    headers: { authorization: `Bearer ${gh.oidcEnv.ACTIONS_ID_TOKEN_REQUEST_TOKEN}` },
  });
  return ((await res.json()) as { value: string }).value;
}

const repoClient = async (hubUrl: string, repository: string, id: number, rest: string) =>
  new HubClient({ url: hubUrl, token: await oidcToken(hubUrl, repository, id, rest) });

async function tokenClient(hub: { client: HubClient; url: string }, name: string, scopes: ('jobs' | 'privileged')[]) {
  return new HubClient({ url: hub.url, token: (await hub.client.createToken({ name, scopes })).token });
}

/** A job that runs until cancelled, once its container runs. */
async function runningJob(client: HubClient, profile?: string): Promise<JobView> {
  const created = await client.createJob({ run: 'echo ready; sleep 600', ...(profile ? { profile } : {}) });
  for await (const e of client.events(created.id)) if (e.type === 'stdout') break;
  return client.getJob(created.id);
}

/** Opens a shell and exits it: resolves with its exit code, or rejects as the hub refused it. */
async function shellExit(client: HubClient, target: { job: string } | { agent: string }): Promise<number> {
  const shell = await client.shell(target, { cols: 80, rows: 24 }, () => {});
  shell.write('exit 5\n');
  return shell.exited;
}

function profile(name: string, privileged: boolean): void {
  writeFileSync(
    join(profilesDir, `${name}.json`),
    JSON.stringify({ name, description: 'made by a test', timeout: 600, ...(privileged ? { privileged } : {}) }),
  );
}

beforeAll(async () => {
  gh = await startFakeGitHub();
  profile('root-ok', true);
  profile('flip', false);
  t = await startTestHub({
    DOCKER_AGENT_ALLOW_PRIVILEGED: 'true',
    DOCKER_AGENT_PROFILES_DIR: profilesDir,
    DOCKER_AGENT_OIDC_REPOSITORIES: ENTRIES,
    DOCKER_AGENT_OIDC_JWKS_URL: `${gh.url}/.well-known/jwks`,
    DOCKER_AGENT_OIDC_ISSUER: gh.url,
  });
});
afterAll(async () => {
  await t?.close();
  await gh?.close();
  rmSync(profilesDir, { recursive: true, force: true });
});

describe('OIDC owners by entry', () => {
  it("a pull request's token reaches none of what the prod token of the same repository made: jobs, shells, agents, snapshots, uploads", async () => {
    const url = t.hub.url;
    const prod = await repoClient(url, 'octo-org/app', 101, 'environment:prod');
    const pr = await repoClient(url, 'octo-org/app', 101, 'pull_request');

    const privileged = await runningJob(prod, 'root-ok');
    const done = await prod.createJob({ run: 'echo kept > /tmp/kept', snapshot: true });
    expect(finalState(await collect(prod, done.id))).toBe('succeeded');
    await prod.createAgent({ name: 'prod-agent', env: { DEPLOY_KEY: 'prod-secret' } });
    expect(await settledAgent(prod, 'prod-agent')).toBe('running');

    expect((await t.client.getJob(privileged.id)).owner).toBe('github:101:environment:prod');
    await expect(pr.getJob(privileged.id)).rejects.toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
    expect((await pr.listJobs()).jobs).toEqual([]);
    await expect(pr.cancelJob(privileged.id)).rejects.toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
    await expect(collect(pr, privileged.id)).rejects.toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
    await expect(shellExit(pr, { job: privileged.id })).rejects.toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
    await expect(pr.downloadSnapshot(done.id)).rejects.toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
    await expect(pr.getAgent('prod-agent')).rejects.toMatchObject({ status: 404, code: 'AGENT_NOT_FOUND' });
    await expect(pr.createJob({ agent: 'prod-agent', run: 'echo $DEPLOY_KEY' })).rejects.toMatchObject({ status: 404, code: 'AGENT_NOT_FOUND' });
    await expect(shellExit(pr, { agent: 'prod-agent' })).rejects.toMatchObject({ status: 404, code: 'AGENT_NOT_FOUND' });

    // What the pull request makes is its own, and the prod token does not reach it either.
    const mine = await pr.createJob({ run: 'echo from the pull request' });
    expect(output(await collect(pr, mine.id))).toBe('from the pull request\n');
    expect((await t.client.getJob(mine.id)).owner).toBe('github:101:pull_request');
    await expect(prod.getJob(mine.id)).rejects.toMatchObject({ status: 404 });
    // The owner itself still has everything.
    expect(await shellExit(prod, { job: privileged.id })).toBe(5);
    const onAgent = await prod.createJob({ agent: 'prod-agent', run: 'echo $DEPLOY_KEY' });
    expect(output(await collect(prod, onAgent.id))).toBe('prod-secret\n');
    await prod.cancelJob(privileged.id);
  });

  it('an entry without a subject admits every workflow of its repository as one owner', async () => {
    const main = await repoClient(t.hub.url, 'octo-org/tools', 102, 'ref:refs/heads/main');
    const pull = await repoClient(t.hub.url, 'octo-org/tools', 102, 'pull_request');
    const job = await main.createJob({ run: 'true' });
    expect((await pull.getJob(job.id)).owner).toBe('github:102');
    expect(finalState(await collect(pull, job.id))).toBe('succeeded');
  });
});

describe('a shell in a privileged container', () => {
  it('needs the "privileged" scope when it opens, even for the owner of the job or agent', async () => {
    const plain = await tokenClient({ client: t.client, url: t.hub.url }, 'jobs only', ['jobs']);
    const priv = await tokenClient({ client: t.client, url: t.hub.url }, 'jobs and privileged', ['jobs', 'privileged']);
    // Made on a profile that is not privileged, which then becomes privileged under them.
    const plainJob = await runningJob(plain, 'flip');
    const privJob = await runningJob(priv, 'flip');
    await plain.createAgent({ name: 'plain-agent', profile: 'flip' });
    await priv.createAgent({ name: 'priv-agent', profile: 'flip' });
    expect(await settledAgent(plain, 'plain-agent')).toBe('running');
    expect(await settledAgent(priv, 'priv-agent')).toBe('running');
    expect(await shellExit(plain, { job: plainJob.id })).toBe(5);
    profile('flip', true);
    try {
      for (const target of [{ job: plainJob.id }, { agent: 'plain-agent' }]) {
        const err = await refusal(shellExit(plain, target));
        expect(err).toMatchObject({ status: 403, code: 'SCOPE_REQUIRED', details: { scope: 'privileged' } });
        expect(err.message).toMatch(/runs privileged profile flip: a shell in it needs the "privileged" scope, which token "jobs only" lacks/);
      }
      // A job on the agent now runs in a privileged container too.
      const onAgent = await refusal(plain.createJob({ agent: 'plain-agent', run: 'true' }));
      expect(onAgent).toMatchObject({ status: 403, code: 'SCOPE_REQUIRED', details: { scope: 'privileged' } });
      expect(await shellExit(priv, { job: privJob.id })).toBe(5);
      expect(await shellExit(priv, { agent: 'priv-agent' })).toBe(5);
    } finally {
      profile('flip', false);
    }
    await plain.cancelJob(plainJob.id);
    await priv.cancelJob(privJob.id);
  });
});

describe('a queued privileged job', () => {
  it('ends "not started" when its turn comes after the hub restarted without the privilege its owner had', async () => {
    const dataDir = tempDataDir();
    const env = (allowPrivileged: boolean, entries: string) =>
      testConfig(dataDir, {
        DOCKER_AGENT_MAX_JOBS: '1',
        DOCKER_AGENT_PROFILES_DIR: profilesDir,
        DOCKER_AGENT_OIDC_REPOSITORIES: entries,
        DOCKER_AGENT_OIDC_JWKS_URL: `${gh.url}/.well-known/jwks`,
        DOCKER_AGENT_OIDC_ISSUER: gh.url,
        ...(allowPrivileged ? { DOCKER_AGENT_ALLOW_PRIVILEGED: 'true' } : {}),
      });
    let hub: RunningHub | undefined = await startHub(env(true, ENTRIES), () => {});
    const hubId = hub.hubId;
    try {
      let admin = new HubClient({ url: hub.url, token: TOKEN });
      const priv = await tokenClient({ client: admin, url: hub.url }, 'privileged', ['jobs', 'privileged']);
      const prod = await repoClient(hub.url, 'octo-org/app', 101, 'environment:prod');
      // The hub's one slot is taken, so both privileged jobs wait.
      const blocker = await runningJob(admin);
      // Oldest first: the OIDC one is judged first, so the token's waiting for a slot does not hide it.
      const byOidc = await prod.createJob({ profile: 'root-ok', run: 'echo ran' });
      const byToken = await priv.createJob({ profile: 'root-ok', run: 'echo ran' });
      expect([(await admin.getJob(byToken.id)).state, (await admin.getJob(byOidc.id)).state]).toEqual(['queued', 'queued']);
      await hub.close();
      hub = undefined;

      // The prod entry lost +privileged: its job may not start; the token's still may, when there is room.
      hub = await startHub(env(true, ENTRIES.replace('+privileged', '')), () => {});
      admin = new HubClient({ url: hub.url, token: TOKEN });
      expect(finalState(await collect(admin, byOidc.id))).toBe('cancelled');
      expect((await admin.getJob(byOidc.id)).reason).toBe(
        'not started: profile root-ok is privileged and its owner github:101:environment:prod no longer has the "privileged" scope (DOCKER_AGENT_OIDC_REPOSITORIES entries with +privileged, or a token with that scope)',
      );
      expect((await admin.getJob(byToken.id)).state).toBe('queued');
      await hub.close();
      hub = undefined;

      // The hub no longer allows privileged profiles at all.
      hub = await startHub(env(false, ENTRIES), () => {});
      admin = new HubClient({ url: hub.url, token: TOKEN });
      expect(finalState(await collect(admin, byToken.id))).toBe('cancelled');
      expect((await admin.getJob(byToken.id)).reason).toBe(
        'not started: profile root-ok is privileged and this hub no longer allows privileged profiles (DOCKER_AGENT_ALLOW_PRIVILEGED)',
      );
      expect(output(await collect(admin, byToken.id))).toBe('');
      expect((await admin.getJob(blocker.id)).state).toBe('running');
      await admin.cancelJob(blocker.id);
    } finally {
      await hub?.close();
      await removeContainers(hubId);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 300_000);
});
