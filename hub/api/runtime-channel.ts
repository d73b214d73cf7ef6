// The hub's end of the runtime channel (WS /v1/agent): authenticates a runtime by
// its token, hands it its task, stores what it reports and acknowledges it.
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeOutputFrame } from '../../schemas/agent-frame.js';
import { diskFailure, HubError } from '../platform/errors.js';
import type { RuntimeLink, RuntimeSession } from '../sandboxes/runtime-link.js';
import { validateAgentMessage } from '../platform/validation.js';
import { bearerToken, type UpgradeHandler, rejectUpgrade } from './upgrade.js';

export interface RuntimeChannelLimits {
  /** Largest message a runtime may send; a larger one closes the channel with 1009 (DOCKER_AGENT_MAX_AGENT_FRAME_BYTES). */
  maxFrameBytes: number;
  /** Health reports closer together than this are dropped: they only overwrite one row. */
  healthMinIntervalMs: number;
}

/** Where a runtime's token finds its sandbox (sandboxes/registry.ts). */
export interface RuntimeSessions {
  attach(token: string, link: RuntimeLink): RuntimeSession;
  /** False for a token that will never attach: refused before the upgrade. */
  mayAttach(token: string): boolean;
}

export function runtimeChannel(sandboxes: RuntimeSessions, log: (msg: string) => void, limits: RuntimeChannelLimits): UpgradeHandler {
  // Our runtime sends a pipe's read (64 KiB) at most; past maxPayload ws closes with 1009 "Max payload size exceeded" before buffering more.
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxFrameBytes });
  return (req, socket, head) => {
    const token = bearerToken(req);
    if (!token) return rejectUpgrade(socket, new HubError('UNAUTHORIZED', 'the runtime channel needs an agent token'));
    // An unknown token is answered before the handshake, so a flood of them costs no WebSocket (the runtime takes a 4xx as final, as it took 4001).
    if (!sandboxes.mayAttach(token)) return rejectUpgrade(socket, new HubError('UNAUTHORIZED', 'unknown or spent agent token'));
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, req, token));
  };

  function serve(ws: WebSocket, _req: IncomingMessage, token: string) {
    let label = 'a runtime not attached yet';
    // ws reports a frame past maxPayload (or a malformed one) here, then closes with its code (1009, 1002); unheard, it would throw.
    ws.on('error', (err) =>
      log(`${label}: runtime channel closed: ${err.message} (frames up to ${limits.maxFrameBytes} bytes, DOCKER_AGENT_MAX_AGENT_FRAME_BYTES)`),
    );
    const link: RuntimeLink = {
      send: (msg) => ws.send(JSON.stringify(msg)),
      close: (code, reason) => ws.close(code, reason),
    };
    let session: RuntimeSession;
    try {
      session = sandboxes.attach(token, link);
      label = session.label;
    } catch (err) {
      const e = err as HubError;
      // 1013 (try again later) is a drop to the runtime, which dials again; any 4xxx ends it.
      ws.close(e.code === 'UNAUTHORIZED' ? 4001 : e.code === 'NOT_RUNNING' ? 1013 : 4009, e.message.slice(0, 120));
      return;
    }
    let lastHealth = 0;
    ws.on('message', (data: Buffer, isBinary) => {
      try {
        if (isBinary) {
          const frame = decodeOutputFrame(data);
          session.report(frame);
          ws.send(JSON.stringify({ t: 'ack', n: frame.n }));
          return;
        }
        const parsed = validateAgentMessage(JSON.parse(data.toString('utf8')));
        if (!parsed.ok) throw new Error(parsed.issues.map((i) => `${i.path} ${i.message}`).join('; '));
        const msg = parsed.value;
        if (msg.t === 'health') {
          const now = Date.now();
          if (now - lastHealth < limits.healthMinIntervalMs) return;
          lastHealth = now;
          return session.health(msg);
        }
        session.report(msg);
        ws.send(JSON.stringify({ t: 'ack', n: msg.n }));
      } catch (err) {
        const full = diskFailure(err);
        if (full) {
          // Not acknowledged: the runtime dials again and sends it once more, by when there may be room.
          log(`${session.label}: a report could not be stored: ${full.message}`);
          ws.close(1011, 'the hub cannot store reports now');
          return;
        }
        log(`${session.label}: bad message from its runtime: ${(err as Error).message}`);
        ws.close(1008, 'protocol error');
      }
    });
    ws.on('close', () => session.detach());
  }
}
