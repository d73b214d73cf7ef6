// WS /v1/jobs/:id/events?from=SEQ: a job's events from SEQ on, then live, closed
// after the final one. Each client is a cursor over the stored log: it reads a
// page, sends it, waits for the socket to drain and reads on, so a slow client
// holds at most one page in memory and a late one gets the same, once.
import { WebSocketServer, type WebSocket } from 'ws';
import { HubError } from '../platform/errors.js';
import type { EventBus } from '../events/event-bus.js';
import { isFinalStatus, isTerminal } from '../jobs/lifecycle.js';
import { followLog } from '../jobs/log-cursor.js';
import type { JobService } from '../jobs/service.js';
import { toWire, type EventLog } from '../store/events.js';
import { credentialsOf, type Authenticator } from '../auth/authenticator.js';
import { rejectUpgrade, releaseOnClose, type UpgradeHandler } from './upgrade.js';
import { auditEntry, worthAuditing, type AuditLog } from '../auth/audit.js';
import { requireScope, type Principal } from '../platform/principal.js';
import type { StreamRegistry } from './stream-registry.js';

const HIGH_WATER = 1024 * 1024;
/**
 * A client sends nothing on an event stream but control frames (a ping, its close):
 * a bigger message closes the stream with 1009 before its body is read, where ws
 * would otherwise take in up to 100 MiB of it.
 */
export const MAX_CLIENT_FRAME_BYTES = 4096;

export interface EventStreamDeps {
  jobs: JobService;
  log: EventLog;
  bus: EventBus;
  auth: Authenticator;
  streams: StreamRegistry;
  audit: AuditLog;
}

export const EVENTS_PATH = /^\/v1\/jobs\/([^/]+)\/events$/;

export function eventStream(deps: EventStreamDeps): UpgradeHandler {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_FRAME_BYTES });
  return async (req, socket, head) => {
    let jobId = '';
    let from: number;
    let principal: Principal | undefined;
    try {
      principal = await deps.auth.checkRequest(credentialsOf('GET', (n) => req.headers[n]));
      requireScope(principal, 'jobs', "streaming a job's events");
      const url = new URL(req.url ?? '/', 'http://hub');
      jobId = decodeURIComponent(EVENTS_PATH.exec(url.pathname)![1]!);
      const fromRaw = url.searchParams.get('from') ?? '1';
      from = Number(fromRaw);
      if (!Number.isInteger(from) || from < 1) {
        throw new HubError('VALIDATION_FAILED', `from=${fromRaw}: expected an event seq, an integer from 1`);
      }
      // Someone else's job is answered as a missing one.
      deps.jobs.get(jobId, principal);
      releaseOnClose(socket, deps.streams.admit(principal));
    } catch (err) {
      const e = err instanceof HubError ? err : new HubError('VALIDATION_FAILED', `bad event stream request: ${(err as Error).message}`);
      if (worthAuditing('GET', e.status, e))
        deps.audit(auditEntry({ method: 'GET', route: '/v1/jobs/:id/events', object: jobId || null }, principal, e.status, e));
      return rejectUpgrade(socket, e);
    }
    const who = principal;
    wss.handleUpgrade(req, socket, head, (ws) => {
      // A frame past maxPayload (or a malformed one) is reported here before ws closes with its code; unheard, it would throw.
      ws.on('error', () => {});
      deps.streams.add(ws, who);
      void follow(ws, jobId, from, deps);
    });
  };
}

async function follow(ws: WebSocket, jobId: string, from: number, { jobs, log, bus }: EventStreamDeps) {
  try {
    const how = await followLog(log, bus, jobId, from, {
      open: () => ws.readyState === ws.OPEN,
      onGone: (wake) => ws.on('close', wake),
      send: (e) => send(ws, JSON.stringify(toWire(e))),
      isLast: isFinalStatus,
      // A `from` past the end of an ended job's log: nothing more will come.
      ended: () => isTerminal(jobs.stateOf(jobId) ?? 'cancelled'),
    });
    if (how === 'ended') ws.close(1000, 'job ended');
  } catch {
    ws.terminate();
  }
}

function send(ws: WebSocket, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.send(text, (err) => (err ? reject(err) : resolve()));
    // Only wait for the write when the socket is backed up; otherwise keep going.
    if (ws.bufferedAmount < HIGH_WATER) resolve();
  });
}
