// The hub's end of the agent channel (WS /v1/agent): authenticates a runtime by
// its token, hands it its task, stores what it reports and acknowledges it.
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeOutputFrame } from '../../schemas/agent-frame.js';
import { HubError } from '../errors.js';
import type { AgentLink, JobService, RuntimeSession } from '../jobs/service.js';
import { validateAgentMessage } from '../validation.js';
import { bearerToken, type UpgradeHandler, rejectUpgrade } from './upgrade.js';

export function agentChannel(jobs: JobService, log: (msg: string) => void): UpgradeHandler {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
  return (req, socket, head) => {
    const token = bearerToken(req);
    if (!token) return rejectUpgrade(socket, new HubError('UNAUTHORIZED', 'the agent channel needs an agent token'));
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, req, token));
  };

  function serve(ws: WebSocket, _req: IncomingMessage, token: string) {
    const link: AgentLink = {
      send: (msg) => ws.send(JSON.stringify(msg)),
      close: (code, reason) => ws.close(code, reason),
    };
    let session: RuntimeSession;
    try {
      session = jobs.attach(token, link);
    } catch (err) {
      const e = err as HubError;
      ws.close(e.code === 'UNAUTHORIZED' ? 4001 : 4009, e.message.slice(0, 120));
      return;
    }
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
        if (msg.t === 'health') return session.health(msg);
        session.report(msg);
        ws.send(JSON.stringify({ t: 'ack', n: msg.n }));
      } catch (err) {
        log(`${session.label}: bad message from its runtime: ${(err as Error).message}`);
        ws.close(1008, 'protocol error');
      }
    });
    ws.on('close', () => session.detach());
  }
}
