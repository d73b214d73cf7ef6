// Every stream has a limit, on a real hub and the real engine: a client frame on an
// event stream or a shell is small, every WebSocket, live feed, followed log and
// shell counts against its principal's and the hub's limits (429 naming the
// setting, the slot given back when the stream ends), and a shell whose container
// reads nothing makes the client wait instead of filling the hub's memory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { HubClient } from '../../client/index.js';
import { SHELL_CHANNEL, SHELL_PROTOCOL, shellFrame } from '../../schemas/shell-frame.js';
import { settledAgent, startTestHub, TOKEN, type TestHub } from '../helpers/hub.js';

const MiB = 1024 * 1024;

/** A WebSocket to the hub, open, or the HTTP answer that refused it. */
type Opened = { status: number; ws?: WebSocket; message?: string };

function openWs(url: string, token: string, protocol?: string): Promise<Opened> {
  const ws = protocol
    ? new WebSocket(url, protocol, { headers: { authorization: `Bearer ${token}` } })
    : new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  ws.on('error', () => {});
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ ws, status: 101 }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, message: (JSON.parse(body) as { error: { message: string } }).error.message }));
    });
  });
}

/** The code the hub closed `ws` with, or 'still open' after 20 s. */
function closeOf(ws: WebSocket): Promise<number | 'still open'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('still open'), 20_000);
    ws.once('close', (code) => (clearTimeout(timer), resolve(code)));
  });
}

/** A job that is running, by its id (or an error once the deadline passes). */
async function running(client: HubClient, run: string): Promise<string> {
  const job = await client.createJob({ run });
  for (const until = Date.now() + 60_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
    const { state } = await client.getJob(job.id);
    if (state === 'running') return job.id;
    if (!['queued', 'preparing', 'starting'].includes(state)) throw new Error(`job ${job.id} ended ${state} before running`);
  }
  throw new Error(`job ${job.id} did not start within 60 s`);
}

/** A shell in a running job, with what it printed so far. */
async function shellIn(t: TestHub, jobId: string): Promise<{ ws: WebSocket; out: () => string }> {
  const opened = await openWs(`${t.hub.url.replace(/^http/, 'ws')}/v1/jobs/${jobId}/shell`, TOKEN, SHELL_PROTOCOL);
  if (opened.status !== 101) throw new Error(`shell refused: ${opened.status}`);
  const ws = opened.ws!;
  let out = '';
  ws.on('message', (data: Buffer) => {
    if (data[0] === SHELL_CHANNEL.output) out += data.subarray(1).toString();
  });
  return { ws, out: () => out };
}

const health = async (t: TestHub) => (await fetch(`${t.hub.url}/health`)).status;

describe('client frames', () => {
  let t: TestHub;
  let jobId: string;
  beforeAll(async () => {
    t = await startTestHub();
    jobId = await running(t.client, 'sleep 300');
  }, 120_000);
  afterAll(async () => {
    await t?.client.cancelJob(jobId).catch(() => {});
    await t?.close();
  });

  it('a 64 MiB frame on an event stream closes it with 1009 before it is read in, and the hub keeps answering', async () => {
    const url = `${t.hub.url.replace(/^http/, 'ws')}/v1/jobs/${jobId}/events`;
    const opened = await openWs(url, TOKEN);
    expect(opened.status).toBe(101);
    const ws = opened.ws!;
    const closed = closeOf(ws);
    ws.send(Buffer.alloc(64 * MiB, 0x61));
    expect(await closed).toBe(1009);
    expect(await health(t)).toBe(200);
    // The job's stream still opens for its owner.
    const again = await openWs(url, TOKEN);
    expect(again.status).toBe(101);
    again.ws!.close();
  });

  it('a frame past the shell limit closes the shell with 1009, and the hub keeps answering', async () => {
    const { ws } = await shellIn(t, jobId);
    const closed = closeOf(ws);
    ws.send(shellFrame(SHELL_CHANNEL.stdin, Buffer.alloc(MiB, 0x61)));
    expect(await closed).toBe(1009);
    expect(await health(t)).toBe(200);
  });
});

describe('stream limits', () => {
  let t: TestHub;
  let alice: { client: HubClient; token: string };
  let bob: { client: HubClient; token: string };
  let aliceJob: string;
  const held: Array<() => void> = [];
  beforeAll(async () => {
    t = await startTestHub({ DOCKER_AGENT_MAX_STREAMS_PER_PRINCIPAL: '4', DOCKER_AGENT_MAX_STREAMS: '6' });
    const principal = async (name: string) => {
      const { token } = await t.client.createToken({ name, scopes: ['jobs'] });
      return { client: new HubClient({ url: t.hub.url, token }), token };
    };
    alice = await principal('alice');
    bob = await principal('bob');
    await alice.client.createAgent({ name: 'alice-agent' });
    expect(await settledAgent(alice.client, 'alice-agent')).toBe('running');
    aliceJob = await running(alice.client, 'sleep 300');
  }, 180_000);
  afterAll(async () => {
    for (const close of held) close();
    await t?.client.cancelJob(aliceJob).catch(() => {});
    await t?.close();
  });

  const events = (token: string) => openWs(`${t.hub.url.replace(/^http/, 'ws')}/v1/jobs/${aliceJob}/events`, token);
  /** An SSE or NDJSON stream held open, or its refusal. */
  async function httpStream(path: string, token: string): Promise<{ status: number; message?: string; close: () => void }> {
    const stop = new AbortController();
    const res = await fetch(`${t.hub.url}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: stop.signal });
    if (res.status !== 200) return { status: res.status, message: ((await res.json()) as { error: { message: string } }).error.message, close: () => {} };
    return { status: 200, close: () => stop.abort() };
  }

  it('refuses the stream past a principal’s limit with 429 naming the setting, lets another principal open one, and past the hub’s limit names that one', async () => {
    // Alice holds one of each kind: an event stream, a shell, the live feed, a followed log.
    const ev = await events(alice.token);
    const shell = await openWs(`${t.hub.url.replace(/^http/, 'ws')}/v1/jobs/${aliceJob}/shell`, alice.token, SHELL_PROTOCOL);
    const live = await httpStream('/v1/live', alice.token);
    const log = await httpStream('/v1/agents/alice-agent/logs?follow=1', alice.token);
    expect([ev.status, shell.status, live.status, log.status]).toEqual([101, 101, 200, 200]);
    const aliceStreams = [() => ev.ws!.close(), () => shell.ws!.close(), live.close, log.close];
    held.push(...aliceStreams);

    for (const over of [
      await events(alice.token),
      await httpStream('/v1/live', alice.token),
      await httpStream('/v1/agents/alice-agent/logs?follow=1', alice.token),
    ]) {
      expect(over.status).toBe(429);
      expect(over.message).toMatch(/has 4 streams open .* \(DOCKER_AGENT_MAX_STREAMS_PER_PRINCIPAL=4\)/);
    }
    const overShell = await openWs(`${t.hub.url.replace(/^http/, 'ws')}/v1/jobs/${aliceJob}/shell`, alice.token, SHELL_PROTOCOL);
    expect(overShell.status).toBe(429);

    // Bob is not held back by alice's streams, up to what the hub holds for everyone.
    const bobLive = [await httpStream('/v1/live', bob.token), await httpStream('/v1/live', bob.token)];
    expect(bobLive.map((s) => s.status)).toEqual([200, 200]);
    held.push(...bobLive.map((s) => s.close));
    const hubFull = await httpStream('/v1/live', bob.token);
    expect(hubFull.status).toBe(429);
    expect(hubFull.message).toMatch(/the hub has 6 streams open.*\(DOCKER_AGENT_MAX_STREAMS=6\)/);

    // Streams that end give their slots back, whatever their kind: alice opens four again.
    for (const close of aliceStreams) close();
    await expect
      .poll(
        async () => {
          const again = await Promise.all([events(alice.token), events(alice.token), events(alice.token), events(alice.token)]);
          for (const s of again) if (s.status === 101) held.push(() => s.ws!.close());
          const ok = again.every((s) => s.status === 101);
          if (!ok) for (const s of again) if (s.status === 101) s.ws!.close();
          return ok;
        },
        { timeout: 15_000, interval: 200 },
      )
      .toBe(true);
  });
});

describe('shell stdin', () => {
  let t: TestHub;
  let jobId: string;
  beforeAll(async () => {
    t = await startTestHub();
    jobId = await running(t.client, 'sleep 300');
  }, 120_000);
  afterAll(async () => {
    await t?.client.cancelJob(jobId).catch(() => {});
    await t?.close();
  });

  it('fed 256 MiB by a shell that reads nothing, makes the client wait instead of holding it in the hub', async () => {
    const { ws, out } = await shellIn(t, jobId);
    // The shell becomes a process that never reads its terminal.
    ws.send(shellFrame(SHELL_CHANNEL.stdin, "stty -echo; echo RE''ADY; exec sleep 300\n"));
    await expect.poll(() => out(), { timeout: 30_000, interval: 50 }).toMatch(/READY/);

    // Lines (a terminal holds back full lines; one without a newline it would drop), 64 KiB a frame.
    const frame = shellFrame(SHELL_CHANNEL.stdin, Buffer.from(`${'y'.repeat(63)}\n`.repeat(1024)));
    const total = 256 * MiB;
    const rssBefore = process.memoryUsage().rss;
    let rssMax = rssBefore;
    let queued = 0;
    // What the hub (or the kernel between) took from the client: what was sent less what still waits in the client.
    const taken = () => queued - ws.bufferedAmount;
    let last = -1;
    let lastChange = Date.now();
    const deadline = Date.now() + 120_000;
    while (queued < total && Date.now() < deadline) {
      if (ws.bufferedAmount < 4 * MiB) {
        ws.send(frame);
        queued += frame.length;
      }
      await new Promise((r) => setTimeout(r, ws.bufferedAmount < 4 * MiB ? 0 : 5));
      rssMax = Math.max(rssMax, process.memoryUsage().rss);
      if (taken() !== last) {
        last = taken();
        lastChange = Date.now();
      } else if (Date.now() - lastChange > 3000) break; // nothing more is taken: the client waits
    }
    expect(ws.readyState).toBe(ws.OPEN);
    expect(taken()).toBeLessThan(64 * MiB);
    expect(ws.bufferedAmount).toBeGreaterThan(0);
    expect(rssMax - rssBefore).toBeLessThan(64 * MiB);
    expect(await health(t)).toBe(200);
    ws.terminate();
  });
});
