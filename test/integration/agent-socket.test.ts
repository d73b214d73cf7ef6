// The agent socket every container may dial, on a real hub and the real engine: an
// unknown token is refused before the WebSocket handshake, a connection that sends
// no request is closed within seconds, and a job that floods the socket with
// thousands of idle connections and bad handshakes neither keeps another job's
// runtime out nor makes the hub hold a connection for each.
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { collect, finalState, output, startTestHub, type TestHub } from '../helpers/hub.js';

/** The most connections that may wait for their request in this test's hub. */
const MAX_DIALS = 1024;
let t: TestHub;
let socketPath: string;
beforeAll(async () => {
  t = await startTestHub({ DOCKER_AGENT_MAX_AGENT_DIALS: String(MAX_DIALS) });
  socketPath = join(t.dataDir, 'run', 'hub.sock');
});
afterAll(() => t?.close());

/** How long the hub took to close a connection that sent `bytes` and then nothing, or 'still open' after 20 s. */
function closedAfter(bytes: string): Promise<number | 'still open'> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(socketPath, () => socket.write(bytes));
    socket.on('error', () => {});
    const timer = setTimeout(() => (socket.destroy(), resolve('still open')), 20_000);
    socket.once('close', () => (clearTimeout(timer), resolve(Date.now() - started)));
  });
}

describe('the agent socket', () => {
  it('answers an unknown token with 401 before any WebSocket is made', async () => {
    const ws = new WebSocket(`ws+unix://${socketPath}:/v1/agent`, { headers: { authorization: 'Bearer dat_not-a-token-of-this-hub' } });
    ws.on('error', () => {});
    const answer = await new Promise<string>((resolve) => {
      ws.once('open', () => resolve('upgraded'));
      ws.once('unexpected-response', (_req, res) => resolve(`HTTP ${res.statusCode}`));
    });
    ws.terminate();
    expect(answer).toBe('HTTP 401');
  });

  it.each([
    ['sends nothing', ''],
    ['sends half a request', 'GET /v1/agent HTTP/1.1\r\nHost: hub\r\n'],
  ])('closes a connection that %s within seconds', async (_what, bytes) => {
    const took = await closedAfter(bytes);
    expect(took).not.toBe('still open');
    expect(took).toBeLessThan(10_000);
  });

  it('keeps taking other jobs’ runtimes while a job floods it with idle connections and bad handshakes, and holds a bounded number', async () => {
    const baseline = readdirSync('/proc/self/fd').length;
    const flood = await t.client.createJob({
      run: 'MODE=hold node -e "$FLOOD" & MODE=handshake node -e "$FLOOD"; wait',
      env: { FLOOD: FLOOD_SCRIPT, FLOOD_MS: '30000', HOLD: '4000', LOOPS: '16' },
    });
    // Follow the flood's output until it says it is under way.
    const floodEvents = collect(t.client, flood.id);
    await waitFor(async () => (await t.client.getJob(flood.id)).state === 'running', 60_000);
    let mostFds = 0;
    const sampler = setInterval(() => (mostFds = Math.max(mostFds, readdirSync('/proc/self/fd').length)), 50);
    try {
      await waitFor(() => mostFds - baseline > 500, 20_000);
      // A second job starts (its runtime dials the same socket), runs and ends as it would on a quiet hub.
      const other = await t.client.createJob({ run: 'echo dialled-in' });
      const events = await collect(t.client, other.id);
      expect(finalState(events)).toBe('succeeded');
      expect(output(events)).toContain('dialled-in');
      expect((await fetch(`${t.hub.url}/health`)).status).toBe(200);
      expect((await t.client.getJob(flood.id)).state).toBe('running');
    } finally {
      clearInterval(sampler);
    }
    const ended = await floodEvents;
    expect(finalState(ended)).toBe('succeeded');
    const stats = (mode: string) =>
      JSON.parse(new RegExp(`STATS ${mode} (.*)`).exec(output(ended))![1]!) as {
        statuses: Record<string, number>;
        connected: number;
        closedByHub: number;
        unanswered: number;
        refused: number;
      };
    const [hold, handshakes] = [stats('hold'), stats('handshake')];
    // Every bad handshake was refused as HTTP, none became a WebSocket.
    expect(handshakes.statuses['101'] ?? 0).toBe(0);
    expect(handshakes.statuses['401']).toBeGreaterThan(100);
    // A dialler that sends its request as it connects (a runtime) is answered, flood or not: only the flood's own idle connections are pushed out.
    expect(handshakes.unanswered).toBeLessThan(handshakes.statuses['401']! / 4);
    // The hub closed idle connections (past the cap, after the header timeout) and never held one for each the job opened.
    expect(hold.connected).toBeGreaterThan(4000);
    expect(hold.closedByHub).toBeGreaterThan(1000);
    expect(mostFds - baseline).toBeLessThan(MAX_DIALS + 300);
  });
});

async function waitFor(condition: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) if (await condition()) return;
  throw new Error(`not so within ${ms} ms`);
}

/**
 * Runs in the job's container with the image's Node.js: holds HOLD idle connections
 * to the agent socket (opening another for each the hub closes) and makes LOOPS
 * handshakes at a time with made-up tokens, for FLOOD_MS; then prints what it saw.
 */
const FLOOD_SCRIPT = `
const net = require('net');
const P = '/run/docker-agent/hub.sock';
const MODE = process.env.MODE;
const end = Date.now() + Number(process.env.FLOOD_MS);
const stats = { connected: 0, closedByHub: 0, statuses: {}, unanswered: 0, refused: 0 };
const held = new Set();
function hold() {
  if (Date.now() > end) return;
  const s = net.connect(P);
  held.add(s);
  let up = false;
  s.on('connect', () => { up = true; stats.connected++; });
  s.on('error', () => {});
  s.on('close', () => { held.delete(s); if (up) stats.closedByHub++; setTimeout(hold, 5); });
}
function handshake() {
  if (Date.now() > end) return;
  let up = false;
  const s = net.connect(P, () => { up = true; s.write('GET /v1/agent HTTP/1.1\\r\\nHost: hub\\r\\nConnection: Upgrade\\r\\nUpgrade: websocket\\r\\nSec-WebSocket-Version: 13\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nAuthorization: Bearer ses_' + Math.random().toString(36).slice(2) + '\\r\\n\\r\\n'); });
  let got = '';
  s.on('data', (d) => {
    got += d;
    const m = /^HTTP\\/1\\.1 (\\d+)/.exec(got);
    if (m) { stats.statuses[m[1]] = (stats.statuses[m[1]] || 0) + 1; s.destroy(); }
  });
  s.on('error', () => {});
  // Accepted and closed unanswered, or never accepted (its listen queue full, the kernel refuses at once and the loop dials again).
  s.on('close', () => { if (!/^HTTP/.test(got)) stats[up ? 'unanswered' : 'refused']++; setImmediate(handshake); });
}
if (MODE === 'hold') { console.log('flooding'); for (let i = 0; i < Number(process.env.HOLD); i++) hold(); }
else for (let i = 0; i < Number(process.env.LOOPS); i++) handshake();
setTimeout(() => {
  for (const s of held) s.destroy();
  console.log('STATS ' + MODE + ' ' + JSON.stringify(stats));
  process.exit(0);
}, Number(process.env.FLOOD_MS) + 500);
`;
