// Limits that keep one caller from taking the hub or the host down, on a real hub
// and the real engine: hostile archives, endless output, container logs, snapshot
// size, the agent endpoint's reach, and secrets at rest.
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { collect, docker, startTestHub, TOKEN, type TestHub } from '../helpers/hub.js';
import { deepNameBomb, gzipBomb, manyEntries, tarOf } from '../helpers/archives.js';
import { gzipSync } from 'node:zlib';

const MAX_OUTPUT = 1024 * 1024;
let t: TestHub;
beforeAll(async () => {
  t = await startTestHub({
    DOCKER_AGENT_MAX_OUTPUT_BYTES: String(MAX_OUTPUT),
    DOCKER_AGENT_MAX_SNAPSHOT_BYTES: String(MAX_OUTPUT),
    DOCKER_AGENT_MAX_WORKSPACE_BYTES: String(4 * 1024 * 1024),
    DOCKER_AGENT_MAX_WORKSPACE_ENTRIES: '1000',
  });
});
afterAll(() => t?.close());

async function upload(body: Buffer): Promise<{ status: number; error: { code: string; message: string } }> {
  const res = await fetch(`${t.hub.url}/v1/workspaces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/gzip' },
    body: new Uint8Array(body),
  });
  return { status: res.status, ...((await res.json()) as { error: { code: string; message: string } }) };
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

async function healthy(): Promise<number> {
  return (await fetch(`${t.hub.url}/health`)).status;
}

describe('hostile workspace archives', () => {
  it('answer the ~350-byte archive 100,000 levels deep with a 400 naming the limit, and the hub keeps serving', async () => {
    const bomb = await deepNameBomb();
    expect(bomb.length).toBeLessThan(400);
    const res = await upload(bomb);
    expect(res.status).toBe(400);
    expect(res.error.code).toBe('ARCHIVE_LIMIT');
    expect(res.error.message).toMatch(/has a name of 199999 bytes; the limit is 4096 \(DOCKER_AGENT_MAX_ENTRY_NAME_BYTES\)/);
    expect(await healthy()).toBe(200);
  });

  it.each([
    ['too many entries', () => manyEntries(1001), 400, /is entry number 1001; an archive may hold 1000 \(DOCKER_AGENT_MAX_WORKSPACE_ENTRIES\)/],
    ['a 1 MiB name', async () => gzipSync(await tarOf([{ name: 'n'.repeat(1024 * 1024), body: 'x' }])), 400, /has a name of 1048576 bytes; the limit is 4096/],
    [
      'nesting one level past the limit',
      async () => gzipSync(await tarOf([{ name: Array(65).fill('d').join('/'), body: 'x' }])),
      400,
      /is 65 levels deep; the limit is 64 \(DOCKER_AGENT_MAX_ENTRY_DEPTH\)/,
    ],
    [
      'a gzip bomb past the unpacked size limit',
      () => gzipBomb(64 * 1024 * 1024),
      413,
      /the unpacked workspace is larger than 4194304 bytes \(DOCKER_AGENT_MAX_WORKSPACE_BYTES\)/,
    ],
  ])('answer %s with a clear error, and the hub keeps serving', async (_what, make, status, message) => {
    const body = await make();
    expect(body.length).toBeLessThan(4 * 1024 * 1024);
    const res = await upload(body);
    expect(res.status).toBe(status);
    expect(res.error.message).toMatch(message);
    expect(await healthy()).toBe(200);
  });
});

describe('output past the cap', () => {
  it('is dropped with one event naming the limit; the job goes on and its log stays bounded', async () => {
    const job = await t.client.createJob({
      steps: [
        { name: 'flood', run: `head -c 3000000 /dev/zero | tr '\\0' a` },
        { name: 'after', run: 'echo still running >&2; exit 0' },
      ],
    });
    const events = await collect(t.client, job.id);
    const limits = events.filter((e) => e.type === 'error');
    expect(limits).toHaveLength(1);
    expect(limits[0]).toMatchObject({ code: 'OUTPUT_LIMIT', message: expect.stringMatching(/more than 1048576 bytes \(DOCKER_AGENT_MAX_OUTPUT_BYTES\)/) });
    const stdout = events.filter((e) => e.type === 'stdout').reduce((n, e) => n + Buffer.byteLength((e as { data: string }).data), 0);
    expect(stdout).toBe(MAX_OUTPUT);
    // The second step ran and ended well; its output was past the cap too.
    expect(events.filter((e) => e.type === 'step' && e.phase === 'ended').map((e) => (e as { exitCode: number }).exitCode)).toEqual([0, 0]);
    expect(events.some((e) => e.type === 'stderr')).toBe(false);
    expect((await t.client.getJob(job.id)).state).toBe('succeeded');

    const db = new Database(join(t.dataDir, 'hub.db'), { readonly: true });
    try {
      const stored = db.prepare(`SELECT SUM(length(data)) AS n FROM events WHERE job_id = ?`).get(job.id) as { n: number };
      expect(stored.n).toBe(MAX_OUTPUT);
    } finally {
      db.close();
    }
  });
});

describe('containers', () => {
  it('rotate their own logs (json-file max-size and max-file)', async () => {
    const job = await t.client.createJob({ run: 'true', keep: true });
    await collect(t.client, job.id);
    const row = new Database(join(t.dataDir, 'hub.db'), { readonly: true });
    const { container_id } = row.prepare('SELECT container_id FROM jobs WHERE id = ?').get(job.id) as { container_id: string };
    row.close();
    const info = await docker.getContainer(container_id).inspect();
    expect(info.HostConfig.LogConfig).toEqual({ Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } });
  });

  it('are not snapshotted past the size limit; an event names it', async () => {
    const job = await t.client.createJob({ run: 'head -c 3000000 /dev/urandom > /workspace/big', snapshot: true });
    const events = await collect(t.client, job.id);
    expect(events.find((e) => e.type === 'error')).toMatchObject({
      code: 'SNAPSHOT_TOO_LARGE',
      message: expect.stringMatching(/snapshots are limited to 1048576 \(DOCKER_AGENT_MAX_SNAPSHOT_BYTES\)/),
    });
    expect(events.some((e) => e.type === 'snapshot')).toBe(false);
    expect(await docker.listImages({ filters: { reference: [`docker-agent/snapshot:${job.id}`] } })).toEqual([]);
  });
});

describe('the agent endpoint', () => {
  function dial(url: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/agent`);
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('open', () => reject(new Error('the runtime channel opened')));
      ws.on('error', () => {});
    });
  }

  it('is not on the public TCP port unless DOCKER_AGENT_AGENT_URL asks for it', async () => {
    expect(await dial(t.hub.url)).toBe(404);
    const remote = await startTestHub({ DOCKER_AGENT_AGENT_URL: 'ws://127.0.0.1:1/' });
    try {
      // Served there now: without an agent token it is a 401, not a 404.
      expect(await dial(remote.hub.url)).toBe(401);
    } finally {
      await remote.close();
    }
  });
});

describe('profiles', () => {
  it('refuse user "00" (uid 0) unless privileged', async () => {
    const res = await t.client.raw('POST', '/v1/profiles/validate', {
      body: JSON.stringify({ name: 'sneaky', user: '00' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(await res.json()).toEqual({ valid: false, issues: [{ path: '/user', message: '"00" is uid 0 (root), which needs privileged: true' }] });
  });
});

describe('secrets at rest', () => {
  const mode = (p: string) => statSync(p).mode & 0o777;

  it('data folder 0700 and every file in it 0600, also fixed on a folder an older hub left open', async () => {
    const pre = join(t.dataDir, '..', `da-open-${randomBytes(3).toString('hex')}`);
    mkdirSync(join(pre, 'workspaces'), { recursive: true, mode: 0o755 });
    chmodSync(pre, 0o755);
    writeFileSync(join(pre, 'workspaces', 'old.tar.gz'), 'x', { mode: 0o644 });
    writeFileSync(join(pre, 'stray'), 'x', { mode: 0o644 });
    const h = await startTestHub({ DOCKER_AGENT_DATA_DIR: pre });
    try {
      const up = await h.client.uploadWorkspace(Readable.from(await tarOf([{ name: 'a.txt', body: 'a' }])), 'application/x-tar');
      expect(mode(pre)).toBe(0o700);
      expect(mode(join(pre, 'workspaces'))).toBe(0o700);
      for (const f of ['hub.db', 'hub.db-wal', 'hub.db-shm', 'stray', 'workspaces/old.tar.gz', `workspaces/${up.id}.tar.gz`]) {
        expect([f, mode(join(pre, f))]).toEqual([f, 0o600]);
      }
      // The agent socket's folder is what containers mount: it alone stays open.
      expect(mode(join(pre, 'run'))).toBe(0o755);
    } finally {
      await h.close();
      rmSync(pre, { recursive: true, force: true });
    }
  });

  it("remove a finished job's env values (job and step level) from hub.db, keeping the names", async () => {
    const secret = `sekret-${randomBytes(8).toString('hex')}`;
    const stepSecret = `stepsekret-${randomBytes(8).toString('hex')}`;
    const job = await t.client.createJob({
      env: { API_KEY: secret },
      // The script compares hashes: the values themselves must appear nowhere but in env.
      steps: [
        {
          name: 'use',
          run: `test "$(printf %s "$API_KEY$STEP_KEY" | sha256sum | cut -c1-64)" = ${sha256(secret + stepSecret)}`,
          env: { STEP_KEY: stepSecret },
        },
      ],
    });
    const events = await collect(t.client, job.id);
    expect(events.at(-1)).toMatchObject({ type: 'status', state: 'succeeded' });

    const db = new Database(join(t.dataDir, 'hub.db'), { readonly: true });
    try {
      const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[]).map((r) => r.name);
      expect(tables).toContain('jobs');
      for (const table of tables) {
        for (const row of db.prepare(`SELECT * FROM "${table}"`).all() as Record<string, unknown>[]) {
          const text = Object.values(row)
            .map((v) => (Buffer.isBuffer(v) ? v.toString('latin1') : String(v)))
            .join('\n');
          expect(text.includes(secret) || text.includes(stepSecret), `${table} holds a secret`).toBe(false);
        }
      }
      const { spec } = db.prepare('SELECT spec FROM jobs WHERE id = ?').get(job.id) as { spec: string };
      expect(JSON.parse(spec)).toMatchObject({ env: { API_KEY: '' }, steps: [{ env: { STEP_KEY: '' } }] });
    } finally {
      db.close();
    }
  });
});
