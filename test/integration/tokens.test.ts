// The operator's side of tokens: DOCKER_AGENT_TOKEN rotated across a restart, and
// `docker-agent-hub token create|list|revoke` run from the built bundle against the
// data folder of a running hub.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { HubClient } from '../../client/index.js';
import { repoPath } from '../../hub/platform/paths.js';
import { startHub } from '../../hub/server.js';
import { collect, finalState, removeContainers, startTestHub, tempDataDir, testConfig } from '../helpers/hub.js';

const run = promisify(execFile);
const HUB = repoPath('build', 'hub.mjs');

async function cli(dataDir: string, ...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(process.execPath, [HUB, ...args, '--data-dir', dataDir], { env: { ...process.env, DOCKER_AGENT_TOKEN: '' } });
    return { ...r, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe('DOCKER_AGENT_TOKEN', () => {
  it('works only while it is set: after a restart with a new value the old one gets 401, and jobs stay visible to the new one', async () => {
    const dataDir = tempDataDir();
    const first = 'first-admin-token-0123456789';
    const second = 'second-admin-token-0123456789';
    let hubId = '';
    try {
      let hub = await startHub(testConfig(dataDir, { DOCKER_AGENT_TOKEN: first }), () => {});
      hubId = hub.hubId;
      let jobId: string;
      try {
        const c1 = new HubClient({ url: hub.url, token: first });
        const job = await c1.createJob({ run: 'echo rotated' });
        jobId = job.id;
        expect(finalState(await collect(c1, job.id))).toBe('succeeded');
      } finally {
        await hub.close();
      }
      hub = await startHub(testConfig(dataDir, { DOCKER_AGENT_TOKEN: second }), () => {});
      try {
        const old = new HubClient({ url: hub.url, token: first });
        const err = await old.listJobs().catch((e) => e);
        expect(err).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
        expect(err.message).toMatch(/^token revoked on .* \(DOCKER_AGENT_TOKEN was changed or unset\)/);
        const c2 = new HubClient({ url: hub.url, token: second });
        // Admin: it sees what the old admin token made.
        expect((await c2.getJob(jobId)).state).toBe('succeeded');
        expect((await c2.listTokens()).tokens.filter((t) => t.source === 'env').map((t) => t.revokedAt === null)).toEqual([true, false]);
      } finally {
        await hub.close();
      }
      // Unset: no admin token works any more, so the hub makes one as on first start.
      hub = await startHub(testConfig(dataDir, { DOCKER_AGENT_TOKEN: '' }), () => {});
      try {
        await expect(new HubClient({ url: hub.url, token: second }).listJobs()).rejects.toMatchObject({ status: 401 });
        expect(hub.tokenFile).toBe(join(dataDir, 'token'));
        const made = new HubClient({ url: hub.url, token: readFileSync(hub.tokenFile!, 'utf8').trim() });
        expect((await made.getJob(jobId)).id).toBe(jobId);
      } finally {
        await hub.close();
      }
    } finally {
      if (hubId) await removeContainers(hubId);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('docker-agent-hub token', () => {
  it("creates, lists and revokes tokens in a hub's data folder, as JSON or a table, and a revoke ends the token's open stream", async () => {
    const t = await startTestHub();
    try {
      expect(existsSync(HUB)).toBe(true);
      const created = await cli(t.dataDir, 'token', 'create', '--name', 'ci runner', '--scopes', 'jobs', '--expires-in-days', '30', '--json');
      expect(created.code, created.stderr).toBe(0);
      const token = JSON.parse(created.stdout);
      expect(token).toMatchObject({ name: 'ci runner', scopes: ['jobs'], token: expect.stringMatching(/^dat_/), expiresAt: expect.stringMatching(/^20/) });

      // The running hub takes it at once.
      const ci = new HubClient({ url: t.hub.url, token: token.token });
      const job = await ci.createJob({ run: 'sleep 60' });
      expect((await t.client.getJob(job.id)).owner).toBe(`token:${token.id}`);

      const listed = JSON.parse((await cli(t.dataDir, 'token', 'list', '--json')).stdout);
      expect(listed.tokens.find((x: { id: string }) => x.id === token.id)).toMatchObject({ name: 'ci runner', source: 'cli', revokedAt: null });
      expect(JSON.stringify(listed)).not.toContain(token.token);
      const human = (await cli(t.dataDir, 'token', 'list')).stdout;
      expect(human.split('\n')[0]).toMatch(/^ID\s+NAME\s+SCOPES\s+SOURCE\s+CREATED\s+EXPIRES\s+STATE$/);
      expect(human).toMatch(new RegExp(`${token.id}\\s+ci runner\\s+jobs\\s+cli\\s+\\S+\\s+\\S+\\s+active`));
      expect(human).toMatch(/DOCKER_AGENT_TOKEN\s+admin\s+env/);

      const ws = new WebSocket(job.links.events, { headers: { authorization: `Bearer ${token.token}` } });
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
      );
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const revoked = await cli(t.dataDir, 'token', 'revoke', token.id);
      expect(revoked.stdout).toMatch(/^revoked token .* "ci runner"/);
      // Another process revoked it: the hub notices within its sweep, without a restart.
      expect(await closed).toEqual({ code: 4401, reason: 'token revoked' });
      await expect(ci.listJobs()).rejects.toMatchObject({ status: 401, message: expect.stringMatching(/token revoked .*revoked on the command line/) });
      await t.client.cancelJob(job.id);

      const bad = await cli(t.dataDir, 'token', 'create', '--name', 'x', '--scopes', 'root');
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/token is invalid: --scopes\/0: must be one of "jobs", "admin", "privileged", "metrics"/);
      const missing = await cli(t.dataDir, 'token', 'revoke', 'no-such-id');
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toMatch(/no token with id no-such-id/);
    } finally {
      await t.close();
    }
  });
});
