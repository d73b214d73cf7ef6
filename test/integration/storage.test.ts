// What one principal keeps on a real hub (job rows with their output, uploads,
// snapshots, agent logs) is within DOCKER_AGENT_MAX_STORED_BYTES_PER_PRINCIPAL, and
// uploads in flight are counted: one principal over its budget or its share is
// refused with a 429 naming the setting, and another goes on as before.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubClient } from '../../client/index.js';
import { collect, docker, finalState, refusal, tempDataDir, type TestHub, startTestHub } from '../helpers/hub.js';

const BUDGET = 2 * 1024 * 1024;
let t: TestHub;
let a: HubClient;
let b: HubClient;

async function tarOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, body] of Object.entries(files)) pack.entry({ name }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** An upload that sends a little and then nothing, until aborted: one in flight. */
function stalledUpload(token: string): { abort(): void; answered: Promise<number> } {
  const stop = new AbortController();
  let push: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (push = c) });
  const answered = fetch(`${t.hub.url}/v1/workspaces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-tar' },
    body,
    duplex: 'half',
    signal: stop.signal,
  } as RequestInit).then(
    (r) => r.status,
    () => 0,
  );
  push!.enqueue(new Uint8Array(512));
  return { abort: () => stop.abort(), answered };
}

let c: HubClient;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  // What a crash left half-written in the uploads folder, before the hub starts.
  const dataDir = tempDataDir();
  mkdirSync(join(dataDir, 'workspaces'), { recursive: true });
  writeFileSync(join(dataDir, 'workspaces', '.upload-0123456789ab'), 'half an upload');
  t = await startTestHub({ DOCKER_AGENT_MAX_STORED_BYTES_PER_PRINCIPAL: String(BUDGET), DOCKER_AGENT_MAX_UPLOADS: '3' }, { dataDir });
  for (const name of ['a', 'b', 'c']) tokens[name] = (await t.client.createToken({ name, scopes: ['jobs'] })).token;
  const client = (n: string) => new HubClient({ url: t.hub.url, token: tokens[n]! });
  [a, b, c] = [client('a'), client('b'), client('c')];
});
afterAll(async () => {
  await t?.close();
});

describe("a principal's storage budget", () => {
  it('counts job specs and output, refuses the job or upload past it with a 429 naming the setting, and leaves others alone', async () => {
    // Output is counted once a job ends: 1.5 MiB of it.
    const chatty = await a.createJob({ run: 'head -c 1572864 /dev/zero | tr "\\0" x' });
    expect(finalState(await collect(a, chatty.id))).toBe('succeeded');
    // Specs: steps of 100 KiB each (under what a program can be started with).
    const step = (i: number) => ({ name: `s${i}`, run: `: ${'x'.repeat(100 * 1024)}` });
    const steps = (n: number) => Array.from({ length: n }, (_, i) => step(i)) as [ReturnType<typeof step>, ...ReturnType<typeof step>[]];
    const big = await a.createJob({ steps: steps(3) });
    expect(finalState(await collect(a, big.id))).toBe('succeeded');
    const err = await refusal(a.createJob({ steps: steps(4) }));
    expect(err.status).toBe(429);
    expect(err.message).toMatch(
      /keeps \d+ bytes on this hub \(jobs \d+, snapshots 0, uploads 0, agent logs 0\); a job spec of \d+ bytes would pass the 2097152 .*DOCKER_AGENT_MAX_STORED_BYTES_PER_PRINCIPAL/,
    );
    const upload = await refusal(a.uploadWorkspace(Readable.from([await tarOf({ 'a.txt': randomBytes(600 * 1024) })]), 'application/x-tar'));
    expect(upload.status).toBe(429);
    expect(upload.message).toContain('DOCKER_AGENT_MAX_STORED_BYTES_PER_PRINCIPAL');
    // Another principal's budget is its own.
    const other = await b.createJob({ steps: steps(4) });
    expect(finalState(await collect(b, other.id))).toBe('succeeded');
    expect((await b.uploadWorkspace(Readable.from([await tarOf({ 'b.txt': 'hello' })]), 'application/x-tar')).id).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('uploads in flight', () => {
  it('are at most two per principal and DOCKER_AGENT_MAX_UPLOADS in all; an ended one frees its place; a crashed one left no file', async () => {
    expect(readdirSync(join(t.dataDir, 'workspaces')).filter((n) => n.startsWith('.upload-'))).not.toContain('.upload-0123456789ab');
    const small = async () => Readable.from([await tarOf({ 'f.txt': 'small' })]);
    const stalled = [stalledUpload(tokens.b!), stalledUpload(tokens.c!), stalledUpload(tokens.c!)];
    try {
      // Each stalled one is counted once the hub has its request: wait for that, by the refusal.
      const deadline = Date.now() + 10_000;
      let mine;
      while (!mine && Date.now() < deadline) {
        mine = await c.uploadWorkspace(await small(), 'application/x-tar').then(
          () => undefined,
          (e: Error) => e,
        );
      }
      expect(mine?.message).toMatch(/already has 2 uploads under way, the most one principal may have/);
      const hubWide = await refusal(b.uploadWorkspace(await small(), 'application/x-tar'));
      expect(hubWide.message).toContain('DOCKER_AGENT_MAX_UPLOADS');
    } finally {
      for (const s of stalled) s.abort();
    }
    await Promise.all(stalled.map((s) => s.answered));
    // Freed when the hub sees the aborted bodies end.
    const deadline = Date.now() + 10_000;
    let done;
    while (!done && Date.now() < deadline) done = await b.uploadWorkspace(await small(), 'application/x-tar').catch(() => undefined);
    expect(done?.id).toMatch(/^[0-9a-f]{64}$/);
    expect(readdirSync(join(t.dataDir, 'workspaces')).filter((n) => n.startsWith('.upload-'))).toEqual([]);
  });
});

describe('a snapshot past the budget', () => {
  it('is not kept: its image goes, and an event names the setting; the job keeps its output', async () => {
    const job = await c.createJob({ run: 'head -c 3145728 /dev/urandom > /workspace/big && echo wrote', snapshot: true });
    const events = await collect(c, job.id);
    const refused = events.find((e) => e.type === 'error');
    expect(refused).toMatchObject({
      code: 'LIMIT_REACHED',
      message: expect.stringMatching(/a snapshot of \d+ bytes would pass .*DOCKER_AGENT_MAX_STORED_BYTES_PER_PRINCIPAL/),
    });
    expect(events.some((e) => e.type === 'stdout' && e.data.includes('wrote'))).toBe(true);
    expect(await c.listSnapshots()).toEqual([]);
    const images = await docker.listImages({ filters: { reference: [`docker-agent/snapshot:${job.id}`] } });
    expect(images).toEqual([]);
  });
});
