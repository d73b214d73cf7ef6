// The warm pool on the real engine: what it does, not how fast (that is bench/).
// Every job gets a container no job used before, with its own env, workspace and
// owner; the pool refills, replaces containers past their time to live, never
// pools a privileged profile, and leaves nothing behind.
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubClient } from '../../client/index.js';
import { poolSettings } from '../../hub/sandboxes/pool.js';
import { loadConfig } from '../../hub/platform/config.js';
import { collect, docker, finalState, output, startTestHub, type TestHub } from '../helpers/hub.js';

type PoolState = Record<string, { idle: number; starting: number; minIdle: number; max: number }>;

let t: TestHub;
beforeAll(async () => {
  t = await startTestHub({ DOCKER_AGENT_POOL_MIN_IDLE: '2', DOCKER_AGENT_POOL_TTL_S: '3' });
});
afterAll(async () => {
  await t?.close();
});

/** The pool's containers on the engine (waiting or given to a job). */
async function poolContainers(): Promise<string[]> {
  const found = await docker.listContainers({ filters: { label: ['docker-agent.pool', `docker-agent.hub=${t.hub.hubId}`] } });
  return found.map((c) => c.Id);
}

/** `get()` once its value passes `test`, looked at again until the deadline. */
async function eventually<T>(get: () => Promise<T>, test: (x: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const x = await get();
    if (test(x)) return x;
    if (Date.now() > until) throw new Error(`${what}: ${JSON.stringify(x)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function pool(): Promise<PoolState> {
  return ((await t.client.health()) as unknown as { pool: PoolState }).pool;
}

/** Resolves once the pool's state passes `test` (the pool changes in the background; there is nothing to subscribe to). */
function poolWhere(test: (p: PoolState) => boolean): Promise<PoolState> {
  return eventually(pool, test, 'the pool never got there', 60_000);
}

async function run(client: HubClient, req: Parameters<HubClient['createJob']>[0]) {
  const job = await client.createJob(req);
  const events = await collect(client, job.id);
  return { job: await client.getJob(job.id), events, out: output(events) };
}

describe('the warm pool', () => {
  it('keeps containers waiting, gives each job one no job used before, and refills', async () => {
    await poolWhere((p) => p.default?.idle === 2);
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) {
      // Each job leaves a mark in the container; the next one must not find any.
      const r = await run(t.client, { run: 'ls /tmp/used-before 2>/dev/null && echo REUSED; touch /tmp/used-before; hostname' });
      expect(finalState(r.events)).toBe('succeeded');
      expect(r.out).not.toContain('REUSED');
      seen.add(r.out.trim());
    }
    expect(seen.size).toBe(3);
    expect(await poolWhere((p) => p.default?.idle === 2)).toMatchObject({ default: { idle: 2, minIdle: 2, max: 2 } });
  });

  it('shows in /health at once that a job took a waiting container, not at the next background look', async () => {
    await poolWhere((p) => p.default?.idle === 2);
    const job = await t.client.createJob({ run: 'true' });
    // The one taken is being replaced: one waits, one starts (a look taken seconds ago would still say two wait).
    expect((await pool()).default).toMatchObject({ idle: 1, starting: 1 });
    expect(finalState(await collect(t.client, job.id))).toBe('succeeded');
  });

  it('gives a pooled job its own env, workspace and owner, applied when it is assigned', async () => {
    await poolWhere((p) => p.default?.idle === 2);
    const pack = tar.pack();
    pack.entry({ name: 'hello.txt' }, 'from the upload\n');
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    const other = await t.client.createToken({ name: 'pool user', scopes: ['jobs'] });
    const client = new HubClient({ url: t.hub.url, token: other.token });
    const up = await client.uploadWorkspace(Readable.from(gzipSync(Buffer.concat(chunks))), 'application/gzip');
    const r = await run(client, { run: 'echo "$WHO"; cat hello.txt; stat -c %u hello.txt', env: { WHO: 'the pooled job' }, workspace: up.id });
    expect(r.out).toBe('the pooled job\nfrom the upload\n1000\n');
    expect(r.job.owner).toBe(`token:${other.id}`);
  });

  it('replaces waiting containers past their time to live with fresh ones', async () => {
    await poolWhere((p) => p.default?.idle === 2);
    // The last test's job had a pooled container too; it is removed after that job's end.
    const before = await eventually(poolContainers, (ids) => ids.length === 2, 'the used container was never removed');
    const replaced = await eventually(poolContainers, (now) => now.length > 0 && now.every((id) => !before.includes(id)), 'no waiting container was replaced');
    expect(replaced.some((id) => before.includes(id))).toBe(false);
  });

  it("never pools a privileged profile, and takes its settings from the profile over the hub's", () => {
    const config = loadConfig([], { DOCKER_AGENT_POOL_MIN_IDLE: '3' });
    const base = { name: 'default', description: 'x', image: { base: 'x' } } as never;
    expect(poolSettings(base, config)).toEqual({ minIdle: 3, max: 3, ttlMs: 600_000 });
    expect(poolSettings({ ...(base as object), name: 'docker-host', privileged: true, pool: { minIdle: 2 } } as never, config)).toBeUndefined();
    expect(poolSettings({ ...(base as object), name: 'builder' } as never, config)).toBeUndefined();
    expect(poolSettings({ ...(base as object), name: 'builder', pool: { minIdle: 1, max: 4, ttl: 5 } } as never, config)).toEqual({
      minIdle: 1,
      max: 4,
      ttlMs: 5000,
    });
  });
});
