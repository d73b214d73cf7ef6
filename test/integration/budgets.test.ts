// What one principal may keep, start and see, on a real hub and engine: job snapshots
// count against the per-principal snapshot limit like agents' do, a named agent's log
// goes with the agent, nothing a revoked token queued starts (revoked through the API
// or from the command line), and a profile's environment and files are the admin's.
import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubClient, type JobView } from '../../client/index.js';
import { repoPath } from '../../hub/platform/paths.js';
import { collect, finalState, output, refusal, settledAgent, startTestHub, type TestHub } from '../helpers/hub.js';

const run = promisify(execFile);

let t: TestHub;
const LOG_CAP = 256 * 1024;
// The operator's profiles folder, with one file the hub cannot use.
const profilesDir = join(tmpdir(), `da-budget-profiles-${process.pid}`);
mkdirSync(profilesDir, { recursive: true });
writeFileSync(join(profilesDir, 'broken.json'), '{"name": "broken", "nope": 1}');

beforeAll(async () => {
  t = await startTestHub({
    DOCKER_AGENT_MAX_AGENT_LOG_BYTES: String(LOG_CAP),
    DOCKER_AGENT_MAX_SNAPSHOTS_PER_PRINCIPAL: '1',
    DOCKER_AGENT_MAX_JOBS: '1',
    DOCKER_AGENT_PROFILES_DIR: profilesDir,
  });
});
afterAll(async () => {
  await t?.close();
  rmSync(profilesDir, { recursive: true, force: true });
});

/** A job that holds the hub's one slot until cancelled, once its container runs. */
async function slotHolder(): Promise<JobView> {
  const job = await t.client.createJob({ run: 'echo holding; sleep 600' });
  for await (const e of t.client.events(job.id)) if (e.type === 'stdout') break;
  return job;
}

async function tokenClient(name: string): Promise<{ id: string; client: HubClient }> {
  const created = await t.client.createToken({ name, scopes: ['jobs'] });
  return { id: created.id, client: new HubClient({ url: t.hub.url, token: created.token }) };
}

describe("a principal's budgets", () => {
  it('counts job snapshots against the snapshot limit, naming the setting', async () => {
    const first = await t.client.createJob({ run: 'echo kept > /workspace/kept', snapshot: true });
    expect(finalState(await collect(t.client, first.id))).toBe('succeeded');
    expect((await t.client.listSnapshots()).map((s) => s.id)).toContain(first.id);
    const err = await refusal(t.client.createJob({ run: 'true', snapshot: true }));
    expect(err).toMatchObject({ status: 429, code: 'LIMIT_REACHED', message: expect.stringContaining('DOCKER_AGENT_MAX_SNAPSHOTS_PER_PRINCIPAL=1') });
    await t.client.deleteSnapshot(first.id);
  });

  it("removes a named agent's log with the agent", async () => {
    const agent = await t.client.createAgent({ name: 'short-lived' });
    expect(await settledAgent(t.client, 'short-lived')).toBe('running');
    const job = await t.client.createJob({ agent: 'short-lived', run: 'echo from the agent' });
    expect(finalState(await collect(t.client, job.id))).toBe('succeeded');
    const db = new Database(join(t.dataDir, 'hub.db'), { readonly: true });
    try {
      const { id } = db.prepare('SELECT id FROM agents WHERE name = ?').get(agent.name) as { id: string };
      const logged = () => (db.prepare('SELECT count(*) AS n FROM events WHERE job_id = ?').get(`agent:${id}`) as { n: number }).n;
      expect(logged()).toBeGreaterThan(0);
      await t.client.destroyAgent('short-lived');
      expect(logged()).toBe(0);
    } finally {
      db.close();
    }
  });

  it("rotates a named agent's log past DOCKER_AGENT_MAX_AGENT_LOG_BYTES, keeping the newest output; its jobs keep all of theirs", async () => {
    await t.client.createAgent({ name: 'chatty' });
    expect(await settledAgent(t.client, 'chatty')).toBe('running');
    try {
      // 2 MiB in numbered lines, eight times the cap.
      const job = await t.client.createJob({ agent: 'chatty', run: 'seq -f "line %07g of the agent log, padded to be long enough" 1 32768' });
      const events = await collect(t.client, job.id);
      expect(finalState(events)).toBe('succeeded');
      expect(output(events).trim().split('\n')).toHaveLength(32768);
      const db = new Database(join(t.dataDir, 'hub.db'), { readonly: true });
      try {
        const { id } = db.prepare('SELECT id FROM agents WHERE name = ?').get('chatty') as { id: string };
        const stored = db.prepare('SELECT data FROM events WHERE job_id = ? AND data IS NOT NULL ORDER BY seq').all(`agent:${id}`) as { data: Buffer }[];
        const bytes = stored.reduce((n, r) => n + r.data.length, 0);
        expect(bytes).toBeLessThanOrEqual(LOG_CAP);
        expect(bytes).toBeGreaterThan(LOG_CAP / 4);
        expect(Buffer.concat(stored.map((r) => r.data)).toString()).toContain('line 0032768 of the agent log');
      } finally {
        db.close();
      }
      // What a follower of the agent's log reads is the rest, in order, ending with the newest line.
      const tail: string[] = [];
      for await (const e of t.client.agentLogs('chatty', { tail: 20 })) if (e.type === 'stdout') tail.push(e.data);
      expect(tail.join('')).toContain('line 0032768');
    } finally {
      await t.client.destroyAgent('chatty');
    }
  });

  it('cancels what a token queued when it is revoked through the API, and starts nothing a token revoked elsewhere queued', async () => {
    const holder = await slotHolder();
    const api = await tokenClient('revoked by API');
    const cli = await tokenClient('revoked by CLI');
    const byApi = await api.client.createJob({ run: 'echo should not run' });
    const byCli = await cli.client.createJob({ run: 'echo should not run' });
    expect([byApi.state, byCli.state]).toEqual(['queued', 'queued']);

    await t.client.revokeToken(api.id);
    expect(await t.client.getJob(byApi.id)).toMatchObject({ state: 'cancelled', reason: 'its token was revoked' });

    // Another process writes the revoke into the data folder; the hub finds it when the job's turn comes.
    await run(process.execPath, [repoPath('build', 'hub.mjs'), 'token', 'revoke', cli.id, '--data-dir', t.dataDir], {
      env: { ...process.env, DOCKER_AGENT_TOKEN: '' },
    });
    expect((await t.client.getJob(byCli.id)).state).toBe('queued');
    await t.client.cancelJob(holder.id);
    const events = await collect(t.client, byCli.id);
    expect(finalState(events)).toBe('cancelled');
    expect(await t.client.getJob(byCli.id)).toMatchObject({ state: 'cancelled', reason: 'not started: its token was revoked', startedAt: null });
  });

  it("shows a profile's environment and files, and the profile files' problems, to the admin only", async () => {
    const { client } = await tokenClient('profile reader');
    const asAdmin = await (await t.client.raw('GET', '/v1/profiles/tester')).json();
    expect(asAdmin.profile.environment).toBeDefined();
    const asUser = await (await client.raw('GET', '/v1/profiles/tester')).json();
    expect(asUser).toMatchObject({ name: 'tester', profile: { name: 'tester' } });
    expect(asUser.profile.environment).toBeUndefined();
    expect(asUser.profile.files).toBeUndefined();
    expect((await (await t.client.raw('GET', '/v1/profiles')).json()).problems).not.toEqual([]);
    expect((await (await client.raw('GET', '/v1/profiles')).json()).problems).toEqual([]);
  });

  it('refuses a command or env value a program could not be started with, naming the path and the limit, and runs one just under it', async () => {
    const long = `echo ${'x'.repeat(200 * 1024)}`;
    const err = await t.client.createJob({ steps: [{ run: 'true' }, { run: long }], env: { BIG: 'y'.repeat(130 * 1024) } }).catch((e) => e);
    expect(err).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    expect((err.details.issues as { path: string }[]).map((i) => i.path)).toEqual(['/env/BIG', '/steps/1/run']);
    expect(err.message).toMatch(/\/steps\/1\/run: is 204805 bytes; a program's argument or environment entry may be at most 131071/);
    // Just under the limit: it starts, and its output is all there.
    const fits = await t.client.createJob({ run: `printf %s ${'z'.repeat(120 * 1024)} | wc -c` });
    const events = await collect(t.client, fits.id);
    expect(finalState(events)).toBe('succeeded');
    expect(output(events).trim()).toBe(String(120 * 1024));
  });
});
