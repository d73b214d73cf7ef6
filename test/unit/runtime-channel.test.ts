// The hub's end of the runtime channel on a real socket and a real WebSocket client,
// with the scheduler replaced by a recorder: limits on what a runtime may send.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { runtimeChannel, type RuntimeSessions } from '../../hub/api/runtime-channel.js';
import { encodeOutputFrame } from '../../schemas/agent-frame.js';
import { SandboxRegistry } from '../../hub/sandboxes/registry.js';

let server: Server;
let url: string;
const calls = { health: 0, reports: 0, logs: [] as string[] };

const jobs: RuntimeSessions = {
  mayAttach: () => true,
  attach: () => ({
    label: 'job job-1',
    report: () => {
      calls.reports++;
    },
    health: () => {
      calls.health++;
    },
    detach: () => {},
  }),
};

beforeEach(async () => {
  Object.assign(calls, { health: 0, reports: 0, logs: [] });
  const upgrade = runtimeChannel(jobs, (m) => calls.logs.push(m), { maxFrameBytes: 1024 * 1024, healthMinIntervalMs: 60_000 });
  server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', upgrade);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/agent`;
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

async function open(): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers: { authorization: 'Bearer agt_test' } });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return ws;
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

describe('runtime channel limits', () => {
  it('closes the channel with 1009 when a frame is over 1 MiB, and the server keeps serving', async () => {
    const ws = await open();
    const end = closed(ws);
    ws.on('error', () => {});
    ws.send(encodeOutputFrame({ stream: 'stdout', n: 1, step: 0, data: Buffer.alloc(1024 * 1024 + 1, 0x61) }));
    expect(await end).toEqual({ code: 1009, reason: '' });
    expect(calls.reports).toBe(0);
    expect(calls.logs.join('\n')).toMatch(
      /job job-1: runtime channel closed: Max payload size exceeded.*frames up to 1048576 bytes, DOCKER_AGENT_MAX_AGENT_FRAME_BYTES/,
    );

    // A frame of a normal size on a new connection still goes through.
    const again = await open();
    const acked = new Promise((r) => again.once('message', r));
    again.send(encodeOutputFrame({ stream: 'stdout', n: 1, step: 0, data: Buffer.alloc(64 * 1024, 0x61) }));
    expect(JSON.parse(String(await acked))).toEqual({ t: 'ack', n: 1 });
    expect(calls.reports).toBe(1);
    again.close();
  });

  it('takes one health report per interval and drops a flood of them', async () => {
    const ws = await open();
    for (let i = 0; i < 200; i++) ws.send(JSON.stringify({ t: 'health', memoryBytes: 1, cpuPercent: 1 }));
    // A reliable message after the flood: its ack says the hub has read everything before it.
    const acked = new Promise((r) => ws.once('message', r));
    ws.send(encodeOutputFrame({ stream: 'stdout', n: 1, step: 0, data: Buffer.from('x') }));
    await acked;
    expect(calls.health).toBe(1);
    ws.close();
  });
});

describe('a runtime that dials while the hub starts or stops', () => {
  it('is told to dial again (1013, a drop to the runtime) until the hub has adopted what runs, then an unknown token is refused for good before the upgrade (401)', async () => {
    const registry = new SandboxRegistry();
    const upgrade = runtimeChannel(registry, () => {}, { maxFrameBytes: 1024, healthMinIntervalMs: 60_000 });
    const own = createServer((_req, res) => res.writeHead(404).end());
    own.on('upgrade', upgrade);
    await new Promise<void>((r) => own.listen(0, '127.0.0.1', r));
    const dial = async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${(own.address() as AddressInfo).port}/v1/agent`, { headers: { authorization: 'Bearer ses_unknown' } });
      const refused = new Promise<{ status: number }>((resolve) => ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 })));
      ws.on('error', () => {});
      return Promise.race([closed(ws), refused]);
    };
    try {
      expect(await dial()).toEqual({ code: 1013, reason: 'the hub is starting; dial again' });
      registry.open();
      expect(await dial()).toEqual({ status: 401 });
      registry.close();
      expect(await dial()).toEqual({ code: 1013, reason: 'the hub is stopping; dial again' });
    } finally {
      own.closeAllConnections();
      await new Promise((r) => own.close(r));
    }
  });
});
